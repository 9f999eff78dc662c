"""Daily demand series from order lines and stock snapshots, as Spark transforms.

One series per SKU, SKU x region, SKU x warehouse or product category x warehouse state
(:data:`LEVEL_KEYS`). Days when the
SKU was out of stock at that warehouse (on_hand = 0 in the snapshot) are *missing*, not
zero: demand was censored. Days with no sale and stock on hand are true zeros. The rows
built here are what :func:`~shikong.timeseries.cleaning.make_clean_fn` cleans per series,
with the configuration of :func:`clean_config`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shikong.config import TimeSeriesSettings
from shikong.timeseries.cleaning import CleanConfig
from shikong.timeseries.smoothing import SmoothConfig

LEVEL_KEYS = {
    "sku": ("sku",),
    "sku_region": ("sku", "uf"),
    "sku_warehouse": ("sku", "warehouse_id"),
    # For catalogues too sparse per SKU (the real Olist sample: 5 of 6,089 SKU x seller
    # series sell on 30 days or more), a category at the shipping warehouses of one state.
    "category_state": ("category", "warehouse_state"),
}

#: Label of the category of a product that has none (its sales still count).
NO_CATEGORY = "(no category)"


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


def daily_sales(
    lines: DataFrame,
    orders_geo: DataFrame | None,
    *,
    level: str,
    products: DataFrame | None = None,
    warehouses: DataFrame | None = None,
) -> DataFrame:
    """Units per series key x day from order lines.

    The region comes from ``silver.orders_geo`` (``sku_region``), the warehouse from the
    orders (``sku_warehouse``); ``category_state`` also needs ``products`` (category) and
    ``warehouses`` (state). A line whose order has no region / warehouse is left out; a
    product without a category counts under :data:`NO_CATEGORY`.
    """
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
    if level == "category_state":
        if products is None or warehouses is None:
            raise ValueError("level 'category_state' needs the products and warehouses")
        category = products.select("sku", "category")
        state = warehouses.select("warehouse_id", F.col("state").alias("warehouse_state"))
        df = (
            df.join(F.broadcast(category), "sku", "left")
            .withColumn("category", F.coalesce("category", F.lit(NO_CATEGORY)))
            .join(F.broadcast(state), "warehouse_id")
            .where(F.col("warehouse_state").isNotNull())
        )
    return df.groupBy(*keys, F.col("order_date").alias("ds")).agg(
        F.sum("quantity").cast("double").alias("y")
    )


def availability(inventory: DataFrame, *, level: str) -> DataFrame | None:
    """Per key x day: False when every snapshot of that key shows no stock.

    For SKU x region and category x state there is no stock at that level; availability
    stays unknown (None).
    """
    if level in ("sku_region", "category_state"):
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
    return rows.withColumn("series_id", series_id(level)).select(
        "series_id", *keys, "ds", "y", "available"
    )


def series_id(level: str) -> Column:
    """The ``series_id`` of a row at ``level``: its key values joined by ``|``."""
    return F.concat_ws("|", *LEVEL_KEYS[level])
