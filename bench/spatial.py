"""Spatial benchmark: point-in-polygon region join, shikong (Sedona) vs GeoPandas.

N seeded points (85% within a few km of a random Brazilian municipality centre, 15%
uniform over Brazil's bounding box, so some fall in the sea or a neighbour country and
match no state) are joined to the 27 state polygons of
``shared/data/brazil/brazil-states.geojson`` (11 invalid as published; about 85,600
vertices after make-valid).

* shikong, end to end (everything a job run pays for the join): the states' lookup as the
  job builds it for N points (``tables.state_lookup(states, n_points=N)``: states repaired
  with Sedona ``ST_MakeValid`` beforehand, ``ST_SubDivideExplode`` into pieces of <= 64
  vertices, then at N >= ``INDEX_MIN_POINTS`` a power-of-two grid index whose cells are
  "core" (one state covers the cell) or "edge" (clipped chips), below it Sedona's plain
  broadcast join of the pieces) + ``spark.read.parquet`` -> ``with_point`` ->
  ``assign_region`` (index: each point's cell looked up with one broadcast hash join, only
  points in edge cells tested; one output row per input row by construction, no shuffle)
  -> ``write.format("noop")``. Each timed run builds its own lookup (the build time is
  also reported on its own); one untimed warm-up run first (JIT, Sedona class loading).
* Crossover: both lookups forced (index / plain broadcast join of the pieces), end to end,
  at a few sizes, to place ``INDEX_MIN_POINTS``.
* GeoPandas (the issue's baseline): ``points_from_xy`` + ``sjoin(points, states,
  predicate="within")``, single-threaded, on the same Parquet read once with pandas
  (reading is not timed; states repaired with shapely ``make_valid``). ``within`` is the
  normal fast usage: GeoPandas runs it as the inverse ``contains`` with the tree on the
  points and the 27 polygons as the (prepared) query geometries; with ``intersects`` the
  tree holds the polygons and every point is tested against unprepared 85k-vertex
  polygons, ~15x slower. The two give the same rows here (points in the open sea or on a
  border are measure-zero cases); the run checks that on a prefix of the points.
* Stretch baseline: one core, numpy + shapely 2, bbox filter then prepared
  ``shapely.contains_xy`` on raw lon/lat arrays.

The matched-point counts of the three are compared, and at the smallest size shikong's
(point, state) rows are compared with GeoPandas' row for row. A profile (read only, read +
point construction, the grid lookup without the edge-cell tests, the share of points in
edge cells, a plain Sedona broadcast join of the pieces for reference) is measured at one
size.

Run: ``python bench/run.py --area spatial [--sizes 1000000,2000000] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import common  # first third-party import (sorts before numpy): pins BLAS threads
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from common import Result, check_target, log, timed

GEOJSON = common.SHARED_DATA / "brazil" / "brazil-states.geojson"
DEFAULT_SIZES = (1_000_000, 2_000_000, 4_000_000, 8_000_000)
QUICK_SIZES = (4_000, 8_000)
DEFAULT_CROSSOVER = (250_000, 500_000, 1_000_000, 2_000_000)
QUICK_CROSSOVER = (4_000,)
TARGET_SIZE = 4_000_000
MUNI_SHARE = 0.85
JITTER_KM = 3.0
ROW_GROUP = 1 << 17


# --------------------------------------------------------------------------- data


def brazil_bbox() -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the 27 state polygons."""
    import shapely

    with open(GEOJSON, encoding="utf-8") as fh:
        doc = json.load(fh)
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in doc["features"]])
    return tuple(float(v) for v in shapely.total_bounds(geoms))  # type: ignore[return-value]


