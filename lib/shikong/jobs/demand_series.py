"""Job ``demand_series``: bronze order lines + inventory -> cleaned daily series (silver).

One series per SKU, SKU x region or SKU x warehouse (``timeseries.level``). Days when the
SKU was out of stock at that warehouse (on_hand = 0 in the snapshot) are *missing*, not
zero: demand was censored. Days with no sale and stock on hand are true zeros. Cleaning,
gap filling, normalisation and smoothing run per series in ``applyInPandas`` with the
plain pandas functions of :mod:`shikong.timeseries`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig, TimeSeriesSettings
from shikong.io.delta import overwrite, table_exists
from shikong.jobs.common import first_row, job_main, stage
from shikong.timeseries import CleanConfig, SmoothConfig, clean_schema, make_clean_fn

log = logging.getLogger(__name__)

LEVEL_KEYS = {
    "sku": ("sku",),
    "sku_region": ("sku", "uf"),
    "sku_warehouse": ("sku", "warehouse_id"),
}


def clean_config(
    ts: TimeSeriesSettings, *, start: dt.date | None = None, end: dt.date | None = None
) -> CleanConfig:
    """The cleaning configuration for the given settings and common calendar."""
    smooth = SmoothConfig(
        ma_windows=tuple(ts.ma_windows),
        season=ts.season,
        wavelet=ts.wavelet or None,
        wavelet_level=ts.wavelet_level,
    )
    return CleanConfig(
        start=start, end=end, fill_method=ts.fill_method, season=ts.season, smoothing=smooth
    )


def daily_sales(lines: DataFrame, orders_geo: DataFrame | None, *, level: str) -> DataFrame:
    """Units per series key x day from order lines (region from ``silver.orders_geo``)."""
    keys = list(LEVEL_KEYS[level])
    df = lines.select("order_id", "sku", "order_date", "quantity")
    if level != "sku":
        extra = "uf" if level == "sku_region" else "warehouse_id"
        if orders_geo is None:
            raise ValueError(
                f"level {level!r} needs silver.orders_geo (run spatial_features first)"
            )
        df = df.join(orders_geo.select("order_id", extra), "order_id")
        df = df.where(F.col(extra).isNotNull())
    return df.groupBy(*keys, F.col("order_date").alias("ds")).agg(
        F.sum("quantity").cast("double").alias("y")
    )


def availability(inventory: DataFrame, *, level: str) -> DataFrame | None:
    """Per key x day: False when every snapshot of that key shows no stock.

    For SKU x region there is no region-level stock; availability stays unknown (None).
    """
    if level == "sku_region":
        return None
    keys = list(LEVEL_KEYS[level])
    return inventory.groupBy(*keys, F.col("snapshot_date").alias("ds")).agg(
        (F.max("on_hand") > 0).alias("available")
    )


def series_frame(
    sales: DataFrame,
    avail: DataFrame | None,
    *,
    level: str,
    max_series: int,
    start: dt.date,
    end: dt.date,
) -> DataFrame:
    """Dense series rows (``series_id``, keys, ``ds``, ``y``, ``available``) of the top series.

    Every calendar day from ``start`` to ``end`` gets a row: no sale is a true zero
    (``y = 0``), and a stock-out day carries ``available = False`` so cleaning treats it
    as missing (censored demand) instead of zero.
    """
    keys = list(LEVEL_KEYS[level])
    totals = sales.groupBy(*keys).agg(F.sum("y").alias("_total"))
    if max_series:
        totals = totals.orderBy(F.desc("_total"), *keys).limit(max_series)
    chosen = F.broadcast(totals.select(*keys))
    calendar = sales.sparkSession.range(1).select(
        F.explode(F.sequence(F.lit(start).cast("date"), F.lit(end).cast("date"))).alias("ds")
    )
    rows = chosen.crossJoin(calendar).join(sales, [*keys, "ds"], "left")
    if avail is not None:
        rows = rows.join(avail, [*keys, "ds"], "left")
    else:
        rows = rows.withColumn("available", F.lit(None).cast("boolean"))
    rows = rows.withColumn("y", F.coalesce(F.col("y"), F.lit(0.0)))
    return rows.withColumn("series_id", F.concat_ws("|", *keys)).select(
        "series_id", *keys, "ds", "y", "available"
    )


def run_demand_series(spark: SparkSession, cfg: AppConfig) -> int:
    """Build and clean the daily series; returns the number of series."""
    ts = cfg.timeseries
    lines = spark.read.format("delta").load(cfg.paths.table("bronze", "order_lines"))
    og_path = cfg.paths.table("silver", "orders_geo")
    orders_geo = spark.read.format("delta").load(og_path) if table_exists(spark, og_path) else None
    if orders_geo is None and ts.level == "sku_warehouse":
        orders_geo = spark.read.format("delta").load(cfg.paths.table("bronze", "orders"))
    inv_path = cfg.paths.table("bronze", "inventory")
    inventory = spark.read.format("delta").load(inv_path) if table_exists(spark, inv_path) else None

    sales = daily_sales(lines, orders_geo, level=ts.level)
    avail = availability(inventory, level=ts.level) if inventory is not None else None
    bounds = first_row(lines.agg(F.min("order_date").alias("lo"), F.max("order_date").alias("hi")))
    series = series_frame(
        sales, avail, level=ts.level, max_series=ts.max_series, start=bounds["lo"], end=bounds["hi"]
    )
    cc = clean_config(ts, start=bounds["lo"], end=bounds["hi"])
    keys = list(LEVEL_KEYS[ts.level])
    key_map = series.select("series_id", *keys).distinct()
    cleaned = (
        series.select("series_id", "ds", "y", "available")
        .groupBy("series_id")
        .applyInPandas(make_clean_fn(cc), clean_schema(cc))
        .join(F.broadcast(key_map), "series_id")
        .withColumn("level", F.lit(ts.level))
    )
    overwrite(spark, cleaned, cfg.paths.table("silver", "sku_daily"))
    n = (
        spark.read.format("delta")
        .load(cfg.paths.table("silver", "sku_daily"))
        .select("series_id")
        .distinct()
        .count()
    )
    log.info(
        "silver.sku_daily: %d series at level %s from %s to %s",
        n,
        ts.level,
        bounds["lo"],
        bounds["hi"],
    )
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the demand_series job."""
    parser.add_argument(
        "--level",
        choices=tuple(LEVEL_KEYS),
        default=None,
        help="series level (default: timeseries.level from the config)",
    )


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> int:
    """Daily demand series per SKU (x region / warehouse): cleaned, filled, smoothed."""
    if args.level:
        cfg = dataclasses.replace(
            cfg, timeseries=dataclasses.replace(cfg.timeseries, level=args.level)
        )
    with stage("demand_series") as done:
        n = run_demand_series(spark, cfg)
        done(n)
    return n


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("demand_series", add_arguments, run, argv)
