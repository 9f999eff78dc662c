"""``python tests/s3a_child.py CONFIG_JSON``: Delta + Sedona on an ``s3a://`` lakehouse.

Run by ``tests/test_s3a.py`` in a process of its own: the test process may already hold
the shared local session (``conftest.spark``), and one Python process gets one
SparkSession, while this one needs the s3a jars on its classpath and the S3A endpoint in
its Hadoop settings before the JVM starts. The environment (``AWS_ENDPOINT_URL``,
credentials, ``SHIKONG_LAKEHOUSE``) comes from the test.

The session is built by :func:`shikong.session.build_session` and the writes go through
the table catalogue (:class:`shikong.io.catalog.Catalog`), as a stage's would. The last
stdout line is ``RESULT <json>``: what the test compares.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from shikong.config import config_from_dict
from shikong.io.catalog import Catalog, TableSpec, WriteMode
from shikong.session import build_session

#: An UPSERT table as a stage declares one: business key, partition column.
SHOPS = TableSpec(
    "silver", "shops", WriteMode.UPSERT, keys=("shop",), partition_by=("day",), published=False
)
FIRST = [("a", "d1", "POINT (-46.6 -23.5)", 1.0), ("b", "d1", "POINT (-43.2 -22.9)", 2.0)]
# b changes, c is new, a is not delivered again (an upsert keeps it).
SECOND = [("b", "d1", "POINT (-43.2 -22.9)", 5.0), ("c", "d2", "POINT (-51.2 -30.0)", 3.0)]


def _shops(spark, rows):
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    pdf = pd.DataFrame(rows, columns=["shop", "day", "wkt", "sales"])
    return spark.createDataFrame(pdf).select(
        "shop", "day", "sales", stf.ST_AsBinary(stc.ST_GeomFromWKT("wkt")).alias("geom_wkb")
    )


def main(argv: list[str]) -> int:
    cfg = config_from_dict(json.loads(argv[0]))
    spark = build_session(cfg)
    catalog = Catalog(cfg.paths.lakehouse)
    writes = [
        catalog.write(spark, SHOPS, _shops(spark, FIRST)),
        catalog.write(spark, SHOPS, _shops(spark, SECOND)),
        catalog.write(spark, SHOPS, _shops(spark, SECOND)),  # the same rows again: no change
    ]
    table = catalog.read(spark, SHOPS)
    # Sedona reads the stored WKB back as geometry (São Paulo and Rio lie in the box).
    box = "ST_PolygonFromEnvelope(-50, -25, -40, -20)"
    inside = table.where(f"ST_Intersects(ST_GeomFromWKB(geom_wkb), {box})").count()
    now = table.orderBy("shop").toPandas()
    first = (
        spark.read.format("delta")
        .option("versionAsOf", 0)
        .load(catalog.uri(SHOPS))
        .orderBy("shop")
        .toPandas()
    )
    result = {
        "writes": [[w.operation, w.version, w.rows_inserted, w.rows_updated] for w in writes],
        "inside": inside,
        "now": _records(now),
        "first": _records(first),
        "tables": [[t.name, t.path, t.rows, t.version] for t in catalog.list_tables(spark)],
        # Every setting the session ended up with, so the test can check what is (and what
        # is not, the secret) in it.
        "conf": dict(spark.sparkContext.getConf().getAll()),
    }
    spark.stop()
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


def _records(pdf: pd.DataFrame) -> list[dict[str, object]]:
    out = pdf.copy()
    out["geom_wkb"] = out["geom_wkb"].map(lambda b: bytes(b).hex())
    return out.to_dict(orient="records")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
