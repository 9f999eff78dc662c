"""Stage ``forecast_arima``: cleaned series (silver) -> SARIMA forecasts and backtests (gold).

Per series, in ``applyInPandas`` with one thread per Python worker
(:mod:`shikong.timeseries.distributed`): an AIC search over a small SARIMA space (or, with
``timeseries.engine: statsforecast``, Nixtla's AutoARIMA then AutoETS), point forecast
with 80%/95% intervals, fallbacks (Croston/SBA, ETS, seasonal naive) with a reason flag so
one bad series never fails the job, and a rolling-origin backtest next to the
seasonal-naive baseline on the same folds. Both tables replace their run date's rows
(the catalogue's scope): a rerun of the same data writes the same rows, and a series that
dropped out of ``silver.sku_daily`` keeps no forecast of that date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pandas as pd
from pyspark.sql import functions as F

from shikong.frames import first_row, to_pandas
from shikong.stages.context import StageContext, step
from shikong.timeseries import backtests, family_metrics, forecasts, overall_metrics

log = logging.getLogger(__name__)


def run(ctx: StageContext, *, search: str | None = None, engine: str | None = None) -> pd.DataFrame:
    """SARIMA forecasts with intervals, fallbacks and rolling-origin backtests.

    Args:
        ctx: Stage context.
        search: ``pruned`` or ``full`` (default: ``timeseries.search``).
        engine: ``statsmodels`` or ``statsforecast`` (default: ``timeseries.engine``).

    Returns:
        The overall backtest table (chosen model vs seasonal naive).
    """
    ts = ctx.cfg.timeseries
    ts = dataclasses.replace(ts, search=search or ts.search, engine=engine or ts.engine)
    spark, cat = ctx.spark, ctx.catalog
    series = ctx.read("silver.sku_daily")
    # Counted once: it sizes the per-series groups and tasks of both steps.
    n_series = series.select("series_id").distinct().count()
    run_date = first_row(series.agg(F.max("ds")))[0] + dt.timedelta(days=1)
    stamp = [F.lit(run_date).alias("run_date"), F.lit(ctx.run_id).alias("run_id")]
    scope = {"run_date": run_date}

    with step("forecast_arima: forecasts") as done:
        fc = forecasts(series, ts, n_series=n_series).select("*", *stamp)
        cat.write(spark, "gold.forecasts", fc, scope=scope)
        done(n_series)
    paths = to_pandas(
        ctx.read("gold.forecasts")
        .where(F.col("run_date") == F.lit(run_date))
        .groupBy("model", "reason")
        .agg(F.countDistinct("series_id").alias("series"))
        .orderBy(F.desc("series"), "model", "reason")
    )
    # Which path each series took: sparse real data routes many to the fallbacks.
    log.info(
        "forecast paths (series per model and reason): %s",
        ", ".join(f"{r.model}/{r.reason} {r.series}" for r in paths.itertuples()),
    )
    with step("forecast_arima: backtest") as done:
        bt = backtests(series, ts, n_series=n_series).select("*", *stamp)
        cat.write(spark, "gold.forecast_metrics", bt, scope=scope)
        metrics = to_pandas(
            ctx.read("gold.forecast_metrics").where(F.col("run_date") == F.lit(run_date))
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
