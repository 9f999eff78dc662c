"""Job ``forecast_arima``: cleaned series (silver) -> SARIMA forecasts and backtests (gold).

Per series, in ``applyInPandas`` with one thread per Python worker: an AIC search over a
small SARIMA space (weekly seasonality by default; or, with ``timeseries.engine:
statsforecast``, Nixtla's AutoARIMA then AutoETS), point forecast with 80%/95% intervals,
fallbacks (Croston/SBA, ETS, seasonal naive) with a reason flag so one bad series never
fails the job, and a rolling-origin backtest next to the seasonal-naive baseline on the
same folds. Both tables are MERGEd on their keys plus the run date, so a rerun of the same
data replaces nothing and duplicates nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable, Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig, ConfigError, TimeSeriesSettings
from shikong.io.delta import merge_into
from shikong.jobs.common import first_row, job_main, new_run_id, stage, to_pandas
from shikong.timeseries import (
    BACKTEST_SCHEMA,
    FORECAST_SCHEMA,
    BacktestConfig,
    ForecastConfig,
    aggregate_metrics,
    make_backtest_fn,
    make_forecast_fn,
    sf_engine,
)
from shikong.timeseries._common import for_each_series, parse_ddl

log = logging.getLogger(__name__)

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

#: The group-key column the per-series stages add (dropped before the series function).
GROUP_COL = "_series_group"


def series_partitions(n_series: int, parallelism: int) -> int:
    """Partitions for the per-series stages: about :data:`SERIES_PER_TASK` series each.

    Args:
        n_series: Number of series.
        parallelism: Spark's default parallelism (cores).

    Returns:
        At least ``2 * parallelism`` (so every core gets work twice even with few series)
        and at most ``n_series``.
    """
    want = max(2 * parallelism, math.ceil(n_series / SERIES_PER_TASK))
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
    groups = max(tasks, min(n_series, math.ceil(n_series / SERIES_PER_GROUP)))
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
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    schema: str,
    n_series: int | None,
) -> DataFrame:
    """Run the one-series ``fn`` on every series, many series per pandas call."""
    cols = [c for c in INPUT_COLUMNS if c in series.columns]
    rows = series.select(*cols)
    if n_series is None:
        n_series = rows.select("series_id").distinct().count()
    grouped = series_groups(rows, n_series, series.sparkSession.sparkContext.defaultParallelism)
    return grouped.groupBy(GROUP_COL).applyInPandas(
        for_each_series(fn, parse_ddl(schema), drop=(GROUP_COL,)), schema
    )


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
    return _per_series(series, make_forecast_fn(forecast_config(ts)), FORECAST_SCHEMA, n_series)


def backtests(
    series: DataFrame, ts: TimeSeriesSettings, *, n_series: int | None = None
) -> DataFrame:
    """Backtest metric rows per series x fold x model (``BACKTEST_SCHEMA``).

    Takes the same arguments as :func:`forecasts`.
    """
    _require_engine(ts)
    return _per_series(series, make_backtest_fn(backtest_config(ts)), BACKTEST_SCHEMA, n_series)


def overall_metrics(metrics_pdf: pd.DataFrame) -> pd.DataFrame:
    """Overall backtest table per model (chosen vs seasonal naive) from per-series rows."""
    return aggregate_metrics(metrics_pdf, by=("model",))


def family_metrics(metrics_pdf: pd.DataFrame) -> pd.DataFrame:
    """Backtest table per model family, each next to seasonal naive on the same folds.

    A (series, fold) belongs to the family of the model the job chose there: the model
    spec up to its orders (``SARIMA(1,1,1)(0,0,0,0)+c`` -> ``SARIMA``, ``SBA``, ``ETS`` ...).
    Its seasonal-naive row is grouped with it, so each family's two rows cover the same
    series and folds.

    Args:
        metrics_pdf: Backtest rows (``BACKTEST_SCHEMA``) of models ``chosen`` and
            ``seasonal_naive``.

    Returns:
        :func:`aggregate_metrics` by ``family`` and ``model``.
    """
    chosen = metrics_pdf[metrics_pdf["model"] == "chosen"]
    family = chosen["model_spec"].fillna("unknown").str.extract(r"^([A-Za-z_]+)", expand=False)
    keys = chosen[["series_id", "fold"]].assign(family=family.fillna("unknown").to_numpy())
    grouped = metrics_pdf.merge(keys, on=["series_id", "fold"], how="inner")
    return aggregate_metrics(grouped, by=("family", "model"))


def run_forecast(spark: SparkSession, cfg: AppConfig, *, run_id: str | None = None) -> pd.DataFrame:
    """Forecast and backtest every series of ``silver.sku_daily``; returns the overall table."""
    ts = cfg.timeseries
    run_id = run_id or new_run_id()
    series = spark.read.format("delta").load(cfg.paths.table("silver", "sku_daily"))
    # Counted once: it sizes the per-series groups and tasks of both stages.
    n_series = series.select("series_id").distinct().count()
    run_date = first_row(series.agg(F.max("ds")))[0] + dt.timedelta(days=1)
    stamp = [F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id")]

    with stage("forecast_arima: forecasts") as done:
        fc = forecasts(series, ts, n_series=n_series).select("*", *stamp)
        merge_into(
            spark,
            fc,
            cfg.paths.table("gold", "forecasts"),
            keys=("series_id", "run_date", "ds"),
            partition_by=("run_date",),
        )
        done(n_series)
    with stage("forecast_arima: backtest") as done:
        bt = backtests(series, ts, n_series=n_series).select("*", *stamp)
        path = cfg.paths.table("gold", "forecast_metrics")
        merge_into(
            spark,
            bt,
            path,
            keys=("series_id", "run_date", "fold", "model"),
            partition_by=("run_date",),
        )
        metrics = to_pandas(
            spark.read.format("delta").load(path).where(F.col("run_date") == F.lit(run_date))
        )
        done(len(metrics))
    table = overall_metrics(metrics)
    for row in table.itertuples():
        log.info(
            "backtest %-15s series=%d MASE=%.3f WAPE=%.3f sMAPE=%.3f cov80=%.2f cov95=%.2f",
            row.model,
            row.n_series,
            row.mase,
            row.wape,
            row.smape,
            row.coverage80,
            row.coverage95,
        )
    for row in family_metrics(metrics).itertuples():
        log.info(
            "backtest by family %-14s %-15s series=%d MASE=%.3f WAPE=%.3f",
            row.family,
            row.model,
            row.n_series,
            row.mase,
            row.wape,
        )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the forecast_arima job."""
    parser.add_argument(
        "--search",
        choices=("pruned", "full"),
        default=None,
        help="SARIMA search space (default: timeseries.search)",
    )
    parser.add_argument(
        "--engine",
        choices=("statsmodels", "statsforecast"),
        default=None,
        help="forecasting engine (default: timeseries.engine)",
    )


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> pd.DataFrame:
    """SARIMA forecasts with intervals, fallbacks and rolling-origin backtests."""
    overrides = {k: v for k, v in (("search", args.search), ("engine", args.engine)) if v}
    if overrides:
        cfg = dataclasses.replace(cfg, timeseries=dataclasses.replace(cfg.timeseries, **overrides))
    return run_forecast(spark, cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("forecast_arima", add_arguments, run, argv)
