"""The ``statsforecast`` engine: Nixtla's AutoARIMA, then AutoETS, on one series.

Used by :func:`shikong.timeseries.forecast.forecast_array` when
``ForecastConfig.engine == "statsforecast"``; the routing before the model (empty, all
zero, constant, NaN-heavy, intermittent, too short), the reasons, the output columns and
the backtest are the ones of the statsmodels engine. Only the model stage differs:

* AutoARIMA with ``season_length = cfg.season`` (weekly), Hyndman-Khandakar stepwise
  search with the KPSS / seasonal-strength differencing tests. With
  ``cfg.sf_approximation`` the search scores orders by conditional sum of squares and
  refits the winner by exact likelihood, R's ``auto.arima`` default for series longer
  than 150 points (about 10x cheaper than exact likelihood for every order on 730 days);
* AutoETS (``ZZZ``, season ``cfg.season``) where the statsmodels engine fits its
  state-space ETS fallback;
* 80% and 95% intervals from the models' own (normal) forecast distributions.

statsforecast needs complete data: missing days are linearly interpolated first (the
statsmodels engine leaves them to the Kalman filter).

Threads and start-up: the models are called directly (no ``StatsForecast`` object, so no
``n_jobs`` process pool) and run in the calling thread. statsforecast 2.x has no numba
dependency (its ARIMA/ETS kernels are a compiled C++ extension), so there is no JIT
compilation to warm up or cache; the one-off cost in a fresh Python worker is the import
(~1-2.5 s, it pulls in statsmodels.api, utilsforecast and fugue), paid once per worker
because Spark reuses Python workers. :func:`load` times it and logs it once per process.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from shikong.timeseries._common import fill_linear, quiet

logger = logging.getLogger(__name__)

LEVELS = [80, 95]

#: ``(mean, lo80, hi80, lo95, hi95)`` arrays of one forecast.
Bands = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_MODULES: SimpleNamespace | None = None
#: Seconds the import took in this process (None before :func:`load`).
IMPORT_SECONDS: float | None = None


def available() -> bool:
    """Whether the optional ``statsforecast`` package can be imported."""
    try:
        load()
    except ImportError:
        return False
    return True


def load() -> SimpleNamespace:
    """Import statsforecast once per process (Python worker) and log what it cost.

    Returns:
        Namespace with ``AutoARIMA``, ``AutoETS`` and ``arima_string``.

    Raises:
        ImportError: When the optional extra is not installed (``pip install
            'shikong[statsforecast]'``).
    """
    global _MODULES, IMPORT_SECONDS
    if _MODULES is None:
        t0 = time.perf_counter()
        try:
            from statsforecast.arima import arima_string
            from statsforecast.models import AutoARIMA, AutoETS
        except ImportError as exc:
            raise ImportError(
                "timeseries.engine 'statsforecast' needs the optional package: "
                "pip install 'shikong[statsforecast]'"
            ) from exc
        IMPORT_SECONDS = time.perf_counter() - t0
        logger.info("statsforecast imported in %.2fs (once per Python worker)", IMPORT_SECONDS)
        _MODULES = SimpleNamespace(AutoARIMA=AutoARIMA, AutoETS=AutoETS, arima_string=arima_string)
    return _MODULES


def _arrays(pred: dict[str, Any]) -> Bands:
    mean, lo80, hi80, lo95, hi95 = (
        np.asarray(pred[k], dtype=float) for k in ("mean", "lo-80", "hi-80", "lo-95", "hi-95")
    )
    return mean, lo80, hi80, lo95, hi95


def autoarima(
    y: np.ndarray, horizon: int, season: int, *, approximation: bool = True
) -> tuple[Bands, str]:
    """Fit AutoARIMA on one series and forecast with 80%/95% intervals (may raise).

    Args:
        y: Values by day; NaNs are interpolated linearly.
        horizon: Steps ahead.
        season: Seasonal period.
        approximation: Conditional-sum-of-squares order search (see module docstring).

    Returns:
        ``((mean, lo80, hi80, lo95, hi95), model name)``, e.g.
        ``ARIMA(1,0,1)(0,1,1)[7]``.
    """
    sf = load()
    x = fill_linear(np.asarray(y, dtype=float))
    with quiet():
        model = sf.AutoARIMA(season_length=season, approximation=approximation).fit(x)
        pred = model.predict(h=horizon, level=LEVELS)
    name = " ".join(sf.arima_string(model.model_).split())
    return _arrays(pred), name


def autoets(y: np.ndarray, horizon: int, season: int) -> tuple[Bands, str]:
    """Fit AutoETS on one series and forecast with 80%/95% intervals (may raise).

    Args:
        y: Values by day; NaNs are interpolated linearly.
        horizon: Steps ahead.
        season: Seasonal period (dropped by statsforecast when under two seasons).

    Returns:
        ``((mean, lo80, hi80, lo95, hi95), model name)``, e.g. ``ETS(A,Ad,A)``.
    """
    sf = load()
    x = fill_linear(np.asarray(y, dtype=float))
    with quiet():
        model = sf.AutoETS(season_length=season).fit(x)
        pred = model.predict(h=horizon, level=LEVELS)
    return _arrays(pred), str(model.model_["method"])
