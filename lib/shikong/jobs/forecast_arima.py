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
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig
from shikong.io.delta import merge_into
from shikong.jobs.common import first_row, job_main, new_run_id, stage, to_pandas
from shikong.timeseries import backtests, family_metrics, forecasts, overall_metrics

log = logging.getLogger(__name__)


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
