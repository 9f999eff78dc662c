"""Cleaning and the forecaster on Spark: many whole series per task and per pandas call.

:func:`cleaned`, :func:`forecasts` and :func:`backtests` run the panel functions of
:mod:`shikong.timeseries.panel` (the one-series functions of cleaning, forecast and
backtest on many series at once) over a DataFrame of many series (``DataFrame ->
DataFrame``, nothing read or written), with the configurations that
:func:`forecast_config` / :func:`backtest_config` derive from the ``timeseries`` settings.
Series are hashed into groups of ~:data:`SERIES_PER_GROUP` (one pandas call each; larger
for a full catalogue) and the groups range-partitioned into tasks of
~:data:`SERIES_PER_TASK` series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shikong.config import ConfigError, TimeSeriesSettings
from shikong.frames import default_parallelism
from shikong.timeseries import sf_engine
from shikong.timeseries.backtest import BACKTEST_SCHEMA, BacktestConfig
from shikong.timeseries.cleaning import CleanConfig, clean_schema
from shikong.timeseries.forecast import FORECAST_SCHEMA
from shikong.timeseries.forecast_types import ForecastConfig
from shikong.timeseries.panel import backtest_panel, clean_panel, forecast_panel, make_panel_fn

#: Columns of the cleaned series the per-series stages keep (the rest stay out of the shuffle).
INPUT_COLUMNS = ("series_id", "ds", "y_clean", "y_obs", "available")

#: Series per Spark task. Each task costs scheduling, a shuffle read and an Arrow stream
#: set-up (~0.1-0.2 s of wall time on local[2] under load); a series costs ~0.1-0.2 s to
#: forecast. Small tasks shorten the tail (the last task of a stage runs while the other core
#: idles), large ones amortise the set-up: ~32 series per task keeps both losses near 2% each
#: on 2,000 series (63 tasks of ~4 s).
SERIES_PER_TASK = 32

#: Series per pandas call. Around each call PySpark's grouped map spends ~7-10 ms of CPU
#: (Arrow stream, pandas conversion both ways; py-spy on local[2]), about a twentieth of a
#: SARIMA series and more than an intermittent series' whole forecast; one call per group
#: of ~8 series pays it once for all of them. Small groups keep the tasks even: with ~4 groups
#: per task the range bounds split 2,000 series into 22-42 per task, as even as hashing the
#: series themselves (20-42); 16 per group gave 13-48.
SERIES_PER_GROUP = 8

#: Groups per task at most. A full catalogue (24,000 series, most of them intermittent at
#: well under a millisecond each) would otherwise make 3,000 calls in 750 tasks, paying
#: ~0.1-0.2 s of scheduling per task and ~10 ms per call for work worth ~0.01 s a series;
#: so past 2,048 series the tasks stop multiplying and the groups grow (24,000 series: 64
#: tasks of ~4 groups of ~94 series), which the hashing still spreads evenly.
GROUPS_PER_TASK = 4
#: Tasks per unit of default parallelism at most (64 on local[2] with parallelism 4).
MAX_TASKS_PER_SLOT = 16

#: The group-key column the per-series stages add (dropped before the series function).
GROUP_COL = "_series_group"


def series_partitions(n_series: int, parallelism: int) -> int:
    """Partitions for the per-series stages: about :data:`SERIES_PER_TASK` series each.

    Args:
        n_series: Number of series.
        parallelism: Spark's default parallelism (cores).

    Returns:
        At least ``2 * parallelism`` (so every core gets work twice even with few series),
        at most ``n_series`` and at most :data:`MAX_TASKS_PER_SLOT` per unit of parallelism.
    """
    want = max(2 * parallelism, math.ceil(n_series / SERIES_PER_TASK))
    want = min(want, max(2 * parallelism, MAX_TASKS_PER_SLOT * parallelism))
    return max(1, min(n_series, want))


def series_groups(series: DataFrame, n_series: int, parallelism: int) -> DataFrame:
    """``series`` with a :data:`GROUP_COL` key, partitioned into tasks by it.

    Every series lands whole in one of ~``n_series / SERIES_PER_GROUP`` groups (xxhash64 of
    its id; at least one group per task), and the groups are range-partitioned into
    :func:`series_partitions` tasks, so a task holds about four whole groups. Range rather
    than hash partitioning: hashing ~250 group ids into ~60 tasks would spread them
    unevenly (Poisson, 1-9 groups a task), a long tail on two cores.

    Args:
        series: Rows of many series (``series_id`` and the per-series columns).
        n_series: Number of distinct series (sizes the groups and tasks).
        parallelism: Spark's default parallelism (cores).

    Returns:
        ``series`` plus :data:`GROUP_COL` (bigint), ready for
        ``groupBy(GROUP_COL).applyInPandas``.
    """
    tasks = series_partitions(n_series, parallelism)
    per_group = min(n_series, math.ceil(n_series / SERIES_PER_GROUP), GROUPS_PER_TASK * tasks)
    groups = max(tasks, per_group)
    keyed = series.withColumn(GROUP_COL, F.pmod(F.xxhash64("series_id"), F.lit(groups)))
    return keyed.repartitionByRange(tasks, GROUP_COL)


def _require_engine(ts: TimeSeriesSettings) -> None:
    """Fail on the driver, naming the key, when the configured engine is not installed."""
    if ts.engine == "statsforecast" and not sf_engine.available():
        raise ConfigError(
            "timeseries.engine: 'statsforecast' needs the optional package "
            "(pip install 'shikong[statsforecast]')"
        )


def forecast_config(ts: TimeSeriesSettings) -> ForecastConfig:
    """SARIMA settings for the configured search space."""
    full = ts.search == "full"
    return ForecastConfig(
        horizon=ts.horizon,
        season=ts.season,
        target_col="y_clean",
        seasonality_test=not full,
        differencing_by_tests=not full,
        drift_by_aic=not full,
        patience=None if full else 2,
        max_history=ts.max_history or None,
        engine=ts.engine,
    )


def backtest_config(ts: TimeSeriesSettings) -> BacktestConfig:
    """Rolling-origin backtest scored on observed days only (imputed days are not actuals)."""
    return BacktestConfig(
        folds=ts.backtest_folds,
        horizon=ts.horizon,
        step=ts.horizon,
        forecast=forecast_config(ts),
        actual_col="y_obs",
    )


def _per_series(
    series: DataFrame,
    fn: Callable[[pd.DataFrame, Any], pd.DataFrame],
    cfg: Any,
    schema: str,
    n_series: int | None,
    columns: tuple[str, ...] = INPUT_COLUMNS,
) -> DataFrame:
    """Run the panel function ``fn(pdf, cfg)`` over every series, many series per call."""
    cols = [c for c in columns if c in series.columns]
    rows = series.select(*cols)
    if n_series is None:
        n_series = rows.select("series_id").distinct().count()
    grouped = series_groups(rows, n_series, default_parallelism(series.sparkSession))
    return grouped.groupBy(GROUP_COL).applyInPandas(
        make_panel_fn(fn, cfg, drop=(GROUP_COL,)), schema
    )


def cleaned(series: DataFrame, cfg: CleanConfig, *, n_series: int | None = None) -> DataFrame:
    """Cleaned daily rows per series (:func:`~shikong.timeseries.cleaning.clean_schema`).

    Args:
        series: Rows of many series (``series_id``, ``ds``, ``y``, ``available``).
        cfg: Cleaning configuration (its calendar and smoothing).
        n_series: Distinct series in ``series`` when the caller knows it (saves a count).
    """
    cols = ("series_id", "ds", "y", "available")
    return _per_series(series, clean_panel, cfg, clean_schema(cfg), n_series, cols)


def forecasts(
    series: DataFrame, ts: TimeSeriesSettings, *, n_series: int | None = None
) -> DataFrame:
    """Forecast rows per series (``FORECAST_SCHEMA``).

    Args:
        series: Daily rows of many series (:data:`INPUT_COLUMNS`).
        ts: Time-series settings.
        n_series: Distinct series in ``series`` when the caller knows it (saves a count).
    """
    _require_engine(ts)
    return _per_series(series, forecast_panel, forecast_config(ts), FORECAST_SCHEMA, n_series)


def backtests(
    series: DataFrame, ts: TimeSeriesSettings, *, n_series: int | None = None
) -> DataFrame:
    """Backtest metric rows per series x fold x model (``BACKTEST_SCHEMA``).

    Takes the same arguments as :func:`forecasts`.
    """
    _require_engine(ts)
    return _per_series(series, backtest_panel, backtest_config(ts), BACKTEST_SCHEMA, n_series)
