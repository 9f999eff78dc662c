"""Simple models of the forecaster: seasonal naive, naive, Croston/SBA and state-space ETS.

They are the routing's answers where SARIMA is not tried (empty, all-zero, constant or
intermittent series) and its fallback chain where SARIMA is not usable (ETS, then seasonal
naive, then naive); see :mod:`shikong.timeseries.forecast`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from statsmodels.tsa.statespace.exponential_smoothing import (
    ExponentialSmoothing as StateSpaceETS,
)

from shikong.timeseries._common import fill_linear, quiet
from shikong.timeseries.forecast_types import (
    MODEL_MEAN,
    MODEL_NAIVE,
    MODEL_SNAIVE,
    MODEL_ZERO,
    OK,
    SeriesForecast,
    from_sigma,
)

logger = logging.getLogger(__name__)


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
        return from_sigma(z, z.copy(), MODEL_ZERO, reason)
    if x.size < season:
        return naive_forecast(y, horizon, reason=reason)
    steps = np.arange(horizon)
    yhat = x[-season:][steps % season]
    err = y[season:] - y[:-season]
    err = err[np.isfinite(err)]
    sigma = _sigma_or_poisson(err, x)
    return from_sigma(yhat, sigma * np.sqrt(steps // season + 1.0), MODEL_SNAIVE, reason)


def mean_forecast(y: np.ndarray, horizon: int, *, reason: str = OK) -> SeriesForecast:
    """The mean of the observed days, with normal intervals from their standard deviation.

    For a series with a single sale in its history: Croston has no interval to smooth
    (its first interval would be the arbitrary time from the start of the data), and a
    SARIMA fit on it mostly lands on this constant at a hundred times the cost.
    """
    x = np.asarray(y, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        z = np.zeros(horizon)
        return from_sigma(z, z.copy(), MODEL_ZERO, reason)
    return from_sigma(
        np.full(horizon, float(np.mean(x))), np.full(horizon, float(np.std(x))), MODEL_MEAN, reason
    )


def naive_forecast(y: np.ndarray, horizon: int, *, reason: str = OK) -> SeriesForecast:
    """Last-value forecast, ``sigma_h = sigma * sqrt(h)`` from one-step differences."""
    y = np.asarray(y, dtype=float)
    x = fill_linear(y)
    if x.size == 0 or not np.isfinite(x).any():
        z = np.zeros(horizon)
        return from_sigma(z, z.copy(), MODEL_ZERO, reason)
    last = float(y[np.isfinite(y)][-1])
    err = np.diff(y)
    err = err[np.isfinite(err)]
    sigma = _sigma_or_poisson(err, x)
    steps = np.arange(1, horizon + 1, dtype=float)
    return from_sigma(np.full(horizon, last), sigma * np.sqrt(steps), MODEL_NAIVE, reason)


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
    of the in-sample one-step errors around that rate, widened where needed to hold it.

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
        return from_sigma(z, z.copy(), MODEL_ZERO, reason)
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
        return from_sigma(yhat, np.full(horizon, math.sqrt(rate)), name, reason)
    # Bounds never exclude the rate: on a series selling on under 1 day in 40 (a single
    # sale, say) every upper error quantile is negative.
    q = np.quantile(err, [0.025, 0.10, 0.90, 0.975])
    lo95, lo80, hi80, hi95 = np.minimum(q[:2], 0.0).tolist() + np.maximum(q[2:], 0.0).tolist()
    return SeriesForecast(yhat, yhat + lo80, yhat + hi80, yhat + lo95, yhat + hi95, name, reason)


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
    return from_sigma(mean, se, name, reason)
