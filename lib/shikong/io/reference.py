"""Reference data: the packaged geography (Brazil's states and municipalities) as
DataFrames, and an optional road-distance file."""

from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from shikong.geo_resources import load_municipalities, load_states
from shikong.io import fs

log = logging.getLogger(__name__)


def states(spark: SparkSession) -> DataFrame:
    """The 27 state polygons: ``uf``, ``state_name``, ``region``, ``wkt`` (WGS84)."""
    pdf = load_states()[["uf", "name", "region", "wkt"]].rename(columns={"name": "state_name"})
    return spark.createDataFrame(pdf)


def municipalities(spark: SparkSession) -> DataFrame:
    """Municipality points: ``ibge_code``, ``municipality``, ``municipality_uf``, lat, lon."""
    pdf = load_municipalities()[["ibge_code", "name", "uf", "lat", "lon"]]
    pdf = pdf.rename(columns={"name": "municipality", "uf": "municipality_uf"})
    return spark.createDataFrame(pdf)


def municipality_lookup(spark: SparkSession) -> DataFrame:
    """(name_norm, uf) -> lat/lon of the municipalities, unique per key (lowest IBGE code)."""
    muni = load_municipalities()[["name_norm", "uf", "lat", "lon", "ibge_code"]]
    muni = muni.sort_values("ibge_code").drop_duplicates(["name_norm", "uf"])
    return spark.createDataFrame(muni.drop(columns="ibge_code"))


def road_matrix(uri: str) -> pd.DataFrame | None:
    """Road distances (``from_id``, ``to_id``, ``distance_m``) from a CSV or Parquet file.

    Returns:
        The frame, or ``None`` when ``uri`` is empty or names no file (with a warning: the
        routes then use spheroidal distances).
    """
    if not uri:
        return None
    if not fs.is_file(uri):
        log.warning("road matrix %s not found; using spheroidal distances", uri)
        return None
    with fs.open_input(uri) as f:
        return pd.read_parquet(f) if uri.endswith(".parquet") else pd.read_csv(f)
