"""What leaves the lakehouse as files: the report and the GeoParquet exports.

The report is one HTML file, ``<lakehouse>/report/index.html``. The exports are the
published tables with geometry, under ``<lakehouse>/exports/``, written by Sedona's
``geoparquet`` writer with the CRS stated as PROJJSON in the file's ``geo`` metadata
(GeoParquet 1.x), so GeoPandas, DuckDB, QGIS or BigQuery read them with their coordinates'
meaning. Each export is one file (the tables are small published aggregates) and is
replaced whole on every run.
"""

from __future__ import annotations

import functools

from pyspark.sql import DataFrame

from shikong.io import fs

#: Where the exports go, under the lakehouse.
EXPORTS_DIR = "exports"
#: The report's file, under the lakehouse.
REPORT_FILE = ("report", "index.html")
#: The CRS of every stored geometry: WGS84 longitude/latitude (axis order lon, lat).
CRS = "OGC:CRS84"


@functools.cache
def crs_projjson(crs: str = CRS) -> str:
    """The PROJJSON text of ``crs`` (pyproj), as GeoParquet's ``crs`` field wants it."""
    import pyproj

    return str(pyproj.CRS.from_user_input(crs).to_json())


def write_geoparquet(df: DataFrame, uri: str, *, geometry_col: str = "geometry") -> str:
    """Replace the GeoParquet export at ``uri`` with ``df`` (one file); the Spark URI.

    Args:
        df: Rows to export; ``geometry_col`` is a Sedona geometry column.
        uri: The export's folder.
        geometry_col: The geometry column (the file's primary column).
    """
    if geometry_col not in df.columns:
        raise ValueError(f"{uri}: no geometry column {geometry_col!r} in {df.columns}")
    target = fs.spark_uri(uri)
    (
        df.coalesce(1)
        .write.format("geoparquet")
        .mode("overwrite")
        .option("geoparquet.crs", crs_projjson())
        .option("geoparquet.version", "1.0.0")
        .save(target)
    )
    return target


def write_report(uri: str, html: str) -> None:
    """Replace the report file at ``uri``."""
    fs.write_text(uri, html)
