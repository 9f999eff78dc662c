"""Sedona transforms checked against shapely, pyproj and h3 called directly."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc

from shikong.spatial import features as sf

POINTS = pd.DataFrame(
    {
        "pid": [1, 2, 3, 4, 5, 6],
        # Sao Paulo, Rio, Manaus, Porto Alegre, mid-Atlantic (no state), Brasilia
        "lat": [-23.5505, -22.9068, -3.1190, -30.0346, -20.0, -15.7939],
        "lon": [-46.6333, -43.1729, -60.0217, -51.2177, -30.0, -47.8828],
    }
)


@pytest.fixture(scope="module")
def points(spark):
    return spark.createDataFrame(POINTS).transform(sf.with_point())


@pytest.mark.parametrize(
    "crs", ["EPSG:5880", "EPSG:31983", "EPSG:3857"], ids=["polyconic", "utm23s", "webmerc"]
)
def test_transform_matches_pyproj(points, crs):
    got = (
        points.transform(sf.to_crs(geom_col="geom", out_col="g", target_crs=crs))
        .select("pid", F.expr("ST_X(g)").alias("x"), F.expr("ST_Y(g)").alias("y"))
        .toPandas()
        .sort_values("pid")
    )
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = tr.transform(POINTS["lon"].to_numpy(), POINTS["lat"].to_numpy())
    # GeoTools and PROJ use different transverse-Mercator series: sub-metre apart for
    # points several UTM zones away from the central meridian, centimetres elsewhere.
    np.testing.assert_allclose(got["x"], x, rtol=1e-6, atol=0.05)
    np.testing.assert_allclose(got["y"], y, rtol=1e-6, atol=0.05)


@pytest.mark.parametrize("res", [5, 7, 9], ids=["r5", "r7", "r9"])
def test_h3_cells_match_h3_package(points, res):
    got = points.select("pid", sf.h3_cell("geom", res).alias("cell")).toPandas().sort_values("pid")
    want = [
        h3.latlng_to_cell(la, lo, res) for la, lo in zip(POINTS["lat"], POINTS["lon"], strict=True)
    ]
    assert got["cell"].tolist() == want


# (points the run will join, broadcast limit in pieces) -> the lookup region_lookup picks:
# at/above the index threshold (100 here) the grid index, below it the pieces for a
# broadcast join, and the partitioned join when the pieces may not be broadcast.
LOOKUPS = [
    (100, 200_000, sf.RegionIndex, True),
    (99, 200_000, sf.RegionPieces, True),
    (None, 0, sf.RegionPieces, False),
]


@pytest.mark.parametrize(
    ("n_points", "broadcast_max_rows", "kind", "broadcast"),
    LOOKUPS,
    ids=["grid-index", "broadcast-join", "partitioned-join"],
)
def test_assign_region_matches_shapely(
    spark, points, n_points, broadcast_max_rows, kind, broadcast
):
    # Two boxes sharing an edge and a third overlapping the second: points inside,
    # outside, on the shared border, in the overlap, on grid-cell corners, and a null.
    boxes = pd.DataFrame(
        {
            "uf": ["A", "B", "AB"],
            "wkt": [
                "POLYGON((-50 -25, -44 -25, -44 -20, -50 -20, -50 -25))",
                "POLYGON((-44 -25, -40 -25, -40 -20, -44 -20, -44 -25))",
                "POLYGON((-42 -24, -38 -24, -38 -21, -42 -21, -42 -24))",
            ],
        }
    )
    regions = spark.createDataFrame(boxes).withColumn("geom", stc.ST_GeomFromWKT("wkt")).drop("wkt")
    extra_pts = pd.DataFrame(
        {
            "pid": [7, 8, 9, 10, 11, 12],
            "lat": [-22.0, -22.5, -23.0, -21.0, -20.0, None],
            "lon": [-44.0, -41.0, -45.0, -42.0, -37.9, -45.0],
        }
    )
    extra = spark.createDataFrame(extra_pts, "pid long, lat double, lon double").transform(
        sf.with_point()
    )
    lookup = sf.region_lookup(
        regions,
        region_geom_col="geom",
        region_cols=["uf"],
        broadcast_max_rows=broadcast_max_rows,
        max_vertices=5,
        n_points=n_points,
        index_min_points=100,
    )
    assert isinstance(lookup, kind)
    assert isinstance(lookup, sf.RegionIndex) or lookup.broadcast == broadcast
    got = (
        points.unionByName(extra)
        .transform(
            sf.assign_region(
                lookup,
                point_col="geom",
                region_geom_col="geom",
                region_cols=["uf"],
                id_cols=["pid"],
                broadcast_max_rows=broadcast_max_rows,
                max_vertices=5,
                xy_cols=("lon", "lat"),
            )
        )
        .select("pid", "uf")
        .toPandas()
        .sort_values("pid")
        .reset_index(drop=True)
    )
    polys = [shapely.from_wkt(w) for w in boxes["wkt"]]
    pts = pd.concat([POINTS, extra_pts]).sort_values("pid")
    want = []
    for la, lo in zip(pts["lat"], pts["lon"], strict=True):
        hits = (
            []
            if pd.isna(la)
            else sorted(
                u
                for u, p in zip(boxes["uf"], polys, strict=True)
                if p.intersects(shapely.Point(lo, la))
            )
        )
        want.append(hits[0] if hits else None)
    assert got["pid"].tolist() == pts["pid"].tolist()  # every row exactly once
    assert got["uf"].tolist() == want
    assert want[6:] == ["A", "AB", "A", "AB", None, None]  # the cases this test is about


def test_region_index_grid_is_exact_power_of_two(spark):
    boxes = pd.DataFrame(
        {"uf": ["A"], "wkt": ["POLYGON((-50 -25, -44 -25, -44 -20, -50 -20, -50 -25))"]}
    )
    regions = spark.createDataFrame(boxes).withColumn("geom", stc.ST_GeomFromWKT("wkt")).drop("wkt")
    index = sf.build_region_index(
        regions, region_geom_col="geom", region_cols=["uf"], max_vertices=5, target_cells=64
    )
    # 6 x 5 degrees over ~64 cells: 0.5-degree cells (a power of two), 12 x 10 of them.
    assert index.cell_size == 0.5
    assert index.n_cells == 12 * 10 + 12 + 10 + 1  # cells touching the box, incl. its far edges
    # Core: the cells the box's boundary misses (a cell with a side on the boundary is
    # tested point by point: conservative, never a wrong region).
    assert index.n_edge_cells == index.n_cells - 10 * 8


def test_nearest_matches_geodesic_bruteforce(spark, points):
    wh = pd.DataFrame(
        {
            "wid": ["W-SP", "W-RJ", "W-MAO", "W-POA"],
            "lat": [-23.5, -22.9, -3.1, -30.0],
            "lon": [-46.6, -43.2, -60.0, -51.2],
        }
    )
    whs = spark.createDataFrame(wh).transform(sf.with_point())
    got = (
        points.transform(
            sf.nearest(
                whs,
                point_col="geom",
                candidate_geom_col="geom",
                candidate_id_col="wid",
                id_cols=["pid"],
                k=2,
            )
        )
        .select("pid", "nearest_ids", "nearest_km")
        .toPandas()
        .sort_values("pid")
    )
    geod = Geod(ellps="WGS84")
    for _, row in got.iterrows():
        p = POINTS.set_index("pid").loc[row["pid"]]
        _, _, d = geod.inv(
            np.full(len(wh), p["lon"]), np.full(len(wh), p["lat"]), wh["lon"], wh["lat"]
        )
        order = np.argsort(d)[:2]
        assert list(row["nearest_ids"]) == wh["wid"].iloc[order].tolist()
        np.testing.assert_allclose(row["nearest_km"], d[order] / 1000, rtol=1e-6)


@pytest.mark.parametrize(
    ("radius", "cross_max"),
    [(0.5, 10_000), (0.5, 10), (2.0, 10), (0.01, 10)],
    ids=["cross-join", "window+knn", "wide-window", "all-knn-fallback"],
)
def test_nearest_many_candidates_is_exact(spark, radius, cross_max):
    rng = np.random.default_rng(3)
    cand = pd.DataFrame(
        {
            "cid": [f"M{i}" for i in range(300)],
            "lat": rng.uniform(-33, 4, 300),
            "lon": rng.uniform(-73, -35, 300),
        }
    )
    pts = pd.DataFrame(
        {"pid": range(60), "lat": rng.uniform(-33, 4, 60), "lon": rng.uniform(-73, -35, 60)}
    )
    got = (
        spark.createDataFrame(pts)
        .transform(sf.with_point())
        .transform(
            sf.nearest(
                spark.createDataFrame(cand).transform(sf.with_point()),
                point_col="geom",
                candidate_geom_col="geom",
                candidate_id_col="cid",
                id_cols=["pid"],
                k=2,
                search_radius_deg=radius,
                cross_join_max=cross_max,
            )
        )
        .select("pid", "nearest_ids", "nearest_km")
        .toPandas()
        .sort_values("pid")
    )
    geod = Geod(ellps="WGS84")
    for row in got.itertuples():
        p = pts.loc[row.pid]
        _, _, d = geod.inv(
            np.full(len(cand), p["lon"]), np.full(len(cand), p["lat"]), cand["lon"], cand["lat"]
        )
        order = np.argsort(d)[:2]
        assert list(row.nearest_ids) == cand["cid"].iloc[order].tolist()
        np.testing.assert_allclose(row.nearest_km, d[order] / 1000, rtol=1e-6)


def test_make_valid_repairs_bowtie(spark):
    df = spark.createDataFrame(
        pd.DataFrame(
            {
                "id": [1, 2],
                "wkt": ["POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))", "POLYGON((0 0, 1 0, 1 1, 0 0))"],
            }
        )
    ).withColumn("geom", stc.ST_GeomFromWKT("wkt"))
    got = (
        df.transform(sf.make_valid(geom_col="geom"))
        .select(
            "id",
            "was_invalid",
            F.expr("ST_IsValid(geom)").alias("valid"),
            F.expr("ST_Area(geom)").alias("area"),
        )
        .toPandas()
        .sort_values("id")
    )
    want_area = [
        shapely.make_valid(shapely.from_wkt(w)).area
        for w in ["POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))", "POLYGON((0 0, 1 0, 1 1, 0 0))"]
    ]
    assert got["was_invalid"].tolist() == [True, False]
    assert got["valid"].all()
    np.testing.assert_allclose(got["area"], want_area)
