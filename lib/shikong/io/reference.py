"""The packaged reference geography (Brazil's states and municipalities) as DataFrames."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from shikong.geo_resources import load_municipalities, load_states


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
