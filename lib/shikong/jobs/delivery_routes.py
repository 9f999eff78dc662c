"""Job ``delivery_routes``: each warehouse x delivery day's orders -> CVRP routes (gold).

One grouped pandas UDF per warehouse-day solves a capacitated VRP with OR-Tools (spheroidal
distances, time limit per group) and, on the same stops, a nearest-neighbour baseline; the
better of the two is kept and both totals are reported. Every order ends on exactly one
route or in ``gold.unrouted_orders`` with a reason.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.config import AppConfig
from shikong.decisions import (
    RECORD_GROUP,
    RECORD_ROUTE,
    RECORD_STOP,
    RECORD_UNROUTED,
    ROUTING_OUTPUT_SCHEMA,
    make_routing_fn,
    road_matrix_from_frame,
    routing_config,
    routing_input,
    routing_output_part,
)
from shikong.io.delta import replace_partitions
from shikong.jobs.common import job_main, stage, to_pandas

log = logging.getLogger(__name__)


def load_road_matrix(path: str | None) -> Mapping[tuple[str, str], int] | None:
    """Road distances ``{(from_id, to_id): metres}`` from a file, read on the driver.

    The result is passed to ``make_routing_fn(cfg, road_matrix=...)``: the grouped function
    itself reads no files.

    Args:
        path: CSV or Parquet with columns from_id, to_id, distance_m; None to skip.

    Returns:
        The lookup, or None when no path is set or the file does not exist.

    Raises:
        ValueError: If the file lacks a column.
    """
    if not path:
        return None
    if not os.path.exists(path):
        log.warning("road matrix %s not found; using spheroidal distances", path)
        return None
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    try:
        return road_matrix_from_frame(frame)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def run_delivery_routes(spark: SparkSession, cfg: AppConfig) -> pd.DataFrame:
    """Solve and write the routes; returns the per-group OR-Tools vs baseline table."""

    def read(layer: str, name: str) -> DataFrame:
        return spark.read.format("delta").load(cfg.paths.table(layer, name))

    d = cfg.decisions
    stops = routing_input(
        read("bronze", "orders"),
        read("bronze", "order_lines"),
        read("bronze", "warehouses"),
        days=d.route_days,
    )
    groups = stops.select("warehouse_id", "delivery_date").distinct().count()
    long = (
        stops.repartition(
            max(2, min(groups, 4 * spark.sparkContext.defaultParallelism)),
            "warehouse_id",
            "delivery_date",
        )
        .groupBy("warehouse_id", "delivery_date")
        .applyInPandas(make_routing_fn(routing_config(d)), ROUTING_OUTPUT_SCHEMA)
        # Persist once: the four outputs must come from the same solve.
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        routes = (
            routing_output_part(long, RECORD_ROUTE)
            .withColumn("geom_wkb", stf.ST_AsBinary(stc.ST_GeomFromWKT(F.col("route_wkt"))))
            .drop("route_wkt")
        )
        tables = {
            "routes": routes,
            "route_stops": routing_output_part(long, RECORD_STOP),
            "route_groups": routing_output_part(long, RECORD_GROUP),
            "unrouted_orders": routing_output_part(long, RECORD_UNROUTED),
        }
        for name, df in tables.items():
            replace_partitions(
                spark, df, cfg.paths.table("gold", name), partition_by=["delivery_date"]
            )
    finally:
        long.unpersist()
    summary = to_pandas(read("gold", "route_groups"))
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the delivery_routes job."""
    parser.add_argument(
        "--days", type=int, default=None, help="route the last N delivery days (default: config)"
    )


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> pd.DataFrame:
    """Capacitated vehicle routes per warehouse and day (OR-Tools vs nearest neighbour)."""
    if args.days is not None:
        import dataclasses

        cfg = dataclasses.replace(
            cfg, decisions=dataclasses.replace(cfg.decisions, route_days=args.days)
        )
    with stage("delivery_routes") as done:
        summary = run_delivery_routes(spark, cfg)
        done(int(summary["n_orders"].sum()) if len(summary) else 0)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("delivery_routes", add_arguments, run, argv)
