"""Stage ``delivery_routes``: each warehouse x delivery day's orders -> CVRP routes (gold).

One grouped pandas function per warehouse-day solves a capacitated VRP with OR-Tools
(spheroidal or road distances, time limit per group) and, on the same stops, a
nearest-neighbour baseline; the better of the two is kept and both totals are reported.
Every order ends on exactly one route or in ``gold.unrouted_orders`` with a reason. The four
tables replace every delivery date from the first routed day on (a date whose orders all
vanished included); older dates stay as history. ``gold.route_sketches`` (published)
draws both solutions' routes through the H3 centroids of their stops, for maps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.decisions import (
    RECORD_GROUP,
    RECORD_PATH,
    RECORD_ROUTE,
    RECORD_STOP,
    RECORD_UNROUTED,
    ROUTING_OUTPUT_SCHEMA,
    first_delivery_day,
    make_routing_fn,
    road_matrix_from_frame,
    route_sketch_lines,
    routing_config,
    routing_input,
    routing_output_part,
)
from shikong.frames import default_parallelism, to_pandas
from shikong.io import reference
from shikong.io.catalog import Since, scope_predicate
from shikong.privacy import coarsen_points
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)


def run(ctx: StageContext, *, days: int | None = None) -> pd.DataFrame:
    """Capacitated vehicle routes per warehouse and day (OR-Tools vs nearest neighbour).

    Args:
        ctx: Stage context.
        days: Route the last N delivery days (default: ``decisions.route_days``).

    Returns:
        The per warehouse-day OR-Tools vs baseline table.
    """
    spark, cat = ctx.spark, ctx.catalog
    d = (
        ctx.cfg.decisions
        if days is None
        else dataclasses.replace(ctx.cfg.decisions, route_days=days)
    )
    with step("delivery_routes") as done:
        orders = ctx.read("bronze.orders")
        since = first_delivery_day(orders, days=d.route_days)
        # Without a window every day is routed, so every date is replaced.
        scope = {"delivery_date": Since(since or dt.date.min)}
        stops = routing_input(
            orders, ctx.read("bronze.order_lines"), ctx.read("bronze.warehouses"), since=since
        )
        road = reference.road_matrix(d.road_matrix)
        try:
            lookup = road_matrix_from_frame(road) if road is not None else None
        except ValueError as exc:
            raise ValueError(f"decisions.road_matrix {d.road_matrix}: {exc}") from None
        groups = stops.select("warehouse_id", "delivery_date").distinct().count()
        long = (
            stops.repartition(
                max(2, min(groups, 4 * default_parallelism(spark))),
                "warehouse_id",
                "delivery_date",
            )
            .groupBy("warehouse_id", "delivery_date")
            .applyInPandas(
                make_routing_fn(routing_config(d), road_matrix=lookup), ROUTING_OUTPUT_SCHEMA
            )
            # Persist once: the four outputs must come from the same solve.
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        try:
            routes = (
                routing_output_part(long, RECORD_ROUTE)
                .withColumn("geom_wkb", stf.ST_AsBinary(stc.ST_GeomFromWKT(F.col("route_wkt"))))
                .drop("route_wkt")
            )
            cat.write(spark, "gold.routes", routes, scope=scope)
            # Published: both solutions' routes through the H3 centroids of their stops.
            coarse = routing_output_part(long, RECORD_PATH).transform(
                coarsen_points(
                    lat_col="lat",
                    lon_col="lon",
                    resolution=ctx.cfg.privacy.location_h3_resolution,
                )
            )
            sketches = (
                route_sketch_lines(coarse, ctx.read("bronze.warehouses"))
                .withColumn("geom_wkb", stf.ST_AsBinary(stc.ST_GeomFromWKT(F.col("route_wkt"))))
                .drop("route_wkt")
            )
            cat.write(spark, "gold.route_sketches", sketches, scope=scope)
            for table, record in (
                ("gold.route_stops", RECORD_STOP),
                ("gold.route_groups", RECORD_GROUP),
                ("gold.unrouted_orders", RECORD_UNROUTED),
            ):
                cat.write(spark, table, routing_output_part(long, record), scope=scope)
        finally:
            long.unpersist()
        summary = to_pandas(ctx.read("gold.route_groups").where(scope_predicate(scope)))
        done(int(summary["n_orders"].sum()) if len(summary) else 0)
    if len(summary):
        log.info(
            "routes: %d warehouse-days, OR-Tools %.0f km vs nearest-neighbour %.0f km "
            "(%.1f%% saved), %d unrouted",
            len(summary),
            summary["ortools_km"].sum(),
            summary["baseline_km"].sum(),
            100 * (1 - summary["ortools_km"].sum() / max(summary["baseline_km"].sum(), 1e-9)),
            int(summary["n_unrouted"].sum()),
        )
    return summary
