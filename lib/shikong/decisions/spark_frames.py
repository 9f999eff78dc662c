"""The Spark side of the decisions: the grouped functions' inputs and outputs as DataFrames.

``DataFrame -> DataFrame`` transforms from the lakehouse tables to the stacked inputs of
:func:`~shikong.decisions.inventory_policy.make_policy_fn` /
:func:`~shikong.decisions.inventory_simulation.make_simulation_fn` and
:func:`~shikong.decisions.routing.make_routing_fn`, and back from the long routing output
to its four tables. The rest of the package is plain pandas and imports no Spark, because
it runs inside the Python workers.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shikong.decisions.fusion_policy import Z80, Z95
from shikong.decisions.inventory_common import POLICY_INPUT_SCHEMA
from shikong.decisions.routing import _SCHEMA_BY_RECORD
from shikong.frames import column_names

logger = logging.getLogger(__name__)


def policy_inputs(
    forecasts: DataFrame,
    series: DataFrame,
    inventory: DataFrame | None,
    prices: DataFrame,
    *,
    item_col: str = "sku",
    location_col: str = "warehouse_id",
) -> DataFrame:
    """Stack forecast, history and latest-snapshot rows, tagged by ``kind``.

    A stock point is the series' (``item_col``, ``location_col``): a SKU at a warehouse,
    or, for series kept per category x warehouse state, a category in a state. They are
    the grouped functions' ``sku`` and ``warehouse_id``.

    Args:
        forecasts: ``gold.forecasts`` rows of one run date.
        series: ``silver.sku_daily``.
        inventory: Stock snapshots per SKU x warehouse (``bronze.inventory``); ``None``
            when there are none at this level (the policy then has no stock on hand).
        prices: ``item_col`` -> ``unit_price``.
        item_col: The series' item column.
        location_col: The series' location column.

    Returns:
        The rows with the columns of ``POLICY_INPUT_SCHEMA``.
    """
    cols = column_names(POLICY_INPUT_SCHEMA)
    point = [F.col(item_col).alias("sku"), F.col(location_col).alias("warehouse_id")]
    keys = series.select("series_id", *point).distinct()
    fc = forecasts.join(F.broadcast(keys), "series_id").withColumn("kind", F.lit("forecast"))
    hist = series.select(*point, "ds", F.col("y_obs").alias("y")).withColumn(
        "kind", F.lit("history")
    )
    stacked = fc.unionByName(hist, allowMissingColumns=True)
    if inventory is not None:
        latest = inventory.groupBy("sku", "warehouse_id").agg(
            F.max("snapshot_date").alias("snapshot_date")
        )
        snap = (
            inventory.join(latest, ["sku", "warehouse_id", "snapshot_date"])
            .join(F.broadcast(keys.select("sku", "warehouse_id")), ["sku", "warehouse_id"])
            .select(
                "sku",
                "warehouse_id",
                F.col("snapshot_date").alias("ds"),
                F.col("on_hand").cast("double"),
                F.col("on_order").cast("double"),
            )
            .withColumn("kind", F.lit("inventory"))
        )
        stacked = stacked.unionByName(snap, allowMissingColumns=True)
    price = F.broadcast(
        prices.select(F.col(item_col).alias("sku"), F.col("unit_price").alias("_price"))
    )
    stacked = (
        stacked.join(price, "sku", "left").withColumn("unit_price", F.col("_price")).drop("_price")
    )
    for c in cols:
        if c not in stacked.columns:
            stacked = stacked.withColumn(c, F.lit(None))
    return stacked.select(*[F.col(c).cast(t) for c, t in _fields(POLICY_INPUT_SCHEMA)])


def fusion_policy_forecasts(
    predictions: DataFrame,
    *,
    median_col: str,
    upper_col: str,
    service_level: float,
    spread: float = 1.0,
) -> DataFrame:
    """The fusion model's daily quantiles as forecast rows of the policy's input contract.

    Each day becomes the normal distribution with mean the median whose ``service_level``
    quantile is ``upper_col`` (:mod:`shikong.decisions.fusion_policy`): ``yhat`` = median,
    and the 80% and 95% bands of that normal, from which the policy's ``normal`` method
    reads the same sigma back.

    Args:
        predictions: ``gold.demand_predictions`` rows of one origin (``series_id``, ``ds``,
            ``step`` and the two quantile columns).
        median_col: The 0.5 quantile column (``q50``).
        upper_col: The ``service_level`` quantile column (``q95``).
        service_level: Level of ``upper_col`` (> 0.5).
        spread: Factor on every sigma (the calibration of
            :func:`~shikong.decisions.fusion_policy.lead_time_spread`; 1: as the model says).

    Returns:
        ``series_id``, ``ds``, ``step``, ``yhat``, ``lo80``, ``hi80``, ``lo95``, ``hi95``.
    """
    if not 0.5 < service_level < 1.0:
        raise ValueError(f"service_level must be in (0.5, 1), got {service_level}")
    from scipy.stats import norm

    z = float(norm.ppf(service_level))
    median = F.greatest(F.col(median_col).cast("double"), F.lit(0.0))
    if not spread >= 0.0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    sigma = F.greatest(F.col(upper_col).cast("double") - median, F.lit(0.0)) * F.lit(spread / z)
    return predictions.select(
        "series_id",
        "ds",
        F.col("step").cast("int").alias("step"),
        median.alias("yhat"),
        (median - Z80 * sigma).alias("lo80"),
        (median + Z80 * sigma).alias("hi80"),
        (median - Z95 * sigma).alias("lo95"),
        (median + Z95 * sigma).alias("hi95"),
    )


def stock_point_prices(
    products: DataFrame, lines: DataFrame, *, item_col: str, no_category: str
) -> DataFrame:
    """Unit price per item (``item_col`` -> ``unit_price``) for the policy's holding cost.

    Per SKU (``item_col="sku"``): the catalogue's price, or where it has none (real
    catalogues such as Olist's carry no list price) the mean price of the SKU's lines. Per
    category (``item_col="category"``): the mean price of the category's lines, products
    without a category under ``no_category``. An item with no priced line has no row.
    """
    line_price = lines.select("sku", "unit_price").where(F.col("unit_price").isNotNull())
    if item_col == "sku":
        mean = line_price.groupBy("sku").agg(F.avg("unit_price").alias("_mean"))
        return (
            products.select("sku", F.col("unit_price").alias("_list"))
            .join(mean, "sku", "full")
            .select("sku", F.coalesce("_list", "_mean").alias("unit_price"))
            .where(F.col("unit_price").isNotNull())
        )
    category = products.select("sku", F.coalesce("category", F.lit(no_category)).alias(item_col))
    return (
        line_price.join(category, "sku")
        .groupBy(item_col)
        .agg(F.avg("unit_price").alias("unit_price"))
    )


def _fields(ddl: str) -> list[tuple[str, str]]:
    return [tuple(part.strip().split(" ", 1)) for part in ddl.split(",")]  # type: ignore[misc]


def _deliveries(orders: DataFrame) -> DataFrame:
    stops = orders.where(F.col("status") != "canceled") if "status" in orders.columns else orders
    return stops.select(
        "order_id", "warehouse_id", F.col("order_date").alias("delivery_date"), "lat", "lon"
    )


def first_delivery_day(orders: DataFrame, *, days: int) -> dt.date | None:
    """First calendar day of the last ``days`` delivery days (ending at the latest one).

    Every day from it on is routed, days without orders included. ``None`` (every day)
    when ``days`` is 0 or there is no delivery at all.
    """
    last = _aggregate(_deliveries(orders).agg(F.max("delivery_date"))) if days else None
    return None if last is None else last - dt.timedelta(days=days - 1)


def routing_input(
    orders: DataFrame, lines: DataFrame, warehouses: DataFrame, *, since: dt.date | None
) -> DataFrame:
    """Stops delivered on ``since`` or later (every stop when ``None``): order location,
    units, the freight charged and the depot.

    The freight of an order is the sum of its lines' ``freight_value``; null when a line's
    is unknown (or ``lines`` has no such column: landing files without freight).
    """
    freight = (
        F.when(F.count("freight_value") == F.count(F.lit(1)), F.sum("freight_value"))
        if "freight_value" in lines.columns
        else F.lit(None)
    )
    units = lines.groupBy("order_id").agg(
        F.sum("quantity").cast("double").alias("demand"),
        freight.cast("double").alias("freight_value"),
    )
    stops = _deliveries(orders)
    if since is not None:
        stops = stops.where(F.col("delivery_date") >= F.lit(since))
    depot = F.broadcast(
        warehouses.select(
            "warehouse_id", F.col("lat").alias("depot_lat"), F.col("lon").alias("depot_lon")
        )
    )
    return (
        stops.join(units, "order_id", "left")
        .join(depot, "warehouse_id", "left")
        .withColumn("tw_start", F.lit(None).cast("double"))
        .withColumn("tw_end", F.lit(None).cast("double"))
    )


def _aggregate(df: DataFrame) -> Any:
    # The value of a one-row aggregate (an aggregate without groupBy always has its row).
    row = df.first()
    if row is None:
        raise ValueError("expected at least one row")
    return row[0]


def routing_output_part(long: DataFrame, record_type: str) -> DataFrame:
    """The rows of one ``record_type`` of the long routing output, in that record's schema.

    The Spark counterpart of :func:`~shikong.decisions.routing.split_routing_output`.

    Args:
        long: Output of ``applyInPandas(make_routing_fn(cfg), ROUTING_OUTPUT_SCHEMA)``.
        record_type: ``stop``, ``route``, ``group``, ``unrouted`` or ``path`` (the
            ``RECORD_*`` constants); the columns are those of ``ROUTES_SCHEMA``,
            ``ROUTE_SUMMARY_SCHEMA``, ``GROUP_SUMMARY_SCHEMA``, ``UNROUTED_SCHEMA`` or
            ``ROUTE_PATH_SCHEMA``.

    Returns:
        The filtered, projected frame.

    Raises:
        ValueError: On an unknown record type.
    """
    if record_type not in _SCHEMA_BY_RECORD:
        raise ValueError(
            f"record_type must be one of {sorted(_SCHEMA_BY_RECORD)}, got {record_type!r}"
        )
    ddl = _SCHEMA_BY_RECORD[record_type]
    return long.where(F.col("record_type") == record_type).select(*column_names(ddl))


def route_sketch_lines(paths: DataFrame, warehouses: DataFrame) -> DataFrame:
    """One line per route of each solver: depot, the stops in visiting order, depot.

    Args:
        paths: The ``path`` records (``ROUTE_PATH_SCHEMA``), coordinates as they should
            appear (the stage coarsens them first).
        warehouses: ``warehouse_id``, ``lat``, ``lon`` of the depots.

    Returns:
        ``warehouse_id``, ``delivery_date``, ``solver``, ``vehicle``, ``n_stops``,
        ``distance_km`` (the solver's exact route length) and ``route_wkt``.
    """
    # Fixed-point text: Spark's double-to-string would write small values as 1.0E-4.
    xy = F.format_string("%.7f %.7f", F.col("lon"), F.col("lat"))
    depot = F.broadcast(warehouses.select("warehouse_id", xy.alias("_depot")))
    lines = paths.groupBy("warehouse_id", "delivery_date", "solver", "vehicle").agg(
        F.sort_array(F.collect_list(F.struct("stop_seq", xy.alias("xy")))).alias("_pts"),
        F.max("route_km").alias("distance_km"),
        F.count(F.lit(1)).cast("int").alias("n_stops"),
    )
    stops = F.array_join(F.transform("_pts", lambda p: p["xy"]), ", ")
    wkt = F.concat(
        F.lit("LINESTRING ("),
        F.col("_depot"),
        F.lit(", "),
        stops,
        F.lit(", "),
        F.col("_depot"),
        F.lit(")"),
    )
    return lines.join(depot, "warehouse_id").select(
        "warehouse_id",
        "delivery_date",
        "solver",
        "vehicle",
        "n_stops",
        "distance_km",
        wkt.alias("route_wkt"),
    )


__all__ = [
    "first_delivery_day",
    "fusion_policy_forecasts",
    "policy_inputs",
    "stock_point_prices",
    "route_sketch_lines",
    "routing_input",
    "routing_output_part",
]
