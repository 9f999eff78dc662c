"""Stage ``demand_series``: bronze order lines + inventory -> cleaned daily series (silver).

One series per SKU, SKU x region, SKU x warehouse or category x warehouse state
(``timeseries.level``). Days when the SKU was out of stock at that warehouse (on_hand = 0
in the snapshot) are *missing*, not zero: demand was censored. Days with no sale and stock
on hand are true zeros. Cleaning, gap filling, normalisation and smoothing run per series
in ``applyInPandas``, many series per call (:func:`shikong.timeseries.cleaned`).
"""

from __future__ import annotations

import dataclasses
import logging

from pyspark.sql import functions as F

from shikong.frames import first_row
from shikong.stages.context import StageContext, step
from shikong.timeseries import (
    LEVEL_KEYS,
    availability,
    clean_config,
    cleaned,
    daily_sales,
    series_frame,
    series_id,
)

log = logging.getLogger(__name__)


def run(ctx: StageContext, *, level: str | None = None) -> int:
    """Daily demand series per SKU (x region / warehouse): cleaned, filled, smoothed.

    Args:
        ctx: Stage context.
        level: Series level (default: ``timeseries.level``).

    Returns:
        The number of series written.
    """
    ts = (
        ctx.cfg.timeseries
        if level is None
        else dataclasses.replace(ctx.cfg.timeseries, level=level)
    )
    spark, cat = ctx.spark, ctx.catalog
    with step("demand_series") as done:
        lines = ctx.read("bronze.order_lines")
        orders_geo = cat.read_if_exists(spark, "silver.orders_geo")
        if orders_geo is None and ts.level in ("sku_warehouse", "category_state"):
            orders_geo = ctx.read("bronze.orders")
        # Real upstream data may have no stock snapshots (Olist): availability is unknown.
        inventory = cat.read_if_exists(spark, "bronze.inventory")
        by_category = ts.level == "category_state"
        sales = daily_sales(
            lines,
            orders_geo,
            level=ts.level,
            products=ctx.read("bronze.products") if by_category else None,
            warehouses=ctx.read("bronze.warehouses") if by_category else None,
        )
        avail = availability(inventory, level=ts.level) if inventory is not None else None
        bounds = first_row(
            lines.agg(F.min("order_date").alias("lo"), F.max("order_date").alias("hi"))
        )
        series = series_frame(
            sales,
            avail,
            level=ts.level,
            max_series=ts.max_series,
            start=bounds["lo"],
            end=bounds["hi"],
        )
        cc = clean_config(ts, start=bounds["lo"], end=bounds["hi"])
        keys = list(LEVEL_KEYS[ts.level])
        # Counted on the day totals, not the calendar rows: it sizes the groups and tasks.
        n_series = sales.select(*keys).distinct().count()
        if ts.max_series:
            n_series = min(n_series, ts.max_series)
        # From the day totals too: the calendar rows would be built a second time for it.
        key_map = sales.select(*keys).distinct().withColumn("series_id", series_id(ts.level))
        rows = (
            cleaned(series, cc, n_series=n_series)
            .join(F.broadcast(key_map), "series_id")
            .withColumn("level", F.lit(ts.level))
        )
        cat.write(spark, "silver.sku_daily", rows)
        n = ctx.read("silver.sku_daily").select("series_id").distinct().count()
        done(n)
    log.info(
        "silver.sku_daily: %d series at level %s from %s to %s",
        n,
        ts.level,
        bounds["lo"],
        bounds["hi"],
    )
    return n
