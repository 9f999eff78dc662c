"""The workload tests/test_spark_connect.py runs under classic Spark and under Spark Connect.

``python tests/connect_check.py LAKEHOUSE`` starts a local Spark Connect server (PySpark's
``remote("local[...]")``: a server JVM in this process, the session a gRPC client) with the
settings :func:`shikong.session.build_session` gives a classic session, runs
:func:`workload` and prints its result as one JSON line; then the checks of what cannot
run under Connect. A separate process because a Connect session cannot coexist with the
classic session of the test run.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812


def workload(spark: SparkSession, lakehouse: str) -> dict[str, Any]:
    """Sedona functions, a shikong transform, Delta writes and a checkpoint; plain results."""
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    from shikong.frames import default_parallelism
    from shikong.io import delta, fs
    from shikong.spatial import features as sf

    out: dict[str, Any] = {"parallelism": default_parallelism(spark)}

    points = spark.createDataFrame(
        [("sp", -46.63, -23.55), ("rj", -43.2, -22.9)], "id string, lon double, lat double"
    ).select("id", stc.ST_Point("lon", "lat").alias("geom"))
    metric = points.transform(sf.to_crs(geom_col="geom", out_col="geom_m"))
    out["points_m"] = [
        [r["id"], round(r["x"], 3), round(r["y"], 3)]
        for r in metric.select(
            "id", stf.ST_X("geom_m").alias("x"), stf.ST_Y("geom_m").alias("y")
        ).collect()
    ]

    # A 33-vertex disc, cut into pieces of at most 8 vertices on 4 x parallelism partitions.
    disc = spark.createDataFrame([("a",)], "uf string").select(
        "uf", stf.ST_Buffer(stc.ST_Point(F.lit(0.0), F.lit(0.0)), F.lit(10.0)).alias("geom")
    )
    pieces = sf.subdivide_regions(disc, region_geom_col="geom", region_cols=["uf"], max_vertices=8)
    summary = first(
        pieces.agg(F.count(F.lit(1)).alias("n"), F.sum(stf.ST_Area("geom")).alias("area"))
    )
    out["pieces"] = [summary["n"], round(summary["area"], 6)]

    path = fs.spark_uri(fs.join(lakehouse, "gold", "connect_check"))
    rows = spark.createDataFrame(
        [("2024-01-01", "a", 1.0), ("2024-01-02", "b", 2.0)], "day string, k string, v double"
    )
    first_write = delta.overwrite(spark, rows, path, partition_by=["day"])
    replaced = delta.replace_where(
        spark,
        spark.createDataFrame([("2024-01-02", "c", 3.0)], "day string, k string, v double"),
        path,
        where="day = '2024-01-02'",
        partition_by=["day"],
    )
    out["writes"] = [
        [w.version, w.operation, w.rows_inserted, w.rows_deleted] for w in (first_write, replaced)
    ]
    out["table"] = [
        list(r) for r in spark.read.format("delta").load(path).orderBy("day", "k").collect()
    ]
    # Needs spark.checkpoint.dir: the public replacement of SparkContext.setCheckpointDir.
    out["checkpointed"] = spark.range(5).checkpoint().count()
    return out


def first(df: Any) -> Any:
    from shikong.frames import first_row

    return first_row(df)


def connect_session(checkpoint_dir: str) -> SparkSession:
    """A local Spark Connect session with build_session's settings (no py4j on this side)."""
    from shikong.session import (
        DELTA_CATALOG,
        KRYO_SERIALIZER,
        SEDONA_KRYO_REGISTRATOR,
        SQL_EXTENSIONS,
        resolve_jars,
        spark_location,
    )

    # The server JVM reads these when it starts; the client then tries to set them on its
    # session too and warns that static settings cannot change, which is harmless.
    settings = {
        "spark.jars": ",".join(resolve_jars(".jars/lib")),
        "spark.sql.extensions": ",".join(SQL_EXTENSIONS),
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.serializer": KRYO_SERIALIZER,
        "spark.kryo.registrator": SEDONA_KRYO_REGISTRATOR,
        "spark.checkpoint.dir": spark_location(checkpoint_dir),
        "spark.log.level": "ERROR",
        "spark.ui.enabled": "false",
        "spark.default.parallelism": "2",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.driver.memory": "1g",
    }
    builder = SparkSession.builder.remote("local[2]")
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def limits(spark: SparkSession, lakehouse: str) -> dict[str, str]:
    """What fails under Connect, and how (the README's list)."""
    from shikong.io import delta, fs
    from shikong.spatial.clusters import dbscan_clusters

    found: dict[str, str] = {}
    pts = spark.sql("SELECT ST_Point(0.0, 0.0) AS geom")
    try:
        dbscan_clusters(pts, geometry_col="geom", eps_m=1.0, min_pts=1)
    except ValueError as exc:
        found["dbscan"] = str(exc)
    try:
        path = fs.spark_uri(fs.join(lakehouse, "gold", "connect_check"))
        found["table_exists"] = str(delta.table_exists(spark, path))
        delta.delete_where_in(spark, path, "k", ["a"])
    except Exception as exc:  # noqa: BLE001 - the class is Delta's/Spark's, recorded as text
        found["delta_table_api"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return found


def main(lakehouse: str, checkpoint_dir: str) -> None:
    from sedona.spark import SedonaContext

    spark = SedonaContext.create(connect_session(checkpoint_dir))
    from shikong.frames import is_classic

    result = {
        "classic": is_classic(spark),
        "workload": workload(spark, lakehouse),
        "limits": limits(spark, lakehouse),
    }
    spark.stop()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
