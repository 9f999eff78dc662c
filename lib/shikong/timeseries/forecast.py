"""Per-series demand forecasts: pruned SARIMA search with fallbacks that never raise.

Grouped entry point::

    fn = make_forecast_fn(ForecastConfig(horizon=28, target_col="y_clean"))
    fc = cleaned.groupBy("series_id").applyInPandas(fn, FORECAST_SCHEMA)

Routing of one series (first rule that applies; the ``reason`` column says which):

=================  =========================================================  ==============
reason             condition                                                  model
=================  =========================================================  ==============
``empty``          no finite value                                            ``zero``
``all_zero``       every observed value is 0                                  seasonal naive
``constant``       every observed value is equal                              seasonal naive
``nan_heavy``      share of missing days > ``max_nan_frac``                   fallback chain
``intermittent``   ADI (days per non-zero day) > ``adi_threshold``            SBA / Croston
``too_short``      fewer than ``min_obs`` observed days                       fallback chain
``ok``             a SARIMA candidate converged and passed the sanity check   SARIMA
``sarima_failed``  no SARIMA candidate usable                                 fallback chain
``error:<Exc>``    unexpected exception (logged)                              seasonal naive
=================  =========================================================  ==============

The fallback chain is state-space ETS (additive, damped trend, weekly season when two
seasons exist) then seasonal naive, then naive; when ETS fails ``;ets_failed`` is appended
to the reason. With ``engine='statsforecast'``, ``ok`` / ``sarima_failed`` refer to
AutoARIMA and the ETS step is AutoETS.

SARIMA search (why it is fast):

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

Engines (``ForecastConfig.engine``): ``statsmodels`` (the search above) or ``statsforecast``
(Nixtla's AutoARIMA, then AutoETS, see :mod:`shikong.timeseries.sf_engine`). The routing,
the reasons, the output and the backtest are the same for both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.statespace.exponential_smoothing import (
    ExponentialSmoothing as StateSpaceETS,
)
from statsmodels.tsa.statespace.sarimax import SARIMAX
from statsmodels.tsa.stattools import acf, kpss

from shikong.timeseries import sf_engine
from shikong.timeseries._common import (
    conform,
    daily_frame,
    ddl,
    empty_frame,
    fill_linear,
    first_series_id,
    quiet,
    require_columns,
    to_date_objects,
)
from shikong.timeseries.arma_mle import Layout, fit_differenced
from shikong.timeseries.cleaning import hampel

logger = logging.getLogger(__name__)

Z80 = float(norm.ppf(0.90))
Z95 = float(norm.ppf(0.975))

# reason codes
OK = "ok"
EMPTY = "empty"
ALL_ZERO = "all_zero"
CONSTANT = "constant"
NAN_HEAVY = "nan_heavy"
INTERMITTENT = "intermittent"
TOO_SHORT = "too_short"
SARIMA_FAILED = "sarima_failed"
ETS_FAILED = "ets_failed"

#: Forecasting engines (``ForecastConfig.engine``).
ENGINES: tuple[str, ...] = ("statsmodels", "statsforecast")

# model names that are not SARIMA/ETS specs
MODEL_ZERO = "zero"
MODEL_SNAIVE = "seasonal_naive"
MODEL_NAIVE = "naive"


@dataclass(frozen=True)
class SarimaSpec:
    """One SARIMA candidate.

    Attributes:
        order: ``(p, d, q)``.
        seasonal_order: ``(P, D, Q, s)``; ``(0, 0, 0, s)`` means non-seasonal.
        trend: ``None`` or ``"c"``: a constant in the ARMA equation of the differenced
            series, so a mean when ``d == D == 0`` and a drift when ``d + D == 1``
            (SARIMAX puts it in the state intercept of the ARMA part, so the same parameter
            holds in the differenced and the undifferenced form); not allowed with two
            differences (a quadratic trend).
    """

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0)
    trend: str | None = None

    def __post_init__(self) -> None:
        if len(self.order) != 3 or any(int(v) < 0 for v in self.order):
            raise ValueError(f"order must be 3 non-negative ints, got {self.order}")
        if len(self.seasonal_order) != 4 or any(int(v) < 0 for v in self.seasonal_order):
            raise ValueError(
                f"seasonal_order must be 4 non-negative ints, got {self.seasonal_order}"
            )
        if self.order[1] > 2 or self.seasonal_order[1] > 1:
            raise ValueError(f"d must be <= 2 and D <= 1, got {self.order}, {self.seasonal_order}")
        if self.is_seasonal and self.seasonal_order[3] < 2:
            raise ValueError(f"seasonal period must be >= 2, got {self.seasonal_order}")
        if self.trend not in (None, "c"):
            raise ValueError(f"trend must be None or 'c', got {self.trend!r}")
        if self.trend == "c" and sum(self.differencing) > 1:
            raise ValueError(f"trend 'c' needs d + D <= 1, got {self.name}")

    @property
    def is_seasonal(self) -> bool:
        """Whether any of P, D, Q is non-zero."""
        return any(self.seasonal_order[:3])

    @property
    def differencing(self) -> tuple[int, int]:
        """``(d, D)``."""
        return self.order[1], self.seasonal_order[1] if self.is_seasonal else 0

    @property
    def n_params(self) -> int:
        """Estimated ARMA(+constant) parameters, the complexity used for ordering."""
        p, _, q = self.order
        big_p, _, big_q, _ = self.seasonal_order
        return p + q + big_p + big_q + (1 if self.trend else 0)

    @property
    def statsmodels_seasonal_order(self) -> tuple[int, int, int, int]:
        """Seasonal order as passed to SARIMAX (all zeros when non-seasonal)."""
        return tuple(self.seasonal_order) if self.is_seasonal else (0, 0, 0, 0)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """E.g. ``SARIMA(1,0,1)(0,1,1,7)`` or ``SARIMA(1,0,1)(0,0,0,0)+c``."""
        o = ",".join(str(v) for v in self.order)
        s = ",".join(str(v) for v in self.statsmodels_seasonal_order)
        return f"SARIMA({o})({s})" + ("+c" if self.trend else "")


def _candidates(season: int) -> tuple[SarimaSpec, ...]:
    s = season
    return (
        SarimaSpec((1, 0, 0), trend="c"),
        SarimaSpec((1, 0, 1), trend="c"),
        SarimaSpec((0, 1, 1)),
        SarimaSpec((1, 1, 1)),
        SarimaSpec((0, 1, 1), trend="c"),
        SarimaSpec((1, 1, 1), trend="c"),
        SarimaSpec((1, 0, 0), (1, 0, 0, s), trend="c"),
        SarimaSpec((1, 0, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((0, 1, 1), (1, 0, 1, s)),
        SarimaSpec((1, 1, 1), (1, 0, 1, s)),
        SarimaSpec((0, 1, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((1, 1, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((1, 0, 0), (0, 1, 1, s)),
        SarimaSpec((1, 0, 1), (0, 1, 1, s)),
        SarimaSpec((1, 0, 0), (0, 1, 1, s), trend="c"),
        SarimaSpec((1, 0, 1), (0, 1, 1, s), trend="c"),
        SarimaSpec((0, 1, 1), (0, 1, 1, s)),
        SarimaSpec((1, 1, 1), (0, 1, 1, s)),
    )


#: Default search space for weekly data: two orders per ``(d, D)`` and seasonality, each
#: with and without drift where ``d + D == 1``.
DEFAULT_CANDIDATES: tuple[SarimaSpec, ...] = _candidates(7)


@dataclass(frozen=True)
class ForecastConfig:
    """Configuration of :func:`forecast_series` / :func:`make_forecast_fn`.

    Attributes:
        horizon: Days ahead.
        season: Seasonal period in days (weekly = 7).
        candidates: SARIMA search space.
        target_col: Input column with the values to model (e.g. ``y_clean`` of the cleaned
            output). Days with ``available == False`` are treated as missing when that
            column exists.
        seasonality_test: Gate seasonal/non-seasonal candidates with the lag-``season`` ACF.
        acf_z: z of the one-sided Bartlett bound of that test.
        seasonal_only_when_strong: Drop non-seasonal candidates when seasonality is strong.
        differencing_by_tests: Pick ``(d, D)`` by KPSS / seasonal strength first.
        drift_by_aic: Decide constant/drift on the cheapest order that has both variants,
            then fit only that variant of the others.
        kpss_alpha: KPSS level; p below it -> ``d = 1``.
        seasonal_strength_threshold: STL seasonal strength at which ``D = 1``.
        simple_differencing: Fit with differenced data when the AICs stay comparable.
        maxiter: L-BFGS iterations of a cold fit.
        warm_maxiter: L-BFGS iterations of a warm-started fit (cold retry on failure).
        require_convergence: Reject candidates whose optimiser did not converge.
        patience: Stop after this many consecutive candidates without AIC gain; None = all.
        min_aic_gain: AIC decrease that counts as a gain.
        min_obs: Observed days needed for SARIMA.
        min_obs_ets: Observed days needed for the ETS fallback.
        max_nan_frac: Missing-day share above which a series is ``nan_heavy``.
        intermittent_method: ``sba``, ``croston`` or ``None`` (intermittent -> SARIMA path).
        adi_threshold: Average demand interval above which a series is intermittent.
        croston_alpha: Smoothing constant of Croston/SBA.
        preclean: Replace gross outliers by the Hampel median before modelling.
        preclean_window: Hampel window of ``preclean``.
        preclean_sigmas: Hampel threshold of ``preclean`` (only gross outliers).
        max_forecast_ratio: Reject model forecasts beyond this multiple of max |y|.
        max_history: Model only the last N days (speed on long series); None = all.
        nonnegative: Clip point forecasts and bounds at 0.
        engine: ``statsmodels`` (the SARIMA search, ETS fallback) or ``statsforecast``
            (AutoARIMA, AutoETS fallback; needs the optional ``statsforecast`` package).
        fast_likelihood: Fit simple-differenced candidates on complete data with the
            innovations-algorithm likelihood (:mod:`~shikong.timeseries.arma_mle`);
            False = statsmodels' Kalman filter for every fit.
        sf_approximation: statsforecast AutoARIMA searches orders on the conditional
            sum of squares and refits the winner by maximum likelihood (R's
            ``auto.arima`` default for series longer than 150 points).
    """

    horizon: int = 28
    season: int = 7
    candidates: tuple[SarimaSpec, ...] = DEFAULT_CANDIDATES
    target_col: str = "y"
    seasonality_test: bool = True
    acf_z: float = 1.96
    seasonal_only_when_strong: bool = True
    differencing_by_tests: bool = True
    drift_by_aic: bool = True
    kpss_alpha: float = 0.05
    seasonal_strength_threshold: float = 0.64
    simple_differencing: bool = True
    maxiter: int = 50
    warm_maxiter: int = 25
    require_convergence: bool = True
    patience: int | None = 2
    min_aic_gain: float = 0.0
    min_obs: int = 42
    min_obs_ets: int = 14
    max_nan_frac: float = 0.4
    intermittent_method: str | None = "sba"
    adi_threshold: float = 1.32
    croston_alpha: float = 0.1
    preclean: bool = True
    preclean_window: int = 15
    preclean_sigmas: float = 5.0
    max_forecast_ratio: float = 10.0
    max_history: int | None = None
    nonnegative: bool = True
    engine: str = "statsmodels"
    fast_likelihood: bool = True
    sf_approximation: bool = True

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.season < 2:
            raise ValueError(f"season must be >= 2, got {self.season}")
        if not self.candidates:
            raise ValueError("candidates must not be empty")
        if not all(isinstance(c, SarimaSpec) for c in self.candidates):
            raise ValueError("candidates must be SarimaSpec instances")
        if self.maxiter < 1 or self.warm_maxiter < 1:
            raise ValueError("maxiter and warm_maxiter must be >= 1")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if not 0.0 <= self.max_nan_frac <= 1.0:
            raise ValueError(f"max_nan_frac must be in [0, 1], got {self.max_nan_frac}")
        if self.intermittent_method not in (None, "sba", "croston"):
            raise ValueError(
                f"intermittent_method must be 'sba', 'croston' or None, "
                f"got {self.intermittent_method!r}"
            )
        if not 0.0 < self.croston_alpha <= 1.0:
            raise ValueError(f"croston_alpha must be in (0, 1], got {self.croston_alpha}")
        if self.min_obs < 2 * self.season or self.min_obs_ets < 2:
            raise ValueError(
                f"min_obs must be >= 2 * season and min_obs_ets >= 2, "
                f"got {self.min_obs}, {self.min_obs_ets}"
            )
        if self.preclean_window < 3 or self.preclean_window % 2 == 0:
            raise ValueError(f"preclean_window must be odd and >= 3, got {self.preclean_window}")
        if not self.max_forecast_ratio > 1:
            raise ValueError(f"max_forecast_ratio must be > 1, got {self.max_forecast_ratio}")
        if self.max_history is not None and self.max_history < self.min_obs:
            raise ValueError(f"max_history must be >= min_obs, got {self.max_history}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")


#: Warm-start cache: candidate -> last fitted parameter vector.
WarmStarts = dict[SarimaSpec, np.ndarray]


@dataclass
class SeriesForecast:
    """A forecast of one series as arrays (before dates are attached).

    Attributes:
        yhat: Point forecasts, one per step.
        lo80: Lower 80% bounds.
        hi80: Upper 80% bounds.
        lo95: Lower 95% bounds.
        hi95: Upper 95% bounds.
        model: Model name.
        reason: Routing reason code.
        warm: Updated warm-start cache (SARIMA parameters by candidate).
    """

    yhat: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    model: str
    reason: str
    warm: WarmStarts = field(default_factory=dict)


def _from_sigma(yhat: np.ndarray, sigma: np.ndarray, model: str, reason: str) -> SeriesForecast:
    return SeriesForecast(
        yhat,
        yhat - Z80 * sigma,
        yhat + Z80 * sigma,
        yhat - Z95 * sigma,
        yhat + Z95 * sigma,
        model,
        reason,
    )


# --------------------------------------------------------------------------- tests


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


# --------------------------------------------------------------------------- simple models


def seasonal_naive_forecast(
    y: np.ndarray, horizon: int, season: int = 7, *, reason: str = OK
) -> SeriesForecast:
    """Seasonal-naive forecast with normal intervals (naive when under one season).

    ``sigma`` is the RMS of the in-sample seasonal-naive errors and the h-step sigma is
    ``sigma * sqrt(floor((h - 1) / season) + 1)``. With fewer than two errors a Poisson-like
    ``sqrt(mean y)`` is used, since the values are counts.

    Args:
        y: Values by day (NaNs interpolated).
        horizon: Steps ahead.
        season: Seasonal period.
        reason: Reason code to carry.

    Returns:
        The forecast (not yet clipped).
    """
    y = np.asarray(y, dtype=float)
    x = fill_linear(y)
    if x.size == 0 or not np.isfinite(x).any():
        z = np.zeros(horizon)
        return _from_sigma(z, z.copy(), MODEL_ZERO, reason)
    if x.size < season:
        return naive_forecast(y, horizon, reason=reason)
    steps = np.arange(horizon)
    yhat = x[-season:][steps % season]
    err = y[season:] - y[:-season]
    err = err[np.isfinite(err)]
    sigma = _sigma_or_poisson(err, x)
    return _from_sigma(yhat, sigma * np.sqrt(steps // season + 1.0), MODEL_SNAIVE, reason)


def naive_forecast(y: np.ndarray, horizon: int, *, reason: str = OK) -> SeriesForecast:
    """Last-value forecast, ``sigma_h = sigma * sqrt(h)`` from one-step differences."""
    y = np.asarray(y, dtype=float)
    x = fill_linear(y)
    if x.size == 0 or not np.isfinite(x).any():
        z = np.zeros(horizon)
        return _from_sigma(z, z.copy(), MODEL_ZERO, reason)
    last = float(y[np.isfinite(y)][-1])
    err = np.diff(y)
    err = err[np.isfinite(err)]
    sigma = _sigma_or_poisson(err, x)
    steps = np.arange(1, horizon + 1, dtype=float)
    return _from_sigma(np.full(horizon, last), sigma * np.sqrt(steps), MODEL_NAIVE, reason)


def _sigma_or_poisson(err: np.ndarray, x: np.ndarray) -> float:
    if err.size >= 2:
        return float(np.sqrt(np.mean(err**2)))
    return float(np.sqrt(max(float(np.nanmean(x)), 0.0)))


def croston_forecast(
    y: np.ndarray, horizon: int, *, alpha: float = 0.1, variant: str = "sba", reason: str = OK
) -> SeriesForecast:
    """Croston's method or its Syntetos-Boylan bias correction for intermittent demand.

    Sizes and intervals are smoothed with the same ``alpha`` on observed days only
    (missing days are skipped, not counted as zero demand). The point forecast is the
    flat rate ``z / p`` (times ``1 - alpha / 2`` for SBA). Intervals are empirical quantiles
    of the in-sample one-step errors around that rate.

    Args:
        y: Values by day, NaN = not observed.
        horizon: Steps ahead.
        alpha: Smoothing constant.
        variant: ``sba`` or ``croston``.
        reason: Reason code to carry.

    Returns:
        The forecast (not yet clipped).
    """
    x = np.asarray(y, dtype=float)
    x = x[np.isfinite(x)]
    nz = np.flatnonzero(x > 0)
    if nz.size == 0:
        z = np.zeros(horizon)
        return _from_sigma(z, z.copy(), MODEL_ZERO, reason)
    factor = 1.0 - alpha / 2.0 if variant == "sba" else 1.0
    size, interval, since = float(x[nz[0]]), float(nz[0] + 1), 1
    fitted = np.full(x.size, np.nan)
    for t in range(nz[0] + 1, x.size):
        fitted[t] = factor * size / interval
        if x[t] > 0:
            size += alpha * (x[t] - size)
            interval += alpha * (since - interval)
            since = 1
        else:
            since += 1
    rate = factor * size / interval
    yhat = np.full(horizon, rate)
    err = (x - fitted)[np.isfinite(fitted)]
    name = "SBA" if variant == "sba" else "Croston"
    if err.size < 2:
        return _from_sigma(yhat, np.full(horizon, math.sqrt(rate)), name, reason)
    q = np.quantile(err, [0.025, 0.10, 0.90, 0.975])
    return SeriesForecast(yhat, yhat + q[1], yhat + q[2], yhat + q[0], yhat + q[3], name, reason)


def ets_forecast(
    y: np.ndarray, horizon: int, season: int = 7, *, maxiter: int = 50, reason: str = OK
) -> SeriesForecast | None:
    """State-space ETS (additive errors, damped additive trend, additive season).

    The trend is used from two seasons of data, the season from two full seasons. Missing
    days are handled by the Kalman filter.

    Args:
        y: Values by day, NaN = missing.
        horizon: Steps ahead.
        season: Seasonal period.
        maxiter: Optimiser iterations.
        reason: Reason code to carry.

    Returns:
        The forecast, or None when the fit fails or is not finite.
    """
    y = np.asarray(y, dtype=float)
    n_obs = int(np.isfinite(y).sum())
    use_season = n_obs >= 2 * season and y.size >= 2 * season
    use_trend = n_obs >= 2 * season
    # the heuristic initial state is ~10x cheaper than estimating it, but needs gap-free
    # data; with gaps the concentrated initialisation lets the Kalman filter skip them
    inits = ("heuristic", "concentrated") if np.isfinite(y).all() else ("concentrated",)
    mean = se = None
    for init in inits:
        try:
            with quiet():
                model = StateSpaceETS(
                    y,
                    trend=use_trend,
                    damped_trend=use_trend,
                    seasonal=season if use_season else None,
                    initialization_method=init,
                )
                res = model.fit(disp=False, maxiter=maxiter)
                fc = res.get_forecast(horizon)
                mean = np.asarray(fc.predicted_mean, dtype=float)
                se = np.asarray(fc.se_mean, dtype=float)
        except Exception:  # noqa: BLE001 - a failed fallback moves on down the chain
            logger.debug("ETS fit (%s) failed", init, exc_info=True)
            continue
        if np.isfinite(mean).all() and np.isfinite(se).all():
            break
        mean = se = None
    if mean is None or se is None:
        return None
    name = f"ETS(A,{'Ad' if use_trend else 'N'},{'A' if use_season else 'N'})"
    return _from_sigma(mean, se, name, reason)


# --------------------------------------------------------------------------- SARIMA


def fit_sarimax(
    y: np.ndarray,
    spec: SarimaSpec,
    *,
    simple_differencing: bool = False,
    maxiter: int = 50,
    start_params: np.ndarray | None = None,
):  # noqa: ANN201 - statsmodels results type
    """Fit one SARIMAX candidate with statsmodels the way the search does.

    L-BFGS, concentrated scale, and no parameter covariance (``cov_type='none'``: the
    outer-product Hessian costs ~6% of a fit and nothing here reads standard errors).

    Args:
        y: Values by day, NaN = missing.
        spec: The candidate.
        simple_differencing: Difference before building the state space.
        maxiter: Optimiser iterations.
        start_params: Warm start (e.g. the previous fold's parameters).

    Returns:
        The statsmodels ``SARIMAXResults``.
    """
    model = _sarimax_model(y, spec, simple_differencing=simple_differencing)
    with quiet():
        return model.fit(
            start_params=start_params,
            method="lbfgs",
            maxiter=maxiter,
            disp=False,
            cov_type="none",
        )


def sarimax_forecast_arrays(
    y: np.ndarray, spec: SarimaSpec, params: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the level forecast for fixed parameters (no fitting).

    Args:
        y: Values by day (levels).
        spec: The candidate.
        params: Parameters (from a simple-differenced or full fit; same layout).
        horizon: Steps ahead.

    Returns:
        ``(mean, se)`` arrays of length ``horizon``.
    """
    model = SARIMAX(
        np.asarray(y, dtype=float),
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        simple_differencing=False,
        concentrate_scale=True,
    )
    with quiet():
        # no parameter covariance: the outer-product Hessian would cost more than the filter
        res = model.filter(params, cov_type="none")
        fc = res.get_forecast(horizon)
        return np.asarray(fc.predicted_mean, dtype=float), np.asarray(fc.se_mean, dtype=float)


@dataclass
class _Fit:
    spec: SarimaSpec
    aic: float
    params: np.ndarray
    result: object | None  # statsmodels results, None for an arma_mle fit
    order_index: int


@dataclass(frozen=True)
class CandidateFit:
    """What one optimiser run of a candidate returns, whichever likelihood was used.

    Attributes:
        params: Constrained parameters in SARIMAX layout (concentrated scale).
        aic: Akaike information criterion.
        converged: Whether the optimiser reported convergence.
        result: The statsmodels results (Kalman path) or None (innovations path).
    """

    params: np.ndarray
    aic: float
    converged: bool
    result: object | None


def sarimax_start_params(y: np.ndarray, spec: SarimaSpec) -> np.ndarray:
    """statsmodels' default start of the simple-differenced model (what ``fit`` would use)."""
    model = _sarimax_model(y, spec, simple_differencing=True)
    with quiet():
        return np.asarray(model.start_params, dtype=float)


def _sarimax_model(y: np.ndarray, spec: SarimaSpec, *, simple_differencing: bool) -> SARIMAX:
    """The statsmodels state-space model of ``spec`` (scale concentrated out)."""
    return SARIMAX(
        np.asarray(y, dtype=float),
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        simple_differencing=simple_differencing,
        concentrate_scale=True,
    )


def fit_candidate_once(
    y: np.ndarray,
    spec: SarimaSpec,
    *,
    simple: bool,
    maxiter: int,
    start_params: np.ndarray | None,
    fast: bool,
) -> CandidateFit | None:
    """One optimiser run of one candidate (may raise; the caller skips failures).

    Args:
        y: Values by day, NaN = missing.
        spec: The candidate.
        simple: Fit the simple-differenced model.
        maxiter: L-BFGS iterations.
        start_params: Warm start, or None for statsmodels' default start.
        fast: Allow the innovations-algorithm likelihood (used only when ``simple`` and
            no value is missing; otherwise statsmodels' Kalman filter).

    Returns:
        The fit, or None when the innovations path could not evaluate the likelihood.
    """
    if fast and simple and np.isfinite(y).all():
        start = sarimax_start_params(y, spec) if start_params is None else start_params
        fit = fit_differenced(
            y,
            Layout.of(spec.order, spec.statsmodels_seasonal_order, spec.trend),
            start,
            maxiter=maxiter,
        )
        if fit is None:
            return None
        return CandidateFit(fit.params, fit.aic, fit.converged, None)
    res = fit_sarimax(
        y, spec, simple_differencing=simple, maxiter=maxiter, start_params=start_params
    )
    converged = bool(res.mle_retvals.get("converged", True)) if res.mle_retvals else True
    return CandidateFit(np.asarray(res.params, dtype=float), float(res.aic), converged, res)


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


def _sarima(y: np.ndarray, cfg: ForecastConfig, warm: WarmStarts) -> SeriesForecast | None:
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
        if _sane(mean, se, ref, cfg):
            return _from_sigma(mean, se, fit.spec.name, OK)
        logger.debug("rejected %s: forecast out of range", fit.spec.name)
    return None


def _sane(mean: np.ndarray, se: np.ndarray, ref: float, cfg: ForecastConfig) -> bool:
    if not (np.isfinite(mean).all() and np.isfinite(se).all()):
        return False
    return bool(np.max(np.abs(mean)) <= cfg.max_forecast_ratio * max(ref, 1e-9))


# --------------------------------------------------------------------------- routing


def _statsforecast(
    y: np.ndarray, cfg: ForecastConfig, what: str, reason: str
) -> SeriesForecast | None:
    """AutoARIMA (``what='arima'``) or AutoETS through :mod:`sf_engine`; None on failure."""
    try:
        if what == "arima":
            arrays, name = sf_engine.autoarima(
                y, cfg.horizon, cfg.season, approximation=cfg.sf_approximation
            )
        else:
            arrays, name = sf_engine.autoets(y, cfg.horizon, cfg.season)
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 - a failed model moves on down the chain
        logger.debug("statsforecast %s failed", what, exc_info=True)
        return None
    yhat, lo80, hi80, lo95, hi95 = arrays
    fc = SeriesForecast(yhat, lo80, hi80, lo95, hi95, name, reason)
    ref = float(np.nanmax(np.abs(y)))
    if (
        _sane(fc.yhat, fc.hi95 - fc.yhat, ref, cfg)
        and np.isfinite(np.concatenate([fc.lo80, fc.hi80, fc.lo95])).all()
    ):
        return fc
    logger.debug("rejected statsforecast %s: forecast out of range", name)
    return None


def _ets(y: np.ndarray, cfg: ForecastConfig, reason: str) -> SeriesForecast | None:
    if cfg.engine == "statsforecast":
        return _statsforecast(y, cfg, "ets", reason)
    return ets_forecast(y, cfg.horizon, cfg.season, maxiter=cfg.maxiter, reason=reason)


def _fallback(y: np.ndarray, cfg: ForecastConfig, reason: str) -> SeriesForecast:
    n_obs = int(np.isfinite(y).sum())
    if n_obs >= cfg.min_obs_ets:
        ets = _ets(y, cfg, reason)
        ref = float(np.nanmax(np.abs(y)))
        if ets is not None and _sane(ets.yhat, ets.hi95 - ets.yhat, ref, cfg):
            return ets
        reason = f"{reason};{ETS_FAILED}"
    return seasonal_naive_forecast(y, cfg.horizon, cfg.season, reason=reason)


def _preclean(y: np.ndarray, cfg: ForecastConfig) -> np.ndarray:
    """Replace gross outliers by their Hampel window median (missing days stay NaN)."""
    if not cfg.preclean or int(np.isfinite(y).sum()) < cfg.preclean_window:
        return y
    hres = hampel(
        y,
        cfg.preclean_window,
        cfg.preclean_sigmas,
        min_periods=max(3, cfg.preclean_window // 3),
        min_scale=1.0,
    )
    return np.where(hres.is_outlier, hres.median, y) if hres.is_outlier.any() else y


def _route(y: np.ndarray, cfg: ForecastConfig, warm: WarmStarts) -> SeriesForecast:
    h = cfg.horizon
    finite = np.isfinite(y)
    if not finite.any():
        z = np.zeros(h)
        return _from_sigma(z, z.copy(), MODEL_ZERO, EMPTY)
    y = y[int(np.argmax(finite)) :]  # history starts at the first observation
    if cfg.max_history is not None and y.size > cfg.max_history:
        y = y[-cfg.max_history :]
    obs = y[np.isfinite(y)]
    if np.all(obs == 0):
        return seasonal_naive_forecast(y, h, cfg.season, reason=ALL_ZERO)
    if obs.size > 1 and np.ptp(obs) == 0:
        return seasonal_naive_forecast(y, h, cfg.season, reason=CONSTANT)
    if 1.0 - obs.size / y.size > cfg.max_nan_frac:
        return _fallback(_preclean(y, cfg), cfg, NAN_HEAVY)
    nonzero = int(np.count_nonzero(obs))
    # before precleaning: on sparse sales every sale looks like an outlier to Hampel
    if (
        cfg.intermittent_method is not None
        and nonzero >= 2
        and obs.size / nonzero > cfg.adi_threshold
    ):
        return croston_forecast(
            y, h, alpha=cfg.croston_alpha, variant=cfg.intermittent_method, reason=INTERMITTENT
        )
    y = _preclean(y, cfg)
    if obs.size < cfg.min_obs:
        return _fallback(y, cfg, TOO_SHORT)
    if cfg.engine == "statsforecast":
        fc = _statsforecast(y, cfg, "arima", OK)
    else:
        fc = _sarima(y, cfg, warm)
    if fc is not None:
        return fc
    return _fallback(y, cfg, SARIMA_FAILED)


def forecast_array(
    y: np.ndarray, cfg: ForecastConfig | None = None, warm: WarmStarts | None = None
) -> SeriesForecast:
    """Forecast one complete daily array; never raises.

    Args:
        y: Values by consecutive day, NaN = missing; the last element is the origin.
        cfg: Configuration; default :class:`ForecastConfig()`.
        warm: Warm-start cache, updated in place with the parameters of every fitted
            candidate (pass the same dict across backtest folds).

    Returns:
        The forecast, clipped at 0 when ``cfg.nonnegative``.
    """
    cfg = cfg or ForecastConfig()
    warm = {} if warm is None else warm
    y = np.asarray(y, dtype=float)
    try:
        fc = _route(y, cfg, warm)
    except ImportError:
        raise  # a missing engine is a set-up error, not a bad series
    except Exception as exc:  # noqa: BLE001 - one bad series must never fail the task
        logger.exception("forecast routing failed; using seasonal naive")
        try:
            fc = seasonal_naive_forecast(
                y, cfg.horizon, cfg.season, reason=f"error:{type(exc).__name__}"
            )
        except Exception:  # noqa: BLE001
            z = np.zeros(cfg.horizon)
            fc = _from_sigma(z, z.copy(), MODEL_ZERO, f"error:{type(exc).__name__}")
    if cfg.nonnegative:
        for name in ("yhat", "lo80", "hi80", "lo95", "hi95"):
            setattr(fc, name, np.maximum(getattr(fc, name), 0.0))
    fc.warm = warm
    return fc


FORECAST_FIELDS: tuple[tuple[str, str], ...] = (
    ("series_id", "string"),
    ("ds", "date"),
    ("step", "int"),
    ("yhat", "double"),
    ("lo80", "double"),
    ("hi80", "double"),
    ("lo95", "double"),
    ("hi95", "double"),
    ("model", "string"),
    ("reason", "string"),
)

#: DDL of the forecast output.
FORECAST_SCHEMA: str = ddl(FORECAST_FIELDS)


def forecast_frame(series_id: str | None, origin: pd.Timestamp, fc: SeriesForecast) -> pd.DataFrame:
    """Attach ids and dates (``origin + step`` days) to a :class:`SeriesForecast`."""
    h = fc.yhat.size
    steps = np.arange(1, h + 1)
    dates = pd.DatetimeIndex(origin + pd.to_timedelta(steps, unit="D"))
    out = pd.DataFrame(
        {
            "series_id": np.full(h, series_id, dtype=object),
            "ds": to_date_objects(dates),
            "step": steps,
            "yhat": fc.yhat,
            "lo80": fc.lo80,
            "hi80": fc.hi80,
            "lo95": fc.lo95,
            "hi95": fc.hi95,
            "model": fc.model,
            "reason": fc.reason,
        }
    )
    return conform(out, FORECAST_FIELDS)


def forecast_series(df: pd.DataFrame, cfg: ForecastConfig | None = None) -> pd.DataFrame:
    """Forecast one series ``horizon`` days past its last date.

    Args:
        df: All rows of ONE series: ``series_id``, ``ds``, ``cfg.target_col`` and optionally
            ``available``. Gaps in the calendar are missing days. Not modified.
        cfg: Configuration; default :class:`ForecastConfig()`.

    Returns:
        ``horizon`` rows following :data:`FORECAST_SCHEMA`; empty when the input has no
        parseable date.

    Raises:
        ValueError: Only when the input lacks ``ds`` or the target column (a wiring error).
    """
    cfg = cfg or ForecastConfig()
    require_columns(df, ("ds", cfg.target_col), "forecast_series")
    sid = first_series_id(df)
    day = daily_frame(df, cfg.target_col)
    if day.empty:
        logger.warning("series %s has no dated rows; no forecast", sid)
        return empty_frame(FORECAST_FIELDS)
    fc = forecast_array(day["value"].to_numpy(dtype=float), cfg)
    return forecast_frame(sid, pd.Timestamp(day.index[-1]), fc)


def make_forecast_fn(cfg: ForecastConfig | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Build the grouped forecast function for ``applyInPandas(fn, FORECAST_SCHEMA)``.

    Args:
        cfg: Configuration captured by the closure.

    Returns:
        ``fn(pdf) -> pdf`` with :data:`FORECAST_SCHEMA` columns.
    """
    cfg = cfg or ForecastConfig()

    def _forecast(pdf: pd.DataFrame) -> pd.DataFrame:
        return forecast_series(pdf, cfg)

    return _forecast
