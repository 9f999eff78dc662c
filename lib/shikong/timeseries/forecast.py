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
``single_sale``    one non-zero day, more than ``adi_threshold`` days         mean
``too_short``      fewer than ``min_obs`` observed days                       fallback chain
``ok``             a SARIMA candidate converged and passed the sanity check   SARIMA
``sarima_failed``  no SARIMA candidate usable                                 fallback chain
``error:<Exc>``    unexpected exception (logged)                              seasonal naive
=================  =========================================================  ==============

The fallback chain is state-space ETS (additive, damped trend, weekly season when two
seasons exist) then seasonal naive, then naive; when ETS fails ``;ets_failed`` is appended
to the reason. With ``engine='statsforecast'``, ``ok`` / ``sarima_failed`` refer to
AutoARIMA and the ETS step is AutoETS.

This module routes; the models live beside it: :mod:`~shikong.timeseries.order_search`
(the pruned SARIMA search: seasonality gate, differencing by tests, drift by AIC, simple
differencing, innovations-algorithm likelihood) over the candidates of
:mod:`~shikong.timeseries.sarima`, the simple models of :mod:`~shikong.timeseries.baselines`,
and the configuration and result types of :mod:`~shikong.timeseries.forecast_types`.

Engines (``ForecastConfig.engine``): ``statsmodels`` (the SARIMA search) or ``statsforecast``
(Nixtla's AutoARIMA, then AutoETS, see :mod:`shikong.timeseries.sf_engine`). The routing,
the reasons, the output and the backtest are the same for both.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shikong.frames import conform, ddl, empty_frame
from shikong.timeseries import sf_engine
from shikong.timeseries._common import (
    daily_frame,
    first_series_id,
    require_columns,
    to_date_objects,
)
from shikong.timeseries.baselines import (
    croston_forecast,
    ets_forecast,
    mean_forecast,
    seasonal_naive_forecast,
)
from shikong.timeseries.cleaning import hampel
from shikong.timeseries.forecast_types import (
    ALL_ZERO,
    CONSTANT,
    EMPTY,
    ETS_FAILED,
    INTERMITTENT,
    MODEL_ZERO,
    NAN_HEAVY,
    OK,
    SARIMA_FAILED,
    SINGLE_SALE,
    TOO_SHORT,
    ForecastConfig,
    SeriesForecast,
    from_sigma,
    is_sane,
)
from shikong.timeseries.order_search import sarima_forecast
from shikong.timeseries.sarima import WarmStarts

logger = logging.getLogger(__name__)


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
        is_sane(fc.yhat, fc.hi95 - fc.yhat, ref, cfg)
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
        if ets is not None and is_sane(ets.yhat, ets.hi95 - ets.yhat, ref, cfg):
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
        return from_sigma(z, z.copy(), MODEL_ZERO, EMPTY)
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
    # A single sale: no interval for Croston, and too little for SARIMA, which a full
    # catalogue would fit on many (1,385 of the default world's 23,239 series).
    if cfg.intermittent_method is not None and nonzero == 1 and obs.size > cfg.adi_threshold:
        return mean_forecast(y, h, reason=SINGLE_SALE)
    y = _preclean(y, cfg)
    if obs.size < cfg.min_obs:
        return _fallback(y, cfg, TOO_SHORT)
    if cfg.engine == "statsforecast":
        fc = _statsforecast(y, cfg, "arima", OK)
    else:
        fc = sarima_forecast(y, cfg, warm)
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
            fc = from_sigma(z, z.copy(), MODEL_ZERO, f"error:{type(exc).__name__}")
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
    return conform(out, FORECAST_FIELDS, nullable=False)


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
        return empty_frame(FORECAST_FIELDS, nullable=False)
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


#: DDL of :func:`make_origin_forecast_fn`'s rows (``day0``: origin, days since 1970-01-01).
ARIMA_SCHEMA = (
    "series_id string, day0 long, step int, yhat double, lo80 double, hi80 double, model string"
)


def make_origin_forecast_fn(
    origins: Sequence[int], horizon: int, cfg: Any
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped function: forecast one series from each origin with the data before it."""
    fcfg = dataclasses.replace(cfg, horizon=horizon)

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        day = pd.to_datetime(pdf["ds"]).sort_values()
        y = pdf.set_index(pd.to_datetime(pdf["ds"]))["y"].reindex(day).to_numpy(float)
        days = ((day - pd.Timestamp("1970-01-01")).dt.days).to_numpy()
        rows = []
        for d0 in origins:
            hist = y[days < d0]
            fc = forecast_array(hist, fcfg)
            for h in range(horizon):
                rows.append(
                    (
                        pdf["series_id"].iloc[0],
                        d0,
                        h + 1,
                        fc.yhat[h],
                        fc.lo80[h],
                        fc.hi80[h],
                        fc.model,
                    )
                )
        return pd.DataFrame(
            rows, columns=["series_id", "day0", "step", "yhat", "lo80", "hi80", "model"]
        )

    return fn
