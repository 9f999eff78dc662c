"""Privacy transforms of the published tables (pure ``DataFrame -> DataFrame``).

* :func:`pseudonymise`: customer ids -> keyed HMAC-SHA256 pseudonyms (64 hex digits). The
  same key gives the same pseudonym in every table and run, so published tables still join;
  without the key a pseudonym cannot be recomputed from an id.
* :func:`coarsen_points`: WGS84 coordinates -> the centroid of their H3 cell at a configured
  resolution (Sedona's ``ST_H3CellIDs`` / ``ST_H3ToGeom``). Features that need the exact
  point (distances, clusters) are computed before this, inside the job.
* :func:`suppress_small_cells`: drop aggregate cells with fewer than ``k`` distinct
  customers.

The key comes from :mod:`shikong.secrets` through the stage; nothing here reads it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

Transform = Callable[[DataFrame], DataFrame]


def hmac_sha256_column(key: bytes) -> Callable[[Column], Column]:
    """A column function: string -> lowercase hex HMAC-SHA256 under ``key`` (null stays null).

    A pandas UDF (Spark has no HMAC): the key travels to the executors inside the UDF's
    pickled closure, never in a query plan, a Spark setting or a log line.
    """
    if not key:
        raise ValueError("an HMAC key must not be empty")
    k = bytes(key)

    def digest(v: object) -> str | None:
        if not isinstance(v, str):
            return None
        return hmac.new(k, v.encode("utf-8"), hashlib.sha256).hexdigest()

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def _hmac(s: pd.Series) -> pd.Series:
        return s.map(digest)

    return lambda c: _hmac(c.cast("string"))


def pseudonymise(*, cols: Sequence[str], key: bytes) -> Transform:
    """Replace each of ``cols`` (customer ids) with its HMAC-SHA256 pseudonym under ``key``."""
    fn = hmac_sha256_column(key)

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumns({c: fn(F.col(c)) for c in cols})

    return apply


def h3_centroid(lat: Column, lon: Column, resolution: int) -> tuple[Column, Column]:
    """(lat, lon) of the centroid of the H3 cell holding the point at ``resolution``."""
    cell = stf.ST_H3CellIDs(stc.ST_Point(lon, lat), F.lit(resolution), F.lit(True))[0]
    centre = stf.ST_Centroid(stf.ST_H3ToGeom(F.array(cell))[0])
    known = lat.isNotNull() & lon.isNotNull()
    return (
        F.when(known, stf.ST_Y(centre)).cast("double"),
        F.when(known, stf.ST_X(centre)).cast("double"),
    )


def coarsen_points(*, lat_col: str, lon_col: str, resolution: int) -> Transform:
    """Replace the WGS84 point (``lat_col``, ``lon_col``) by its H3 cell's centroid."""

    def apply(df: DataFrame) -> DataFrame:
        lat, lon = h3_centroid(F.col(lat_col), F.col(lon_col), resolution)
        return df.withColumns({lat_col: lat, lon_col: lon})

    return apply


def distinct_customers(
    rows: DataFrame, *, keys: Sequence[str], customer_col: str = "customer_id"
) -> DataFrame:
    """Distinct customers per cell (``keys``) as ``customers``: the count suppression uses."""
    return rows.groupBy(*keys).agg(F.countDistinct(customer_col).alias("customers"))


def suppress_small_cells(*, k: int, customers_col: str = "customers") -> Transform:
    """Keep only the cells with at least ``k`` distinct customers (``customers_col``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")

    def apply(df: DataFrame) -> DataFrame:
        return df.where(F.col(customers_col) >= F.lit(k))

    return apply