def generate_points(n: int, seed: int) -> pd.DataFrame:
    """``id``, ``lon``, ``lat`` of ``n`` seeded points in random order (see module docstring)."""
    from shikong.geo_resources import load_municipalities

    rng = np.random.default_rng(seed)
    muni = load_municipalities()[["lat", "lon"]].to_numpy()
    n_muni = int(round(MUNI_SHARE * n))
    centre = muni[rng.integers(0, len(muni), n_muni)]
    km_per_deg = 111.32
    lat_m = centre[:, 0] + rng.normal(0.0, JITTER_KM / km_per_deg, n_muni)
    lon_m = centre[:, 1] + rng.normal(0.0, 1.0, n_muni) * (
        JITTER_KM / (km_per_deg * np.cos(np.radians(centre[:, 0])))
    )
    minx, miny, maxx, maxy = brazil_bbox()
    n_uni = n - n_muni
    lon_u = rng.uniform(minx, maxx, n_uni)
    lat_u = rng.uniform(miny, maxy, n_uni)
    order = rng.permutation(n)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "lon": np.concatenate([lon_m, lon_u])[order],
            "lat": np.concatenate([lat_m, lat_u])[order],
        }
    )


def write_point_files(sizes: list[int], seed: int, folder: Path) -> dict[int, Path]:
    """Generate max(sizes) points once; write the first n rows of each size to Parquet.

    The points are in random order, so each prefix is itself a random sample. Files are
    reused when they exist (same size and seed in the name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {n: folder / f"points_n{n}_seed{seed}.parquet" for n in sizes}
    if all(p.exists() for p in paths.values()):
        return paths
    t0 = time.perf_counter()
    pts = generate_points(max(sizes), seed)
    for n, path in paths.items():
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            pq.write_table(
                pa.Table.from_pandas(pts.iloc[:n], preserve_index=False),
                tmp,
                row_group_size=ROW_GROUP,
                compression="snappy",
            )
            tmp.rename(path)
    log(f"generated {max(sizes):,} points in {time.perf_counter() - t0:.1f}s -> {folder}")
    return paths


# --------------------------------------------------------------------------- GeoPandas / shapely


def geopandas_states() -> Any:
    """States as a GeoDataFrame (``uf``, ``geometry``), repaired with shapely make_valid."""
    import geopandas as gpd
    import shapely

    gdf = gpd.read_file(GEOJSON)
    invalid = int((~gdf.is_valid).sum())
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    gdf = gdf.rename(columns={"sigla": "uf"})[["uf", "geometry"]]
    gdf.attrs["n_invalid"] = invalid
    gdf.attrs["n_vertices"] = int(shapely.get_num_coordinates(gdf.geometry.values).sum())
    return gdf


def geopandas_join(
    pts: pd.DataFrame, states: Any, predicate: str = "within"
) -> tuple[float, pd.DataFrame]:
    """Timed ``points_from_xy`` + ``sjoin``; returns (seconds, ``id``/``uf`` rows)."""
    import geopandas as gpd

    t0 = time.perf_counter()
    gdf = gpd.GeoDataFrame(
        {"id": pts["id"].to_numpy()},
        geometry=gpd.points_from_xy(pts["lon"].to_numpy(), pts["lat"].to_numpy()),
        crs="EPSG:4326",
    )
    joined = gpd.sjoin(gdf, states, how="inner", predicate=predicate)
    seconds = time.perf_counter() - t0
    return seconds, joined[["id", "uf"]]


def first_state(rows: pd.DataFrame) -> pd.Series:
    """One state per point id (smallest ``uf`` on a shared border, as shikong)."""
    return rows.sort_values(["id", "uf"]).drop_duplicates("id").set_index("id")["uf"]


def rows_differ(a: pd.Series, b: pd.Series) -> int:
    """Point ids whose state differs between two id -> uf series (missing = no state)."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1)
    return int((both["a"].fillna("-") != both["b"].fillna("-")).sum())


def vectorised_join(lon: np.ndarray, lat: np.ndarray, states: Any) -> tuple[float, int]:
    """Timed single-core bbox filter + prepared ``contains_xy`` per state (first match wins)."""
    import shapely

    # fresh, unprepared copies so that preparing them is part of the timing
    geoms = [shapely.from_wkb(shapely.to_wkb(g)) for g in states.geometry.values]
    t0 = time.perf_counter()
    region = np.full(lon.size, -1, dtype=np.int16)
    for i, geom in enumerate(geoms):
        shapely.prepare(geom)
        minx, miny, maxx, maxy = geom.bounds
        cand = np.flatnonzero(
            (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy) & (region < 0)
        )
        if cand.size:
            hit = shapely.contains_xy(geom, lon[cand], lat[cand])
            region[cand[hit]] = i
    seconds = time.perf_counter() - t0
    return seconds, int((region >= 0).sum())


