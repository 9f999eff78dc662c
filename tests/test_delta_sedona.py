"""Sedona and Delta in one session: WKB geometry round trip, MERGE, time travel."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import shapely
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.io.delta import merge_into, overwrite, replace_where

# Also run inside the container image (make image-test).
pytestmark = pytest.mark.smoke


def _shops(spark, rows):
    pdf = pd.DataFrame(rows, columns=["shop", "day", "wkt", "sales"])
    return spark.createDataFrame(pdf).select(
        "shop", "day", "sales", stf.ST_AsBinary(stc.ST_GeomFromWKT("wkt")).alias("geom_wkb")
    )


def test_wkb_merge_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "shops")
    v0 = _shops(
        spark, [("a", "d1", "POINT (-46.6 -23.5)", 1.0), ("b", "d1", "POINT (-43.2 -22.9)", 2.0)]
    )
    first = merge_into(spark, v0, path, keys=["shop"], partition_by=["day"])
    assert (first.version, first.rows_inserted) == (0, 2)

    v1 = _shops(
        spark, [("b", "d1", "POINT (-43.2 -22.9)", 5.0), ("c", "d1", "POINT (-51.2 -30.0)", 3.0)]
    )
    second = merge_into(spark, v1, path, keys=["shop"], partition_by=["day"])
    assert (second.version, second.rows_inserted, second.rows_updated) == (1, 1, 1)

    again = merge_into(spark, v1, path, keys=["shop"], partition_by=["day"])
    assert (again.rows_inserted, again.rows_updated) == (0, 0)  # idempotent

    now = spark.read.format("delta").load(path).orderBy("shop").toPandas()
    assert now["sales"].tolist() == [1.0, 5.0, 3.0]
    geoms = shapely.from_wkb(now["geom_wkb"].map(bytes).to_numpy())
    assert [round(g.x, 1) for g in geoms] == [-46.6, -43.2, -51.2]

    old = spark.read.format("delta").option("versionAsOf", 0).load(path).orderBy("shop").toPandas()
    assert old["shop"].tolist() == ["a", "b"] and old["sales"].tolist() == [1.0, 2.0]
    assert DeltaTable.forPath(spark, path).history().count() >= 2

    # Sedona reads the stored WKB back as geometry and answers a predicate on it.
    box = "ST_PolygonFromEnvelope(-50, -25, -40, -20)"
    inside = (
        spark.read.format("delta")
        .load(path)
        .where(F.expr(f"ST_Intersects(ST_GeomFromWKB(geom_wkb), {box})"))
        .count()
    )
    assert inside == 2


def test_replace_where_replaces_exactly_the_scope(spark, tmp_path):
    path = str(tmp_path / "daily")
    rows = [("a", d, "POINT (0 0)", 1.0) for d in ("d1", "d2", "d3")]
    overwrite(spark, _shops(spark, rows), path, partition_by=["day"])
    # d3 has no new row but lies inside the scope: it goes; d1 lies outside it: it stays.
    done = replace_where(
        spark,
        _shops(spark, [("a", "d2", "POINT (0 0)", 9.0)]),
        path,
        where="day >= 'd2'",
        partition_by=["day"],
    )
    got = spark.read.format("delta").load(path).orderBy("day").select("day", "sales").toPandas()
    assert got.values.tolist() == [["d1", 1.0], ["d2", 9.0]]
    assert (done.rows_inserted, done.rows_deleted) == (1, 2)


def test_writes_report_their_metrics_on_a_relative_path(spark, tmp_path):
    # The embedded default's lakehouse is ./lakehouse; Delta's SQL takes absolute paths
    # only. Relative to the working directory the JVM shares (so no chdir here).
    path = os.path.relpath(tmp_path / "lake" / "shops")
    assert not os.path.isabs(path)
    rows = [("a", "d1", "POINT (0 0)", 1.0), ("b", "d1", "POINT (1 1)", 2.0)]
    first = overwrite(spark, _shops(spark, rows), path)
    assert (first.version, first.rows_inserted) == (0, 2)
    second = merge_into(
        spark, _shops(spark, [("a", "d1", "POINT (0 0)", 5.0)]), path, keys=["shop", "day"]
    )
    assert (second.version, second.rows_inserted, second.rows_updated) == (1, 0, 1)
    assert (tmp_path / "lake" / "shops" / "_delta_log").is_dir()


def _sales(spark, rows, *, freight: bool):
    schema = "shop string, day string, sales double" + (", freight double" if freight else "")
    return spark.createDataFrame(rows, schema)


#: (id, write, expected rows (shop, day, sales, freight), rows inserted, rows updated):
#: a table written without ``freight``, then a write that has it.
NEW_COLUMN_WRITES = [
    (
        "merge-upsert",
        lambda spark, df, path: merge_into(spark, df, path, keys=["shop"]),
        # a: same sales, a freight now: updated; b: no freight, nothing else new: untouched
        [("a", "d1", 1.0, 2.0), ("b", "d1", 2.0, None), ("c", "d2", 3.0, 4.0)],
        1,
        1,
    ),
    (
        "merge-insert-only",
        lambda spark, df, path: merge_into(spark, df, path, keys=["shop"], update_matched=False),
        [("a", "d1", 1.0, None), ("b", "d1", 2.0, None), ("c", "d2", 3.0, 4.0)],
        1,
        0,
    ),
    (
        "replace-where",
        lambda spark, df, path: replace_where(
            spark, df.where("day = 'd2'"), path, where="day = 'd2'"
        ),
        [("a", "d1", 1.0, None), ("b", "d1", 2.0, None), ("c", "d2", 3.0, 4.0)],
        1,
        0,
    ),
]


@pytest.mark.parametrize(
    ("case", "write", "want", "inserted", "updated"),
    NEW_COLUMN_WRITES,
    ids=[c[0] for c in NEW_COLUMN_WRITES],
)
def test_a_new_column_is_added_to_a_table_written_without_it(
    spark, tmp_path, case, write, want, inserted, updated
):
    path = str(tmp_path / "sales")
    merge_into(
        spark,
        _sales(spark, [("a", "d1", 1.0), ("b", "d1", 2.0)], freight=False),
        path,
        keys=["shop"],
    )
    new = _sales(
        spark, [("a", "d1", 1.0, 2.0), ("b", "d1", 2.0, None), ("c", "d2", 3.0, 4.0)], freight=True
    )
    done = write(spark, new, path)
    table = spark.read.format("delta").load(path)
    assert dict(table.dtypes)["freight"] == "double"
    assert sorted(map(tuple, table.select("shop", "day", "sales", "freight").collect())) == want
    assert (done.rows_inserted, done.rows_updated) == (inserted, updated)
    if case.startswith("merge"):
        again = write(spark, new, path)  # the column is there now: a re-run changes nothing
        assert (again.rows_inserted, again.rows_updated) == (0, 0)
