"""Rolling-origin backtest of the forecaster against the seasonal-naive baseline.

Fold ``k`` (``0`` = oldest) trains on every day up to
``T - horizon - (folds - 1 - k) * step`` (exclusive) and is scored on the next ``horizon``
days, so the newest fold ends on the last day of the series. The SARIMA parameters of
each fold warm-start the next one (training windows only grow, so the optimum moves
little). Grouped entry points::

    metrics = sdf.groupBy("series_id").applyInPandas(make_backtest_fn(cfg), BACKTEST_SCHEMA)
    overall = aggregate_metrics(metrics.toPandas())   # or the same sums in Spark
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shikong.frames import conform, ddl, empty_frame
from shikong.timeseries._common import (
    daily_frame,
    first_series_id,
    require_columns,
    to_date_objects,
)
from shikong.timeseries.baselines import seasonal_naive_forecast
from shikong.timeseries.forecast import forecast_array
from shikong.timeseries.forecast_types import ForecastConfig, SeriesForecast
from shikong.timeseries.metrics import METRIC_FIELDS, evaluate
from shikong.timeseries.sarima import WarmStarts

logger = logging.getLogger(__name__)

#: ``model`` value of the configured forecaster's rows.
MODEL_CHOSEN = "chosen"
#: ``model`` value of the seasonal-naive baseline rows.
MODEL_BASELINE = "seasonal_naive"


@dataclass(frozen=True)
class BacktestConfig:
    """Configuration of :func:`backtest_series`.

    Attributes:
        folds: Number of forecast origins.
        horizon: Days scored per fold (overrides ``forecast.horizon``).
        step: Days between consecutive origins.
        forecast: Forecaster configuration (its ``target_col`` is the training column).
        actual_col: Column the forecasts are scored against; default the target column.
            With cleaned input, train on ``y_clean`` and score on ``y_obs`` so that imputed
            days are not counted as actuals.
        min_train: Folds with fewer training days are skipped.
        warm_start: Reuse SARIMA parameters across folds.
    """

    folds: int = 3
    horizon: int = 28
    step: int = 28
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    actual_col: str | None = None
    min_train: int = 14
    warm_start: bool = True

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError(f"folds must be >= 1, got {self.folds}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        if self.min_train < 1:
            raise ValueError(f"min_train must be >= 1, got {self.min_train}")


_KEY_FIELDS: tuple[tuple[str, str], ...] = (
    ("series_id", "string"),
    ("fold", "int"),
    ("origin", "date"),
    ("model", "string"),
)

BACKTEST_FIELDS: tuple[tuple[str, str], ...] = (
    *_KEY_FIELDS,
    ("model_spec", "string"),
    ("reason", "string"),
    *METRIC_FIELDS,
)
#: DDL of the per series x fold x model metrics.
BACKTEST_SCHEMA: str = ddl(BACKTEST_FIELDS)

BACKTEST_FORECAST_FIELDS: tuple[tuple[str, str], ...] = (
    *_KEY_FIELDS,
    ("ds", "date"),
    ("step", "int"),
    ("actual", "double"),
    ("yhat", "double"),
    ("lo80", "double"),
    ("hi80", "double"),
    ("lo95", "double"),
    ("hi95", "double"),
)
#: DDL of the per-day backtest forecasts (for plots / error analysis).
BACKTEST_FORECAST_SCHEMA: str = ddl(BACKTEST_FORECAST_FIELDS)


@dataclass(frozen=True)
class BacktestResult:
    """Both outputs of one series' backtest.

    Attributes:
        metrics: Rows of :data:`BACKTEST_SCHEMA`.
        forecasts: Rows of :data:`BACKTEST_FORECAST_SCHEMA`.
    """

    metrics: pd.DataFrame
    forecasts: pd.DataFrame


def fold_train_ends(n_days: int, folds: int, horizon: int, step: int) -> list[int]:
    """Exclusive end index of each fold's training window, oldest first.

    Args:
        n_days: Length of the complete daily series.
        folds: Number of folds.
        horizon: Days scored per fold.
        step: Days between origins.

    Returns:
        ``[T - horizon - (folds - 1 - k) * step for k in range(folds)]`` (may be <= 0 for
        series too short for the older folds; callers skip those).
    """
    return [n_days - horizon - (folds - 1 - k) * step for k in range(folds)]


def backtest_series(df: pd.DataFrame, cfg: BacktestConfig | None = None) -> BacktestResult:
    """Rolling-origin backtest of one series, chosen model and seasonal-naive baseline.

    Args:
        df: All rows of ONE series with ``ds``, the forecast target column, the actual
            column and optionally ``available``. Not modified.
        cfg: Configuration; default :class:`BacktestConfig()`.

    Returns:
        Metrics (two rows per scored fold: ``model`` = ``chosen`` / ``seasonal_naive``) and
        the per-day forecasts behind them.

    Raises:
        ValueError: Only when the input lacks ``ds``, the target or the actual column.
    """
    cfg = cfg or BacktestConfig()
    fcfg = dataclasses.replace(cfg.forecast, horizon=cfg.horizon)
    target = fcfg.target_col
    actual_col = cfg.actual_col or target
    require_columns(df, ("ds", target, actual_col), "backtest_series")
    sid = first_series_id(df)
    day = daily_frame(df, target)
    if day.empty:
        return BacktestResult(
            empty_frame(BACKTEST_FIELDS, nullable=False),
            empty_frame(BACKTEST_FORECAST_FIELDS, nullable=False),
        )
    y = day["value"].to_numpy(dtype=float)
    if actual_col == target:
        actual = y
    else:
        actual = daily_frame(df, actual_col, start=day.index[0], end=day.index[-1])[
            "value"
        ].to_numpy(dtype=float)
    season = fcfg.season
    h = cfg.horizon
    warm: WarmStarts = {}
    metric_rows: list[dict[str, object]] = []
    fc_frames: list[pd.DataFrame] = []
    for fold, end in enumerate(fold_train_ends(y.size, cfg.folds, h, cfg.step)):
        if end < cfg.min_train:
            logger.debug("series %s fold %d skipped: %d training days", sid, fold, max(end, 0))
            continue
        train = y[:end]
        test = actual[end : end + h]
        insample = actual[:end]
        origin = pd.Timestamp(day.index[end - 1])
        chosen = forecast_array(train, fcfg, warm if cfg.warm_start else None)
        base = seasonal_naive_forecast(train, h, season, reason="baseline")
        if fcfg.nonnegative:
            base = clip_nonnegative(base)
        for label, fc in ((MODEL_CHOSEN, chosen), (MODEL_BASELINE, base)):
            scores = evaluate(test, fc.yhat, fc.lo80, fc.hi80, fc.lo95, fc.hi95, insample, season)
            metric_rows.append(
                {
                    "series_id": sid,
                    "fold": fold,
                    "origin": origin.date(),
                    "model": label,
                    "model_spec": fc.model,
                    "reason": fc.reason,
                    **scores,
                }
            )
            fc_frames.append(_detail(sid, fold, origin, label, test, fc))
    if not metric_rows:
        return BacktestResult(
            empty_frame(BACKTEST_FIELDS, nullable=False),
            empty_frame(BACKTEST_FORECAST_FIELDS, nullable=False),
        )
    metrics = conform(pd.DataFrame(metric_rows), BACKTEST_FIELDS, nullable=False)
    forecasts = conform(
        pd.concat(fc_frames, ignore_index=True), BACKTEST_FORECAST_FIELDS, nullable=False
    )
    return BacktestResult(metrics, forecasts)


def clip_nonnegative(fc: SeriesForecast) -> SeriesForecast:
    return dataclasses.replace(
        fc,
        yhat=np.maximum(fc.yhat, 0.0),
        lo80=np.maximum(fc.lo80, 0.0),
        hi80=np.maximum(fc.hi80, 0.0),
        lo95=np.maximum(fc.lo95, 0.0),
        hi95=np.maximum(fc.hi95, 0.0),
    )


def _detail(
    sid: str | None,
    fold: int,
    origin: pd.Timestamp,
    label: str,
    test: np.ndarray,
    fc: SeriesForecast,
) -> pd.DataFrame:
    h = fc.yhat.size
    steps = np.arange(1, h + 1)
    dates = pd.DatetimeIndex(origin + pd.to_timedelta(steps, unit="D"))
    return pd.DataFrame(
        {
            "series_id": np.full(h, sid, dtype=object),
            "fold": fold,
            "origin": origin.date(),
            "model": label,
            "ds": to_date_objects(dates),
            "step": steps,
            "actual": test,
            "yhat": fc.yhat,
            "lo80": fc.lo80,
            "hi80": fc.hi80,
            "lo95": fc.lo95,
            "hi95": fc.hi95,
        }
    )


def make_backtest_fn(cfg: BacktestConfig | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped backtest returning metrics, for ``applyInPandas(fn, BACKTEST_SCHEMA)``.

    Args:
        cfg: Configuration captured by the closure.

    Returns:
        ``fn(pdf) -> pdf`` with :data:`BACKTEST_SCHEMA` columns.
    """
    cfg = cfg or BacktestConfig()

    def _backtest(pdf: pd.DataFrame) -> pd.DataFrame:
        return backtest_series(pdf, cfg).metrics

    return _backtest


def make_backtest_forecast_fn(
    cfg: BacktestConfig | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped backtest returning per-day forecasts (``BACKTEST_FORECAST_SCHEMA``).

    Runs the same fits as :func:`make_backtest_fn`; use it only when the daily detail is
    needed, or cache the input and accept the second pass.

    Args:
        cfg: Configuration captured by the closure.

    Returns:
        ``fn(pdf) -> pdf`` with :data:`BACKTEST_FORECAST_SCHEMA` columns.
    """
    cfg = cfg or BacktestConfig()

    def _backtest_detail(pdf: pd.DataFrame) -> pd.DataFrame:
        return backtest_series(pdf, cfg).forecasts

    return _backtest_detail