# --------------------------------------------------------------------------- shikong / Sedona


def sedona_states(spark: Any) -> tuple[Any, dict[str, float]]:
    """States as a cached Sedona frame (``uf``, ``region``, ``geom``) repaired with ST_MakeValid."""
    from pyspark.sql import functions as F
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    from shikong.geo_resources import load_states
    from shikong.spatial import features as sf

    with open(GEOJSON, encoding="utf-8") as fh:
        doc = json.load(fh)
    region_of = load_states().set_index("uf")["region"].to_dict()
    rows = pd.DataFrame(
        {
            "uf": [f["properties"]["sigla"] for f in doc["features"]],
            "gj": [json.dumps(f["geometry"]) for f in doc["features"]],
        }
    )
    rows["region"] = rows["uf"].map(region_of)
    t0 = time.perf_counter()
    states = (
        spark.createDataFrame(rows)
        .withColumn("geom", stf.ST_SetSRID(stc.ST_GeomFromGeoJSON(F.col("gj")), 4326))
        .drop("gj")
        .transform(sf.make_valid(geom_col="geom"))
        .cache()
    )
    stats = states.agg(
        F.count(F.when(F.col("was_invalid"), 1)).alias("invalid"),
        F.sum(stf.ST_NPoints(F.col("geom"))).alias("vertices"),
        F.count(F.when(~stf.ST_IsValid(F.col("geom")), 1)).alias("still_invalid"),
    ).first()
    info = {
        "invalid": int(stats["invalid"]),
        "vertices": int(stats["vertices"]),
        "still_invalid": int(stats["still_invalid"]),
        "make_valid_s": time.perf_counter() - t0,
    }
    return states.select("uf", "region", "geom"), info


def state_lookup(states: Any, n_points: int | None) -> tuple[Any, float]:
    """The job's states lookup for ``n_points`` (None: the index) and its build time."""
    from shikong.config import SpatialSettings
    from shikong.spatial.tables import state_lookup as job_lookup

    t0 = time.perf_counter()
    lookup = job_lookup(states, SpatialSettings(), n_points=n_points)
    return lookup, time.perf_counter() - t0


def end_to_end(
    spark: Any, path: Path, states: Any, n_points: int | None, repeats: int
) -> dict[str, Any]:
    """Timed runs of lookup build + join (noop write): medians and every run."""
    totals, builds = [], []
    kind = ""
    for _ in range(repeats):
        lookup, build_s = state_lookup(states, n_points)
        t0 = time.perf_counter()
        common.noop_write(shikong_frame(spark, path, lookup))
        totals.append(build_s + time.perf_counter() - t0)
        builds.append(build_s)
        kind = "index" if hasattr(lookup, "cells") else "join"
    return {
        "total_s": float(np.median(totals)),
        "build_s": float(np.median(builds)),
        "runs": totals,
        "builds": builds,
        "kind": kind,
    }


def shikong_frame(spark: Any, path: Path, lookup: Any) -> Any:
    """The job's region join on the Parquet points (lazy)."""
    from shikong.config import SpatialSettings
    from shikong.spatial.tables import state_of

    return (
        spark.read.parquet(str(path))
        .transform(sf_with_point())
        .transform(state_of(lookup, SpatialSettings(), id_col="id"))
    )


def sf_with_point() -> Any:
    """The job's WGS84 point column ``geom`` from ``lon``/``lat``."""
    from shikong.spatial import features as sf

    return sf.with_point(lat_col="lat", lon_col="lon", out_col="geom")


