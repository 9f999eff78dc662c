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
import logging
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig
from shikong.io.delta import overwrite, table_exists
from shikong.jobs.common import first_row, job_main, stage
from shikong.timeseries import (
    LEVEL_KEYS,
    availability,
    clean_config,
    clean_schema,
    daily_sales,
    make_clean_fn,
    series_frame,
)

log = logging.getLogger(__name__)


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
