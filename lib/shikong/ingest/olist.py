"""Adapter: the real Olist marketplace files -> the landing contract -> bronze.

Olist gives cities, not coordinates. Customers and sellers (sellers play the warehouses)
are placed at their municipality's lat/lon by (normalised city name, state); rows that
cannot be placed are quarantined as ``UNPLACED_LOCATION`` by the shared validation, never
dropped. Orders of quarantined customers then fail the referential check and are
quarantined too, with their own reason.

Every landing row comes from exactly one record of one Olist file (:data:`SOURCE_FILES`):
the joins that attach parent attributes (an order's timestamp to its lines, a customer's
location to its orders, a category's English name to its products) are left joins on a
parent side reduced to one row per key first, so a duplicated parent can neither multiply
nor drop its children. The duplicate parent rows themselves are quarantined as
``DUPLICATE`` by the validation of their own file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from shikong import schemas as S
from shikong.geo_resources import normalise_name
from shikong.ingest.validate import ROW_HASH, SOURCE_FILE, UNPLACED, with_row_hash

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

#: The Olist file each landing source is mapped from, one landing row per record: its
#: records, counted straight from the file, are the source's rows in.
SOURCE_FILES = {
    "products": "products.csv",
    "warehouses": "olist_sellers_dataset.csv",
    "customers": "customers.csv",
    "orders": "orders.csv",
    "order_lines": "order_items.csv",
}


def _normalise_udf() -> Callable[[Column], Column]:
    @F.pandas_udf("string")  # type: ignore[call-overload]
    def normalise(names: pd.Series) -> pd.Series:
        return names.map(lambda s: None if s is None or pd.isna(s) else normalise_name(str(s)))

    return normalise


def _one_per_key(
    df: DataFrame,
    *,
    keys: Sequence[str],
    columns: Sequence[str],
    first: Sequence[Column] = (),
) -> DataFrame:
    """One row per key, chosen deterministically: the parent side of a left join.

    Rows of a key are ranked by ``first``, then the way validation ranks duplicate copies
    (source file, then a hash of the raw ``columns``), so with ``first`` putting the copies
    validation would accept ahead, the kept row is the accepted copy and the children
    carry its attributes. A null key keeps one row too, but joins nothing anyway.

    Args:
        df: The parent rows.
        keys: The join key.
        columns: Raw columns hashed to break ties (the landing columns when ``df`` is a
            landing frame, so the hash is validation's row hash).
        first: Leading sort columns (ascending order puts the preferred copy first).
    """
    order = [*first, *([F.col(SOURCE_FILE)] if SOURCE_FILE in df.columns else []), F.col(ROW_HASH)]
    rank = F.row_number().over(Window.partitionBy(*keys).orderBy(*order))
    return (
        with_row_hash(df, columns=tuple(columns))
        .withColumn("_rank", rank)
        .where(F.col("_rank") == 1)
        .drop("_rank", ROW_HASH)
    )


def _place(df: DataFrame, lookup: DataFrame, *, city: str, state: str) -> DataFrame:
    """Add lat/lon strings and the ``_unplaced`` flag by (normalised city, state)."""
    normalise = _normalise_udf()
    keyed = df.withColumn("_city_norm", normalise(F.col(city))).withColumn(
        "_uf", F.upper(F.trim(F.col(state)))
    )
    # A lookup with two rows for one (name, state) would place the row twice.
    unique = _one_per_key(lookup, keys=("name_norm", "uf"), columns=("lat", "lon"))
    placed = keyed.join(
        F.broadcast(unique),
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
        Raw frames keyed by landing source name, in the landing contract's columns: one
        row per record of the source's file (:data:`SOURCE_FILES`), whatever the other
        files hold (duplicated or missing parents).
    """
    customers = files["customers.csv"]
    sellers = files["olist_sellers_dataset.csv"]
    orders = files["orders.csv"]
    items = files["order_items.csv"]
    products = files["products.csv"]
    # The translation is a lookup, not a source: a second row for a category is not
    # ingested anywhere, it only must not give its products a second row.
    translation = _one_per_key(
        files["product_category_name_translation.csv"],
        keys=("product_category_name",),
        columns=("product_category_name", "product_category_name_english"),
    ).drop(SOURCE_FILE)

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
    # The warehouse of an order is the seller of its first line (lowest item number; a
    # duplicated line ties and the tie is broken by content, not by read order).
    first_seller = _one_per_key(
        items,
        keys=("order_id",),
        columns=items.columns,
        first=(F.col("order_item_id").try_cast("int").asc_nulls_last(),),
    ).select("order_id", F.col("seller_id").alias("warehouse_id"))
    # Location of an order = its customer's; a placed copy first, as validation keeps it.
    customer_location = _one_per_key(
        frames["customers"],
        keys=("customer_id",),
        columns=S.CUSTOMERS.columns,
        first=(F.col(UNPLACED).asc(),),
    ).select("customer_id", "lat", "lon")
    status = F.create_map(*[F.lit(x) for kv in STATUS_MAP.items() for x in kv])
    frames["orders"] = (
        orders.join(first_seller, "order_id", "left")
        .join(customer_location, "customer_id", "left")
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
    # Timestamp of a line = its order's; a copy with a timestamp first.
    order_ts = _one_per_key(
        frames["orders"],
        keys=("order_id",),
        columns=S.ORDERS.columns,
        first=((F.trim(F.coalesce(F.col("order_ts"), F.lit(""))) == "").asc(),),
    ).select("order_id", "order_ts")
    frames["order_lines"] = items.join(order_ts, "order_id", "left").select(
        "order_id",
        F.col("order_item_id").alias("line_no"),
        "order_ts",
        F.col("product_id").alias("sku"),
        F.lit("1").alias("quantity"),  # Olist has one row per unit sold
        F.col("price").alias("unit_price"),
        "freight_value",  # charged for the line's delivery (Olist splits it per item)
        SOURCE_FILE,
    )
    return frames