def cell_lookup_frame(spark: Any, path: Path, index: Any) -> Any:
    """Profile only: the grid lookup (broadcast hash join) without the edge-cell tests."""
    from pyspark.sql import functions as F

    d = index.cell_size
    key = F.floor(F.col("lon") / d) * F.lit(1 << 32) + F.floor(F.col("lat") / d)
    cells = index.cells.select("_cell", "_core", F.col("_chips").isNotNull().alias("_edge"))
    return (
        spark.read.parquet(str(path))
        .transform(sf_with_point())
        .withColumn("_pcell", key)
        .join(F.broadcast(cells), F.col("_pcell") == F.col("_cell"), "left")
        .drop("_pcell", "_cell")
    )


def plain_broadcast_frame(spark: Any, path: Path, states: Any) -> Any:
    """Profile only: the same broadcast join of subdivided pieces, no dedupe/left-anti/union."""
    from pyspark.sql import functions as F
    from sedona.spark.sql import st_predicates as stp

    from shikong.config import SpatialSettings
    from shikong.spatial import features as sf

    pieces = sf.subdivide(geom_col="geom", max_vertices=SpatialSettings().subdivide_max_vertices)(
        states
    ).withColumnRenamed("geom", "_region_geom")
    pts = spark.read.parquet(str(path)).transform(sf.with_point(out_col="geom"))
    return pts.join(
        F.broadcast(pieces), stp.ST_Intersects(F.col("_region_geom"), F.col("geom")), "inner"
    ).drop("_region_geom")


