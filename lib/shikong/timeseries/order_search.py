"""The pruned SARIMA search: which candidates are fitted, in what order, and the winner.

:func:`sarima_forecast` forecasts one series with the best usable candidate of
``ForecastConfig.candidates``, or returns None so that the routing of
:mod:`shikong.timeseries.forecast` falls back. Why it is fast:

1. Weekly-seasonality gate: ACF at lag ``season`` of the series minus its centred
   ``season``-day moving average, against Bartlett's bound. Weak -> only non-seasonal
   candidates; strong -> only seasonal ones (``seasonal_only_when_strong``).
2. Differencing by tests, as auto.arima does: ``D = 1`` when the STL seasonal strength is
   >= 0.64, ``d = 1`` when KPSS rejects level stationarity (after seasonal differencing).
   Only candidates with that ``(d, D)`` are fitted, which also makes their AICs
   comparable; when none matches, every remaining candidate is fitted.
3. When all remaining candidates share ``(d, D)``, they are fitted with
   ``simple_differencing=True`` (smaller state, same data for every AIC); the winner's
   parameters are then run through the Kalman filter of the undifferenced model (no
   re-optimisation) so that forecasts and intervals are in levels.
4. Drift by AIC: where the remaining orders come with and without a constant (drift when
   ``d + D == 1``), the cheapest order is fitted both ways and only the better variant of
   the other orders is fitted (one extra cheap fit instead of doubling the search).
   ``method='lbfgs'``, ``concentrate_scale=True``, ``maxiter`` capped, cheapest candidates
   first with ``patience``, and ``start_params`` warm starts across backtest folds.
5. With simple differencing and no missing day, the likelihood is evaluated by the
   innovations algorithm (:mod:`shikong.timeseries.arma_mle`: the same exact likelihood
   and optimiser as ``SARIMAX.fit``, ~3x cheaper per evaluation, with the drift/mean
   profiled out instead of searched); statsmodels' Kalman filter fits the rest. No
   parameter covariance is computed (``cov_type='none'``): the intervals only need the
   filter.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.stattools import acf, kpss

from shikong.timeseries._common import fill_linear, quiet
from shikong.timeseries.forecast_types import (
    OK,
    ForecastConfig,
    SeriesForecast,
    from_sigma,
    is_sane,
)
from shikong.timeseries.sarima import (
    SarimaSpec,
    WarmStarts,
    fit_candidate_once,
    sarimax_forecast_arrays,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- gates


def has_weekly_seasonality(y: np.ndarray, season: int = 7, z: float = 1.96) -> bool:
    """Whether the lag-``season`` autocorrelation is significantly positive.

    The series minus its centred ``season``-day moving average (which removes trend but
    keeps the seasonal pattern) is tested against Bartlett's bound
    ``z * sqrt((1 + 2 * sum_{k<season} r_k^2) / n)``.

    Args:
        y: Values by day; NaNs are interpolated first.
        season: Seasonal period.
        z: One-sided z of the bound.

    Returns:
        True when seasonality is significant; False for series shorter than 3 seasons.
    """
    x = fill_linear(np.asarray(y, dtype=float))
    if x.size < 3 * season or not np.isfinite(x).all():
        return False
    trend = pd.Series(x).rolling(season, center=True).mean().to_numpy()
    r = (x - trend)[np.isfinite(trend)]
    if r.size <= season + 1 or np.std(r) == 0:
        return False
    with quiet():
        ac = acf(r, nlags=season, fft=True)
    se = math.sqrt((1.0 + 2.0 * float(np.sum(ac[1:season] ** 2))) / r.size)
    return bool(ac[season] > z * se)


def seasonal_strength(y: np.ndarray, season: int = 7) -> float:
    """STL seasonal strength ``max(0, 1 - var(R) / var(S + R))`` (Wang, Smith & Hyndman).

    Args:
        y: Values by day; NaNs are interpolated first.
        season: Seasonal period.

    Returns:
        Strength in [0, 1]; 0 when it cannot be computed.
    """
    x = fill_linear(np.asarray(y, dtype=float))
    if x.size < 2 * season + 1 or not np.isfinite(x).all():
        return 0.0
    with quiet():
        res = STL(x, period=season).fit()
    sr = np.var(res.seasonal + res.resid)
    return float(max(0.0, 1.0 - np.var(res.resid) / sr)) if sr > 0 else 0.0


def kpss_needs_difference(y: np.ndarray, alpha: float = 0.05) -> bool:
    """KPSS level-stationarity test; True when stationarity is rejected at ``alpha``."""
    x = np.asarray(y, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 10 or np.std(x) == 0:
        return False
    with quiet():
        _, pvalue, *_ = kpss(x, regression="c", nlags="auto")
    return bool(pvalue < alpha)


# --------------------------------------------------------------------------- search


@dataclass
class _Fit:
    spec: SarimaSpec
    aic: float
    params: np.ndarray
    result: object | None  # statsmodels results, None for an arma_mle fit
    order_index: int


def _fit_candidate(
    y: np.ndarray, spec: SarimaSpec, simple: bool, cfg: ForecastConfig, warm: WarmStarts
) -> _Fit | None:
    attempts: list[tuple[np.ndarray | None, int]] = []
    if spec in warm:
        attempts.append((warm[spec], cfg.warm_maxiter))
    attempts.append((None, cfg.maxiter))
    for start, maxiter in attempts:
        try:
            fit = fit_candidate_once(
                y,
                spec,
                simple=simple,
                maxiter=maxiter,
                start_params=start,
                fast=cfg.fast_likelihood,
            )
        except Exception:  # noqa: BLE001 - a failed candidate is skipped
            logger.debug("SARIMA %s failed", spec.name, exc_info=True)
            continue
        if fit is None or not (math.isfinite(fit.aic) and np.isfinite(fit.params).all()):
            continue
        if cfg.require_convergence and not fit.converged:
            continue
        return _Fit(spec, fit.aic, fit.params, fit.result, 0)
    return None


def _select_candidates(x: np.ndarray, cfg: ForecastConfig) -> list[SarimaSpec]:
    """Apply the seasonality gate and the (d, D) tests to the configured candidates."""
    cands = list(cfg.candidates)
    strong: bool | None = None
    if cfg.seasonality_test and any(c.is_seasonal for c in cands):
        strong = has_weekly_seasonality(x, cfg.season, cfg.acf_z)
        if not strong:
            keep = [c for c in cands if not c.is_seasonal]
        elif cfg.seasonal_only_when_strong:
            keep = [c for c in cands if c.is_seasonal]
        else:
            keep = cands
        if keep:
            cands = keep
    if cfg.differencing_by_tests and len({c.differencing for c in cands}) > 1:
        big_d = 0
        if strong is not False and any(c.differencing[1] == 1 for c in cands):
            big_d = int(seasonal_strength(x, cfg.season) >= cfg.seasonal_strength_threshold)
        base = x[cfg.season :] - x[: -cfg.season] if big_d else x
        d = int(kpss_needs_difference(base, cfg.kpss_alpha))
        group = [c for c in cands if c.differencing == (d, big_d)]
        if group:
            cands = group
        else:
            logger.debug("no candidate with (d, D) = (%d, %d); fitting all", d, big_d)
    # cheapest first; stable so the configured order breaks ties
    return sorted(cands, key=lambda c: c.n_params)


def _drift_pair(cands: list[SarimaSpec]) -> tuple[SarimaSpec, SarimaSpec] | None:
    """The cheapest order present both without and with the constant, as that pair."""
    plain = {(c.order, c.seasonal_order): c for c in cands if c.trend is None}
    for c in cands:  # cheapest first
        if c.trend == "c" and (c.order, c.seasonal_order) in plain:
            return plain[(c.order, c.seasonal_order)], c
    return None


def sarima_forecast(y: np.ndarray, cfg: ForecastConfig, warm: WarmStarts) -> SeriesForecast | None:
    """The best usable candidate's forecast of ``y`` (levels, NaN = missing), or None.

    Fits the selected candidates cheapest first (warm-started from ``warm``, which is
    updated in place), then forecasts with the lowest-AIC fit whose forecast is finite and
    in range.
    """
    x = fill_linear(y)
    cands = _select_candidates(x, cfg)
    simple = cfg.simple_differencing and len({c.differencing for c in cands}) == 1
    pair = _drift_pair(cands) if cfg.drift_by_aic else None
    if pair is not None:
        cands = [*pair, *(c for c in cands if c not in pair)]
    # orders offered both with and without the constant: only these follow the pair
    both = {(c.order, c.seasonal_order) for c in cands if c.trend is None} & {
        (c.order, c.seasonal_order) for c in cands if c.trend == "c"
    }
    trend_kept: set[str | None] = {None, "c"}
    fits: list[_Fit] = []
    best = math.inf
    stale = 0
    for i, spec in enumerate(cands):
        if spec.trend not in trend_kept and (spec.order, spec.seasonal_order) in both:
            continue
        fit = _fit_candidate(y, spec, simple, cfg, warm)
        if fit is not None:
            fit.order_index = i
            warm[spec] = fit.params
            fits.append(fit)
            if fit.aic < best - cfg.min_aic_gain:
                best, stale = fit.aic, 0
            else:
                stale += 1
        else:
            stale += 1
        if pair is not None and i == 1 and fits:
            # the pair decided: keep the constant/drift variant with the lower AIC
            trend_kept = {min(fits, key=lambda f: f.aic).spec.trend}
            stale = 0
            continue
        if cfg.patience is not None and stale >= cfg.patience and fits:
            break
    ref = float(np.nanmax(np.abs(y)))
    for fit in sorted(fits, key=lambda f: (f.aic, f.order_index)):
        try:
            if fit.result is None or (simple and sum(fit.spec.differencing) > 0):
                mean, se = sarimax_forecast_arrays(y, fit.spec, fit.params, cfg.horizon)
            else:
                with quiet():
                    fc = fit.result.get_forecast(cfg.horizon)  # type: ignore[attr-defined]
                    mean = np.asarray(fc.predicted_mean, dtype=float)
                    se = np.asarray(fc.se_mean, dtype=float)
        except Exception:  # noqa: BLE001 - try the next best candidate
            logger.debug("forecast of %s failed", fit.spec.name, exc_info=True)
            continue
        if is_sane(mean, se, ref, cfg):
            return from_sigma(mean, se, fit.spec.name, OK)
        logger.debug("rejected %s: forecast out of range", fit.spec.name)
    return None
