"""Sedona joins on real data agree with GeoPandas and shapely's STRtree."""

from __future__ import annotations

import re
import unicodedata

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc

from shikong.spatial import features as sf


def _norm(s: object) -> str:
    text = unicodedata.normalize("NFKD", str(s))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[\s'\-]+", " ", text).strip()


@pytest.fixture(scope="module")
def olist_points(shared_data) -> pd.DataFrame:
    """Real Olist customers placed at their municipality (pandas, independent of shikong)."""
    muni = pd.read_csv(shared_data / "brazil" / "municipios.csv")
    states = pd.read_csv(shared_data / "brazil" / "estados.csv", encoding="utf-8-sig")
    muni = muni.merge(states[["codigo_uf", "uf"]], on="codigo_uf")
    muni["key"] = muni["nome"].map(_norm) + "|" + muni["uf"]
    muni = muni.drop_duplicates("key")
    cust = pd.read_csv(shared_data / "olist_sample" / "customers.csv", dtype=str)
    cust["key"] = cust["customer_city"].map(_norm) + "|" + cust["customer_state"]
    placed = cust.merge(muni[["key", "latitude", "longitude"]], on="key")
    return placed.rename(columns={"latitude": "lat", "longitude": "lon"})[
        ["customer_id", "lat", "lon"]
    ]


@pytest.fixture(scope="module")
def state_polygons(shared_data) -> gpd.GeoDataFrame:
    gdf = gpd.read_file(shared_data / "brazil" / "brazil-states.geojson")[["sigla", "geometry"]]
    gdf["geometry"] = shapely.make_valid(gdf.geometry.to_numpy())
    return gdf.rename(columns={"sigla": "uf"})


def test_olist_region_join_matches_geopandas_row_for_row(spark, olist_points, state_polygons):
    regions = (
        spark.createDataFrame(
            pd.DataFrame(
                {
                    "uf": state_polygons["uf"],
                    "wkt": shapely.to_wkt(state_polygons.geometry.to_numpy()),
                }
            )
        )
        .withColumn("geom", stc.ST_GeomFromWKT("wkt"))
        .drop("wkt")
    )
    got = (
        spark.createDataFrame(olist_points)
        .transform(sf.with_point())
        .transform(
            sf.assign_region(
                regions,
                point_col="geom",
                region_geom_col="geom",
                region_cols=["uf"],
                id_cols=["customer_id"],
            )
        )
        .select("customer_id", "uf")
        .toPandas()
    )
    pts = gpd.GeoDataFrame(
        olist_points,
        geometry=gpd.points_from_xy(olist_points["lon"], olist_points["lat"]),
        crs="EPSG:4326",
    )
    joined = gpd.sjoin(pts, state_polygons.set_crs("EPSG:4326"), how="left", predicate="intersects")
    want = joined.sort_values(["customer_id", "uf"]).drop_duplicates("customer_id")[
        ["customer_id", "uf"]
    ]
    merged = want.merge(
        got, on="customer_id", suffixes=("_gpd", "_sedona"), how="outer", indicator=True
    )
    assert (merged["_merge"] == "both").all()
    assert len(merged) == len(olist_points) > 9_500
    mismatch = merged[merged["uf_gpd"].fillna("-") != merged["uf_sedona"].fillna("-")]
    assert mismatch.empty, mismatch.head()


def _read_flat(path, n_coords: int | None = None) -> list[np.ndarray]:
    rows = []
    for line in path.read_text().splitlines():
        vals = np.array([float(v) for v in line.split(",") if v.strip()], dtype=float)
        rows.append(vals if n_coords is None else vals[:n_coords])
    return rows


@pytest.fixture(scope="module")
def sedona_files(spark, shared_data):
    base = shared_data / "sedona_test"
    pts = pd.read_csv(base / "arealm-small.csv", header=None, usecols=[1, 2], names=["x", "y"])
    rect_rows = _read_flat(base / "zcta510-small.csv")
    rects = [
        shapely.box(min(r[0], r[2]), min(r[1], r[3]), max(r[0], r[2]), max(r[1], r[3]))
        for r in rect_rows
    ]
    polys = [
        shapely.Polygon(r.reshape(-1, 2)) for r in _read_flat(base / "primaryroads-polygon.csv")
    ]
    return pts, rects, polys


def _frame(spark, geoms, name):
    pdf = pd.DataFrame(
        {f"{name}_id": range(len(geoms)), "wkt": shapely.to_wkt(np.array(geoms, dtype=object))}
    )
    return spark.createDataFrame(pdf).withColumn(name, stc.ST_GeomFromWKT("wkt")).drop("wkt")


def test_sedona_test_files_join_counts_match_strtree(spark, sedona_files):
    pts, rects, polys = sedona_files
    point_geoms = shapely.points(pts["x"].to_numpy(), pts["y"].to_numpy())
    p = _frame(spark, list(point_geoms), "p")
    r = _frame(spark, rects, "r")
    g = _frame(spark, polys, "g")

    tree_r = shapely.STRtree(np.array(rects, dtype=object))
    want_pr = len(tree_r.query(point_geoms, predicate="within")[0])
    got_pr = p.join(r, F.expr("ST_Contains(r, p)")).count()
    want_gr = len(tree_r.query(np.array(polys, dtype=object), predicate="intersects")[0])
    got_gr = g.join(r, F.expr("ST_Intersects(r, g)")).count()
    print(
        f"\npoints in rectangles: sedona={got_pr} strtree={want_pr}; "
        f"polygons x rectangles: sedona={got_gr} strtree={want_gr}"
    )
    assert got_pr == want_pr
    assert got_gr == want_gr


@pytest.mark.parametrize(
    "window",
    [(-90.0, 30.0, -80.0, 40.0), (-120.0, 30.0, -100.0, 50.0), (-75.0, 40.0, -73.0, 42.0)],
    ids=["south-east", "west", "new-york"],
)
def test_sedona_range_query_counts_match_shapely(spark, sedona_files, window):
    pts, rects, polys = sedona_files
    box = shapely.box(*window)
    p = spark.createDataFrame(pts).withColumn("geom", stc.ST_Point("x", "y"))
    g = _frame(spark, polys, "geom")
    envelope = f"ST_PolygonFromEnvelope({', '.join(map(str, window))})"
    got_p = p.where(F.expr(f"ST_Intersects(geom, {envelope})")).count()
    got_g = g.where(F.expr(f"ST_Intersects(geom, {envelope})")).count()
    want_p = int(
        shapely.intersects(shapely.points(pts["x"].to_numpy(), pts["y"].to_numpy()), box).sum()
    )
    want_g = int(shapely.intersects(np.array(polys, dtype=object), box).sum())
    assert (got_p, got_g) == (want_p, want_g)
    assert want_p + want_g > 0