def shikong_matched(spark: Any, path: Path, lookup: Any) -> tuple[float, int, int]:
    """Timed count action: (seconds, rows, points with a region)."""
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    row = (
        shikong_frame(spark, path, lookup)
        .agg(F.count(F.lit(1)).alias("n"), F.count("uf").alias("matched"))
        .first()
    )
    return time.perf_counter() - t0, int(row["n"]), int(row["matched"])


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> list[Result]:
    sizes = sorted(
        int(s) for s in (QUICK_SIZES if args.quick and not args.sizes_given else args.sizes)
    )
    repeats = 1 if args.quick else args.repeats
    profile_n = (
        min(sizes, key=lambda n: abs(n - TARGET_SIZE))
        if args.profile_size is None
        else args.profile_size
    )
    gp_max = args.geopandas_max or max(sizes)
    cross_sizes = sorted(
        int(s) for s in (QUICK_CROSSOVER if args.quick and not args.sizes_given else args.crossover)
    )
    folder = common.WORK_DIR / "spatial"
    paths = write_point_files(sorted(set(sizes) | set(cross_sizes)), args.seed, folder)

    gstates = geopandas_states()
    log(
        f"GeoPandas states: {len(gstates)} polygons, {gstates.attrs['n_invalid']} invalid -> "
        f"make_valid, {gstates.attrs['n_vertices']:,} vertices"
    )

    handle = common.start_spark(
        cores=args.cores, shuffle_partitions=2 * args.cores, app_name="shikong-bench-spatial"
    )
    spark = handle.spark
    log(f"Spark up in {handle.startup_s:.1f}s")
    states, sinfo = sedona_states(spark)
    log(f"Sedona states: {sinfo}")
    # Warm-up (JIT, class loading), untimed in the rates: both lookups, one join each.
    t0 = time.perf_counter()
    index, sinfo["cold_index_s"] = state_lookup(states, None)
    sinfo.update(
        cell_size=index.cell_size,
        cells=index.n_cells,
        edge_cells=index.n_edge_cells,
        pieces=index.n_pieces,
    )
    common.noop_write(shikong_frame(spark, paths[sizes[0]], index))
    plain, sinfo["cold_plain_s"] = state_lookup(states, 0)
    common.noop_write(shikong_frame(spark, paths[sizes[0]], plain))
    warm_s = time.perf_counter() - t0
    log(f"warm-up ({sizes[0]:,} points, both lookups) {warm_s:.1f}s: {sinfo}")

    rows: dict[int, dict[str, Any]] = {}
    for n in sizes:
        path = paths[n]
        rec: dict[str, Any] = {"n": n}
        before = common.conditions()
        e2e = end_to_end(spark, path, states, n, repeats)
        rec["spark_s"], rec["spark_runs"] = e2e["total_s"], e2e["runs"]
        rec["build_s"], rec["builds"], rec["kind"] = e2e["build_s"], e2e["builds"], e2e["kind"]
        rec["spark_cond"] = _span(before, common.conditions())
        log(
            f"shikong {n:,} ({rec['kind']}): {', '.join(f'{t:.2f}' for t in rec['spark_runs'])}"
            f" s, of which lookup build {', '.join(f'{t:.2f}' for t in rec['builds'])} s "
            f"({rec['spark_cond']})"
        )
        lookup = index if rec["kind"] == "index" else plain
        cnt_s, total, matched = shikong_matched(spark, path, lookup)
        rec.update(count_s=cnt_s, spark_rows=total, spark_matched=matched)
        log(f"shikong {n:,} count action {cnt_s:.2f}s rows={total:,} matched={matched:,}")
        if n == sizes[0]:
            # Row-for-row check of both lookups against GeoPandas later; collecting the
            # rows to pandas is the only JVM -> Python transfer of this benchmark.
            t0 = time.perf_counter()
            got = shikong_frame(spark, path, index).select("id", "uf").toPandas()
            rec["collect_s"] = time.perf_counter() - t0
            rec["spark_states"] = got.set_index("id")["uf"]
            got = shikong_frame(spark, path, plain).select("id", "uf").toPandas()
            rec["plain_states"] = got.set_index("id")["uf"]
            log(f"collected {len(got):,} shikong rows to pandas in {rec['collect_s']:.2f}s")
        if n == profile_n:
            from pyspark.sql import functions as F

            rec["read_s"] = timed(
                lambda p=path: common.noop_write(spark.read.parquet(str(p))), repeats
            )[0]
            rec["point_s"] = timed(
                lambda p=path: common.noop_write(
                    spark.read.parquet(str(p)).transform(sf_with_point())
                ),
                repeats,
            )[0]
            rec["plain_s"] = timed(
                lambda p=path: common.noop_write(plain_broadcast_frame(spark, p, states)), repeats
            )[0]
            rec["lookup_s"] = timed(
                lambda p=path: common.noop_write(cell_lookup_frame(spark, p, index)), repeats
            )[0]
            where = (
                cell_lookup_frame(spark, path, index)
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.count("_core").alias("core"),
                    F.count(F.when(F.col("_edge"), 1)).alias("edge"),
                )
                .first()
            )
            rec["core_pts"], rec["edge_pts"] = int(where["core"]), int(where["edge"])
            rec["index_join_s"] = timed(
                lambda p=path: common.noop_write(shikong_frame(spark, p, index)), repeats
            )[0]
            rec["partitions"] = spark.read.parquet(str(path)).rdd.getNumPartitions()
            log(
                f"profile {n:,}: read {rec['read_s']:.2f}s, +points {rec['point_s']:.2f}s, "
                f"+cell lookup {rec.get('lookup_s', float('nan')):.2f}s "
                f"(core {rec.get('core_pts')}, edge {rec.get('edge_pts')}), "
                f"plain Sedona broadcast join of the pieces {rec['plain_s']:.2f}s, "
                f"{rec['partitions']} input partitions"
            )
        rows[n] = rec
    # Crossover: both lookups forced, end to end (lookup build + join), same runs.
    cross: dict[int, dict[str, Any]] = {}
    for n in cross_sizes:
        before = common.conditions()
        cross[n] = {
            "index": end_to_end(spark, paths[n], states, None, repeats),
            "plain": end_to_end(spark, paths[n], states, 0, repeats),
        }
        cross[n]["cond"] = _span(before, common.conditions())
        log(
            f"crossover {n:,}: index {cross[n]['index']['total_s']:.2f}s (build "
            f"{cross[n]['index']['build_s']:.2f}s), plain join {cross[n]['plain']['total_s']:.2f}s"
            f" (subdivide {cross[n]['plain']['build_s']:.2f}s) ({cross[n]['cond']})"
        )
    spark.stop()
    # Single-process baselines after Spark is gone (same data, same run): the 2-core Spark
    # timings come first, so a long GeoPandas phase never overlaps them.
    for n in sizes:
        rec = rows[n]
        pts = pd.read_parquet(paths[n])
        vec_s, vec_matched = vectorised_join(pts["lon"].to_numpy(), pts["lat"].to_numpy(), gstates)
        rec.update(vec_s=vec_s, vec_matched=vec_matched)
        log(f"vectorised {n:,}: {vec_s:.2f}s matched={vec_matched:,}")
        if n <= gp_max:
            before = common.conditions()
            gp_s, gp_rows = geopandas_join(pts, gstates)
            rec.update(
                gp_s=gp_s,
                gp_matched=int(gp_rows["id"].nunique()),
                gp_cond=_span(before, common.conditions()),
            )
            log(f"geopandas {n:,}: {gp_s:.2f}s matched={rec['gp_matched']:,}")
            if "spark_states" in rec:
                want = first_state(gp_rows).reindex(pts["id"].to_numpy())
                rec["row_diff"] = rows_differ(rec.pop("spark_states"), want)
                rec["plain_row_diff"] = rows_differ(rec.pop("plain_states"), want)
                # The slow usage on a prefix: same rows as within?
                k = min(n, args.intersects_check)
                rec["isect_n"] = k
                rec["isect_s"], isect = geopandas_join(pts.iloc[:k], gstates, "intersects")
                rec["isect_diff"] = rows_differ(
                    first_state(isect).reindex(pts["id"].to_numpy()[:k]),
                    want.iloc[:k],
                )
                log(
                    f"rows differing shikong vs geopandas: {rec['row_diff']}; geopandas "
                    f"intersects on {k:,} points {rec['isect_s']:.2f}s, differs from within "
                    f"on {rec['isect_diff']} points"
                )
        rec.pop("spark_states", None)
        rec.pop("plain_states", None)
        del pts
    return build_results(rows, cross, sizes, handle, sinfo, gstates, warm_s, repeats, profile_n)


