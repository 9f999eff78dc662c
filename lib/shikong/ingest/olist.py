"""Adapter: the real Olist marketplace files -> the landing contract -> bronze.

Olist gives cities, not coordinates. Customers and sellers (sellers play the warehouses)
are placed at their municipality's lat/lon by (normalised city name, state); rows that
cannot be placed are quarantined as ``UNPLACED_LOCATION`` by the shared validation, never
dropped. Orders of quarantined customers then fail the referential check and are
quarantined too, with their own reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from shikong.geo_resources import normalise_name
from shikong.ingest.validate import SOURCE_FILE, UNPLACED

log = logging.getLogger(__name__)

LAYER = "bronze_olist"

#: Olist order_status -> shikong status.
STATUS_MAP = {
    "delivered": "delivered",
    "shipped": "shipped",
    "canceled": "canceled",
    "unavailable": "canceled",
    "invoiced": "processing",
    "processing": "processing",
    "approved": "processing",
    "created": "processing",
}


def _normalise_udf() -> Callable[[Column], Column]:
    @F.pandas_udf("string")  # type: ignore[call-overload]
    def normalise(names: pd.Series) -> pd.Series:
        return names.map(lambda s: None if s is None or pd.isna(s) else normalise_name(str(s)))

    return normalise


def _place(df: DataFrame, lookup: DataFrame, *, city: str, state: str) -> DataFrame:
    """Add lat/lon strings and the ``_unplaced`` flag by (normalised city, state)."""
    normalise = _normalise_udf()
    keyed = df.withColumn("_city_norm", normalise(F.col(city))).withColumn(
        "_uf", F.upper(F.trim(F.col(state)))
    )
    placed = keyed.join(
        F.broadcast(lookup),
        (F.col("_city_norm") == F.col("name_norm")) & (F.col("_uf") == F.col("uf")),
        "left",
    )
    return placed.withColumn(UNPLACED, F.col("name_norm").isNull()).withColumns(
        {"lat": F.col("lat").cast("string"), "lon": F.col("lon").cast("string")}
    )


def olist_frames(files: Mapping[str, DataFrame], *, lookup: DataFrame) -> dict[str, DataFrame]:
    """Map the Olist CSV files to raw landing frames (all strings) per source name.

    Args:
        files: The raw Olist files by name (:func:`shikong.io.landing.read_olist`):
            ``customers.csv``, ``orders.csv``, ``order_items.csv``, ``products.csv``,
            ``olist_sellers_dataset.csv`` and ``product_category_name_translation.csv``,
            each with ``_source_file``.
        lookup: (``name_norm``, ``uf``) -> ``lat``/``lon`` of the municipalities
            (:func:`shikong.io.reference.municipality_lookup`).

    Returns:
        Raw frames keyed by landing source name, in the landing contract's columns.
    """
    customers = files["customers.csv"]
    sellers = files["olist_sellers_dataset.csv"]
    orders = files["orders.csv"]
    items = files["order_items.csv"]
    products = files["products.csv"]
    translation = files["product_category_name_translation.csv"].drop(SOURCE_FILE)

    frames: dict[str, DataFrame] = {}
    frames["products"] = products.join(
        F.broadcast(translation), "product_category_name", "left"
    ).select(
        F.col("product_id").alias("sku"),
        F.coalesce("product_category_name_english", "product_category_name").alias("category"),
        F.lit(None).cast("string").alias("unit_price"),
        (F.col("product_weight_g").try_cast("double") / 1000).cast("string").alias("weight_kg"),
        SOURCE_FILE,
    )
    frames["warehouses"] = _place(sellers, lookup, city="seller_city", state="seller_state").select(
        F.col("seller_id").alias("warehouse_id"),
        F.col("seller_city").alias("city"),
        F.col("seller_state").alias("state"),
        "lat",
        "lon",
        F.lit(None).cast("string").alias("service_radius_km"),
        SOURCE_FILE,
        UNPLACED,
    )
    placed_customers = _place(customers, lookup, city="customer_city", state="customer_state")
    frames["customers"] = placed_customers.select(
        "customer_id",
        F.col("customer_city").alias("city"),
        F.col("customer_state").alias("state"),
        "lat",
        "lon",
        F.lit(None).cast("string").alias("signup_date"),
        SOURCE_FILE,
        UNPLACED,
    )
    first_seller = (
        items.withColumn(
            "_rn",
            F.row_number().over(
                Window.partitionBy("order_id").orderBy(F.col("order_item_id").try_cast("int"))
            ),
        )
        .where("_rn = 1")
        .select("order_id", F.col("seller_id").alias("warehouse_id"))
    )
    status = F.create_map(*[F.lit(x) for kv in STATUS_MAP.items() for x in kv])
    frames["orders"] = (
        orders.join(first_seller, "order_id", "left")
        .join(placed_customers.select("customer_id", "lat", "lon"), "customer_id", "left")
        .select(
            "order_id",
            "customer_id",
            F.col("order_purchase_timestamp").alias("order_ts"),
            "warehouse_id",
            "lat",
            "lon",
            F.coalesce(status[F.col("order_status")], F.col("order_status")).alias("status"),
            SOURCE_FILE,
        )
    )
    frames["order_lines"] = items.join(
        orders.select("order_id", F.col("order_purchase_timestamp").alias("order_ts")),
        "order_id",
        "left",
    ).select(
        "order_id",
        F.col("order_item_id").alias("line_no"),
        "order_ts",
        F.col("product_id").alias("sku"),
        F.lit("1").alias("quantity"),  # Olist has one row per unit sold
        F.col("price").alias("unit_price"),
        SOURCE_FILE,
    )
    return frames
