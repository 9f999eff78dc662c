"""Job ``forecast_arima``: cleaned series (silver) -> SARIMA forecasts and backtests (gold).

Per series, in ``applyInPandas`` with one thread per Python worker: an AIC search over a
small SARIMA space (weekly seasonality by default), point forecast with 80%/95% intervals,
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
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig, TimeSeriesSettings
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
)

log = logging.getLogger(__name__)

INPUT_COLUMNS = ("series_id", "ds", "y_clean", "y_obs", "available")


def forecast_config(ts: TimeSeriesSettings) -> ForecastConfig:
    """SARIMA settings for the configured search space."""
    full = ts.search == "full"
    return ForecastConfig(
        horizon=ts.horizon,
        season=ts.season,
        target_col="y_clean",
        seasonality_test=not full,
        differencing_by_tests=not full,
        patience=None if full else 2,
        max_history=ts.max_history or None,
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


def forecasts(series: DataFrame, ts: TimeSeriesSettings) -> DataFrame:
    """Forecast rows per series (``FORECAST_SCHEMA``)."""
    cols = [c for c in INPUT_COLUMNS if c in series.columns]
    return (
        series.select(*cols)
        .groupBy("series_id")
        .applyInPandas(make_forecast_fn(forecast_config(ts)), FORECAST_SCHEMA)
    )


def backtests(series: DataFrame, ts: TimeSeriesSettings) -> DataFrame:
    """Backtest metric rows per series x fold x model (``BACKTEST_SCHEMA``)."""
    cols = [c for c in INPUT_COLUMNS if c in series.columns]
    return (
        series.select(*cols)
        .groupBy("series_id")
        .applyInPandas(make_backtest_fn(backtest_config(ts)), BACKTEST_SCHEMA)
    )


def overall_metrics(metrics_pdf: pd.DataFrame) -> pd.DataFrame:
    """Overall backtest table per model (chosen vs seasonal naive) from per-series rows."""
    return aggregate_metrics(metrics_pdf, by=("model",))


def run_forecast(spark: SparkSession, cfg: AppConfig, *, run_id: str | None = None) -> pd.DataFrame:
    """Forecast and backtest every series of ``silver.sku_daily``; returns the overall table."""
    ts = cfg.timeseries
    run_id = run_id or new_run_id()
    series = spark.read.format("delta").load(cfg.paths.table("silver", "sku_daily"))
    # Repartition by series so both cores get work even when the table has few files.
    n_series = series.select("series_id").distinct().count()
    parts = max(2, min(n_series, 4 * spark.sparkContext.defaultParallelism))
    series = series.repartition(parts, "series_id")
    run_date = first_row(series.agg(F.max("ds")))[0] + dt.timedelta(days=1)
    stamp = [F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id")]

    with stage("forecast_arima: forecasts") as done:
        fc = forecasts(series, ts).select("*", *stamp)
        merge_into(
            spark,
            fc,
            cfg.paths.table("gold", "forecasts"),
            keys=("series_id", "run_date", "ds"),
            partition_by=("run_date",),
        )
        done(n_series)
    with stage("forecast_arima: backtest") as done:
        bt = backtests(series, ts).select("*", *stamp)
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
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the forecast_arima job."""
    parser.add_argument(
        "--search",
        choices=("pruned", "full"),
        default=None,
        help="SARIMA search space (default: timeseries.search)",
    )


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> pd.DataFrame:
    """SARIMA forecasts with intervals, fallbacks and rolling-origin backtests."""
    if args.search:
        cfg = dataclasses.replace(
            cfg, timeseries=dataclasses.replace(cfg.timeseries, search=args.search)
        )
    return run_forecast(spark, cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("forecast_arima", add_arguments, run, argv)