def _span(before: str, after: str) -> str:
    return before if before == after else f"before: {before}; after: {after}"


def _label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def build_results(
    rows: dict[int, dict[str, Any]],
    cross: dict[int, dict[str, Any]],
    sizes: list[int],
    handle: Any,
    sinfo: dict[str, float],
    gstates: Any,
    warm_s: float,
    repeats: int,
    profile_n: int,
) -> list[Result]:
    from shikong.spatial.features import INDEX_MIN_POINTS

    index_note = (
        f"The states' lookup is built by every timed run and counted in its rate (the job "
        f"builds it once per run for all its joins): ST_SubDivideExplode <= 64 vertices -> "
        f"{sinfo['pieces']} pieces, then at >= {INDEX_MIN_POINTS:,} points the grid index "
        f"({sinfo['cell_size']} deg cells: {sinfo['cells']} cells, {sinfo['edge_cells']} "
        f"edge cells), below it Sedona's plain broadcast join of the pieces. First (cold "
        f"JVM) builds in the warm-up: index {sinfo['cold_index_s']:.1f}s, pieces only "
        f"{sinfo['cold_plain_s']:.1f}s; warm build times are in each row."
    )
    out: list[Result] = [
        common.spark_startup_result(
            handle,
            f"One warm-up run of both lookups on {sizes[0]:,} points ({warm_s:.1f}s) also "
            f"excluded. Sedona ST_MakeValid repaired {sinfo['invalid']} of 27 states "
            f"({sinfo['still_invalid']} still invalid), {sinfo['vertices']:,} vertices, "
            f"{sinfo['make_valid_s']:.1f}s untimed; shapely make_valid: "
            f"{gstates.attrs['n_invalid']} repaired, "
            f"{gstates.attrs['n_vertices']:,} vertices (untimed on both sides). " + index_note,
        )
    ]
    for n in sizes:
        r = rows[n]
        rate = n / r["spark_s"]
        gp_rate = n / r["gp_s"] if "gp_s" in r else None
        target = ">= 2.0" if n == TARGET_SIZE else None
        ratio = rate / gp_rate if gp_rate else None
        path = (
            "grid index: broadcast hash join on the cell, a point test only in edge cells"
            if r["kind"] == "index"
            else "plain Sedona broadcast join of the pieces, first state per point"
        )
        notes = (
            f"shikong end to end: states lookup build ({path}) + read Parquet + with_point "
            f"+ assign_region + noop write, local[{handle.cores}], median of {repeats}: "
            f"{', '.join(f'{t:.2f}' for t in r['spark_runs'])} s, of which lookup build "
            f"{', '.join(f'{t:.2f}' for t in r['builds'])} s ({r['spark_cond']}); "
            f"GeoPandas: points_from_xy + sjoin(predicate='within'), 1 thread, 1 run, "
            + (
                f"{r['gp_s']:.2f} s ({r['gp_cond']})"
                if "gp_s" in r
                else "skipped (--geopandas-max)"
            )
        )
        if n == profile_n:
            edge = r["edge_pts"]
            notes += (
                f". Profile at {_label(n)} ({r['partitions']} input partitions, lookup "
                f"prebuilt): read Parquet -> noop {r['read_s']:.2f}s, + ST_Point "
                f"{r['point_s']:.2f}s, + grid cell lookup (broadcast hash join, no "
                f"point-in-polygon test) {r['lookup_s']:.2f}s, index join (+ point tests for "
                f"the {edge:,} points ({100 * edge / n:.0f}%) in edge cells) "
                f"{r['index_join_s']:.2f}s; a plain Sedona broadcast index join of the "
                f"pieces (ST_Intersects, no one-row-per-point step) {r['plain_s']:.2f}s; "
                f"Python/JVM transfer: none on the join path (Parquet read by the JVM, no "
                f"Python UDF); Spark start-up {handle.startup_s:.1f}s"
            )
        out.append(
            Result(
                name=f"region_join_{_label(n)}_points",
                unit="rows/s",
                value=rate,
                baseline_name="geopandas_sjoin" if gp_rate else None,
                baseline_value=gp_rate,
                target=target,
                meets_target=check_target(ratio, target) if target else None,
                notes=notes,
            )
        )
        out.append(
            Result(
                name=f"region_lookup_build_{_label(n)}",
                unit="s",
                value=r["build_s"],
                notes=f"of the row above: building the states' lookup ({r['kind']}), median "
                f"of {repeats}: {', '.join(f'{t:.2f}' for t in r['builds'])} s (lower is "
                "better)",
                higher_is_better=False,
            )
        )
    for n, c in cross.items():
        ix, pl = c["index"], c["plain"]
        out.append(
            Result(
                name=f"region_join_crossover_{_label(n)}",
                unit="s",
                value=ix["total_s"],
                baseline_name="sedona_broadcast_join_of_pieces",
                baseline_value=pl["total_s"],
                notes=f"end to end at {n:,} points, median of {repeats}: grid index (build "
                f"{ix['build_s']:.2f}s + join) {', '.join(f'{t:.2f}' for t in ix['runs'])} s vs "
                f"plain Sedona broadcast join of the pieces (subdivide {pl['build_s']:.2f}s + "
                f"join + first state per point) {', '.join(f'{t:.2f}' for t in pl['runs'])} s; "
                f"ratio > 1: the index is cheaper ({c['cond']}); the job switches at "
                f"{INDEX_MIN_POINTS:,} points (lower is better)",
                higher_is_better=False,
            )
        )
    for a, b in zip(sizes, sizes[1:], strict=False):
        if b != 2 * a:
            continue
        scale = rows[b]["spark_s"] / rows[a]["spark_s"]
        out.append(
            Result(
                name=f"region_join_scaling_{_label(a)}_to_{_label(b)}",
                unit="time ratio",
                value=scale,
                target="<= 2.1",
                meets_target=check_target(scale, "<= 2.1"),
                notes=f"shikong time({_label(b)}) / time({_label(a)}) = "
                f"{rows[b]['spark_s']:.2f}s / {rows[a]['spark_s']:.2f}s (lower is better)",
                higher_is_better=False,
                ratio_override=None,
            )
        )
    for n in sizes:
        r = rows[n]
        rate, vrate = n / r["spark_s"], n / r["vec_s"]
        out.append(
            Result(
                name=f"region_join_{_label(n)}_vs_vectorised",
                unit="rows/s",
                value=rate,
                baseline_name="numpy_shapely_contains_xy_1core",
                baseline_value=vrate,
                target=">= 1.0",
                meets_target=check_target(rate / vrate, ">= 1.0"),
                notes=f"stretch: single-core bbox filter + prepared shapely.contains_xy per "
                f"state on raw lon/lat arrays, {r['vec_s']:.2f}s (no file read, no output frame)",
            )
        )
    for n in sizes:
        r = rows[n]
        gp = r.get("gp_matched")
        diff = None if gp is None else r["spark_matched"] - gp
        out.append(
            Result(
                name=f"matched_points_{_label(n)}",
                unit="points",
                value=r["spark_matched"],
                baseline_name="geopandas_sjoin" if gp is not None else None,
                baseline_value=gp,
                target="== baseline" if gp is not None else None,
                meets_target=(
                    (
                        diff == 0
                        and r.get("row_diff", 0) == 0
                        and r.get("plain_row_diff", 0) == 0
                        and r["spark_rows"] == n
                    )
                    if gp is not None
                    else None
                ),
                notes=(
                    f"distinct points with a state: shikong {r['spark_matched']:,} of "
                    f"{r['spark_rows']:,} rows out (input {n:,}"
                    f"{'' if r['spark_rows'] == n else ' - ROW COUNT MISMATCH'}), GeoPandas "
                    f"{'-' if gp is None else f'{gp:,}'}, vectorised contains_xy "
                    f"{r['vec_matched']:,}; difference shikong - GeoPandas = "
                    f"{'-' if diff is None else diff}; count action {r['count_s']:.2f}s"
                    + (
                        f"; row for row: {r['row_diff']} of {n:,} points get a different "
                        f"state than GeoPandas with the grid index, {r['plain_row_diff']} with "
                        f"the plain Sedona join (collecting shikong's id/uf rows to pandas, the "
                        f"one JVM->Python transfer, took {r['collect_s']:.2f}s); GeoPandas "
                        f"predicate='intersects' on the first {r['isect_n']:,} points took "
                        f"{r['isect_s']:.2f}s and differs from 'within' on "
                        f"{r['isect_diff']} points"
                        if "row_diff" in r
                        else ""
                    )
                ),
            )
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated point counts, e.g. 1e6,2e6 (default 1000000,2000000,4000000,8000000)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed shikong runs per size (median reported; quick: 1)",
    )
    parser.add_argument(
        "--geopandas-max",
        type=int,
        default=0,
        help="skip GeoPandas above this size (0 = run it at every size)",
    )
    parser.add_argument(
        "--intersects-check",
        type=int,
        default=200_000,
        help="points (prefix of the smallest size) also joined by GeoPandas with the slow "
        "predicate='intersects', to check it gives the same rows as 'within'",
    )
    parser.add_argument(
        "--crossover",
        default=None,
        help="comma-separated sizes where both lookups (index, plain join) are timed "
        "(default 250000,500000,1000000,2000000)",
    )
    parser.add_argument(
        "--profile-size",
        type=int,
        default=None,
        help="size of the profile runs (default: the one closest to 4M)",
    )
    args = parser.parse_args(argv)
    args.sizes_given = args.sizes is not None
    args.crossover = (
        [int(float(s)) for s in args.crossover.split(",")]
        if args.crossover
        else list(DEFAULT_CROSSOVER)
    )
    args.sizes = (
        [int(float(s)) for s in args.sizes.split(",")] if args.sizes else list(DEFAULT_SIZES)
    )
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    results = run(args)
    common.print_table("spatial", results)
    path = common.write_results("spatial", results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
