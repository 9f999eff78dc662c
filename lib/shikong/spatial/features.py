"""Point and polygon features on Sedona: CRS transform, clipping, region joins, nearest
warehouse, H3/geohash grid and per-cell aggregates.

Every function is a pure ``DataFrame -> DataFrame`` transform with keyword-only column
names; geometry is built and compared with Sedona's function modules, never by hand.
Distances and areas are computed in the metric CRS or on the spheroid, never in degrees.

Region joins (:func:`assign_region`) look points up in a :class:`RegionIndex`: a grid of
power-of-two cells over the subdivided regions, built once with Sedona's predicates
(one narrow pass over the pieces and one aggregation, a few seconds for Brazil's 27
states), so that most points get their region from a broadcast hash join on the cell
key and only points in cells crossed by a border are tested against small clipped chips.
Below :data:`INDEX_MIN_POINTS` points per run the index costs more than it saves and
:func:`region_lookup` picks Sedona's plain broadcast join of the pieces instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructField, StructType
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf
from sedona.spark.sql import st_predicates as stp

from shikong.frames import default_parallelism

WGS84 = "EPSG:4326"
#: SIRGAS 2000 / Brazil Polyconic: metric, valid for the whole country.
DEFAULT_METRIC_CRS = "EPSG:5880"

Transform = Callable[[DataFrame], DataFrame]


def with_point(*, lat_col: str = "lat", lon_col: str = "lon", out_col: str = "geom") -> Transform:
    """Add a WGS84 point geometry (x = lon, y = lat, SRID 4326); null when lat/lon is null."""

    def apply(df: DataFrame) -> DataFrame:
        point = stf.ST_SetSRID(stc.ST_Point(F.col(lon_col), F.col(lat_col)), 4326)
        return df.withColumn(
            out_col, F.when(F.col(lat_col).isNotNull() & F.col(lon_col).isNotNull(), point)
        )

    return apply


def to_crs(
    *, geom_col: str, out_col: str, source_crs: str = WGS84, target_crs: str = DEFAULT_METRIC_CRS
) -> Transform:
    """Transform a geometry column to another CRS with ``ST_Transform`` (lon/lat order)."""

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumn(
            out_col, stf.ST_Transform(F.col(geom_col), F.lit(source_crs), F.lit(target_crs))
        )

    return apply


def make_valid(*, geom_col: str, repaired_col: str = "was_invalid") -> Transform:
    """Repair polygons with ``ST_MakeValid`` and flag the ones that needed it."""

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumn(repaired_col, ~stf.ST_IsValid(F.col(geom_col))).withColumn(
            geom_col,
            F.when(F.col(repaired_col), stf.ST_MakeValid(F.col(geom_col))).otherwise(
                F.col(geom_col)
            ),
        )

    return apply


def subdivide(*, geom_col: str, max_vertices: int = 64) -> Transform:
    """Cut polygons into pieces of at most ``max_vertices`` (one row per piece).

    Point-in-polygon against many small pieces is far cheaper than against a few huge
    polygons: each candidate test touches ~max_vertices edges instead of thousands.
    """

    def apply(df: DataFrame) -> DataFrame:
        others = [c for c in df.columns if c != geom_col]
        return df.select(
            *others, stf.ST_SubDivideExplode(F.col(geom_col), F.lit(max_vertices)).alias(geom_col)
        )

    return apply


def subdivide_regions(
    regions: DataFrame, *, region_geom_col: str, region_cols: Sequence[str], max_vertices: int
) -> DataFrame:
    """``region_cols`` + pieces of at most ``max_vertices`` (see :func:`subdivide`).

    A handful of big polygons (27 states) would sit in one partition and be cut by one
    core; they are spread over several partitions first.
    """
    parts = 4 * default_parallelism(regions.sparkSession)
    return subdivide(geom_col=region_geom_col, max_vertices=max_vertices)(
        regions.select(*region_cols, F.col(region_geom_col)).repartition(parts)
    )


@dataclass(frozen=True)
class RegionIndex:
    """A regular grid over region polygons for exact point-in-region lookups by cell key.

    ``cells`` has one row per grid cell that touches a region: ``_cell`` (the cell key),
    ``_core`` (the region columns as a struct when one piece of a region covers the whole
    cell and no other region touches it, else null) and ``_chips`` (for the other "edge"
    cells: the part of each piece in the cell, ``region_cols`` + ``_geom``, sorted by the
    region columns).
    It is materialised once (a local checkpoint) and reused by every join.

    Attributes:
        cells: The materialised cell table.
        region_cols: Region attribute columns, in tie-break order.
        cell_size: Cell edge in the regions' coordinate units (a power of two).
        bounds: ``(xmin, ymin, xmax, ymax)`` of all regions.
        n_cells: Rows of ``cells``.
        n_edge_cells: Cells that need a point-in-polygon test.
        n_pieces: Subdivided region pieces the index was built from.
    """

    cells: DataFrame
    region_cols: tuple[str, ...]
    cell_size: float
    bounds: tuple[float, float, float, float]
    n_cells: int
    n_edge_cells: int
    n_pieces: int


def _cell_key(gx: Column, gy: Column) -> Column:
    """One 64-bit key per (column, row) of the grid.

    Unique while ``|row| < 2**31``: true for every cell near the regions, the only ones keyed.
    """
    return gx * F.lit(1 << 32) + gy


def build_region_index(
    regions: DataFrame,
    *,
    region_geom_col: str,
    region_cols: Sequence[str],
    max_vertices: int = 64,
    target_cells: int = 1 << 18,
    pieces: DataFrame | None = None,
) -> RegionIndex:
    """Grid index of region polygons (see :class:`RegionIndex`), built with Sedona.

    The polygons are cut into pieces of at most ``max_vertices`` (``ST_SubDivideExplode``)
    so that every geometric test below is on a small polygon. The grid is aligned on the
    origin with a power-of-two cell edge ``d`` chosen so that the regions' bounding box
    holds about ``target_cells`` cells: ``x / d`` is then exact in floating point, so the
    cell ``floor(x / d)`` of a point and the cell rectangle ``[i d, (i + 1) d]`` built with
    ``ST_PolygonFromEnvelope`` agree exactly. Each piece is paired with every cell of its
    bounding box (a narrow explode, no spatial join); a pair is kept when the piece
    intersects the cell and the piece *covers* the cell when its boundary misses it. A
    cell is *core* when a single region meets it and one of its pieces covers it: every
    point in it belongs to that region and only to it. Every other cell keeps one chip per
    piece that meets it (the cell where the piece covers it, else
    ``ST_Intersection(piece, cell)``), sorted by region, against which its points are
    tested; a point is in a region iff it is in one of the region's chips.

    Args:
        regions: Region polygons.
        region_geom_col: Polygon column of ``regions``.
        region_cols: Region attributes (their order is the tie-break order).
        max_vertices: Subdivision size.
        target_cells: Approximate grid cells over the regions' bounding box.
        pieces: Already subdivided regions (``region_cols`` + ``region_geom_col``), to
            reuse a subdivision; built here when None.

    Returns:
        The index.

    Raises:
        ValueError: When the regions have no non-empty geometry.
    """
    cols = list(region_cols)
    if pieces is None:
        pieces = subdivide_regions(
            regions, region_geom_col=region_geom_col, region_cols=cols, max_vertices=max_vertices
        )
    g = F.col(region_geom_col)
    pieces = pieces.where(g.isNotNull() & ~stf.ST_IsEmpty(g)).select(
        *cols,
        g.alias("_geom"),
        stf.ST_XMin(g).alias("_x0"),
        stf.ST_YMin(g).alias("_y0"),
        stf.ST_XMax(g).alias("_x1"),
        stf.ST_YMax(g).alias("_y1"),
    )
    pieces = pieces.cache()
    box = pieces.agg(
        F.count(F.lit(1)).alias("n"),
        F.min("_x0").alias("x0"),
        F.min("_y0").alias("y0"),
        F.max("_x1").alias("x1"),
        F.max("_y1").alias("y1"),
    ).first()
    if box is None or not box["n"]:
        pieces.unpersist()
        raise ValueError("regions have no non-empty geometry")
    bounds = (float(box["x0"]), float(box["y0"]), float(box["x1"]), float(box["y1"]))
    area = max((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]), 1e-300)
    d = 2.0 ** round(math.log2(math.sqrt(area / target_cells)))
    step = F.lit(d)
    gx, gy = F.col("_gx"), F.col("_gy")
    # (piece, cell) for every cell of each piece's bounding box: a narrow explode, no
    # spatial join (a piece of <= max_vertices spans ~70 cells on average, 230k pairs
    # for Brazil). Each pair is tested on the small piece itself; the clip is made here,
    # before the shuffle, so that only small chips (never the pieces) travel.
    rect = stc.ST_PolygonFromEnvelope(gx * step, gy * step, (gx + 1) * step, (gy + 1) * step)
    pairs = (
        pieces.select(
            *cols,
            "_geom",
            "_y0",
            "_y1",
            F.explode(F.sequence(F.floor(F.col("_x0") / step), F.floor(F.col("_x1") / step))).alias(
                "_gx"
            ),
        )
        .select(
            *cols,
            "_geom",
            "_gx",
            F.explode(F.sequence(F.floor(F.col("_y0") / step), F.floor(F.col("_y1") / step))).alias(
                "_gy"
            ),
        )
        .select(*cols, "_geom", _cell_key(gx, gy).alias("_cell"), rect.alias("_rect"))
        .where(stp.ST_Intersects(F.col("_geom"), F.col("_rect")))
        # A piece that meets the cell covers it iff its boundary misses the cell. Both
        # tests take JTS's rectangle fast path; ST_Covers would run a full relate.
        .withColumn("_covers", ~stp.ST_Intersects(stf.ST_Boundary(F.col("_geom")), F.col("_rect")))
        .select(
            "_cell",
            *cols,
            "_covers",
            # The piece's part of the cell: the cell itself where the piece covers it.
            F.when(F.col("_covers"), F.col("_rect"))
            .otherwise(stf.ST_Intersection(F.col("_geom"), F.col("_rect")))
            .alias("_chip"),
        )
    )
    key = F.struct(*cols)
    per_cell = pairs.groupBy("_cell").agg(
        F.count_distinct(key).alias("_n"),
        F.max(F.when(F.col("_covers"), key)).alias("_cover"),
        # A region may leave several chips in a cell (one per piece): the point is in the
        # region iff it is in one of them, so no union is needed; sorted by region.
        F.sort_array(F.collect_list(F.struct(*cols, F.col("_chip").alias("_geom")))).alias("_all"),
    )
    core = F.when((F.col("_n") == 1) & F.col("_cover").isNotNull(), F.col("_cover"))
    # A local checkpoint (not cache): materialised once, released when no longer referenced.
    cells = per_cell.select(
        "_cell", core.alias("_core"), F.when(core.isNull(), F.col("_all")).alias("_chips")
    ).localCheckpoint(eager=True)
    stats = cells.agg(F.count(F.lit(1)).alias("n"), F.count("_chips").alias("edge")).first()
    n_pieces = box["n"]
    pieces.unpersist()
    assert stats is not None
    return RegionIndex(
        cells=cells,
        region_cols=tuple(cols),
        cell_size=d,
        bounds=bounds,
        n_cells=int(stats["n"]),
        n_edge_cells=int(stats["edge"]),
        n_pieces=int(n_pieces),
    )


#: Points at and above which :func:`region_lookup` builds a :class:`RegionIndex`; below
#: it, Sedona's plain broadcast join of the pieces is cheaper than building the index.
#: ``bench/spatial.py`` (``region_join_crossover_<N>``, Brazil's 27 full-resolution states,
#: a machine at load ~12 on 2 cores): index 16.2 s vs plain join 31.6 s at 1M points,
#: 32.4 s vs 47.1 s at 2M; linear in N between the two paths that puts the crossover at
#: 0.3M-1.05M points. Kept at the top of that range until a quiet-machine sweep
#: (``--crossover 250000,500000,1000000``) narrows it.
INDEX_MIN_POINTS = 1_000_000


@dataclass(frozen=True)
class RegionPieces:
    """Subdivided regions (``region_cols`` + ``_region_geom``), materialised once, for a
    plain Sedona spatial join; ``broadcast``: small enough to broadcast."""

    pieces: DataFrame
    region_cols: tuple[str, ...]
    broadcast: bool


def region_lookup(
    regions: DataFrame,
    *,
    region_geom_col: str,
    region_cols: Sequence[str],
    broadcast_max_rows: int = 200_000,
    max_vertices: int = 64,
    n_points: int | None = None,
    index_min_points: int = INDEX_MIN_POINTS,
) -> RegionIndex | RegionPieces:
    """What :func:`assign_region` should join with, built once per run and reused.

    The regions are subdivided once. More than ``broadcast_max_rows`` pieces: Sedona's
    partitioned join. Otherwise a :class:`RegionIndex` when the joins of the run will see
    at least ``index_min_points`` points (``n_points``; None = unknown, index), else the
    pieces for Sedona's broadcast join: below that size the index build costs more than
    it saves.
    """
    cols = list(region_cols)
    pieces = subdivide_regions(
        regions, region_geom_col=region_geom_col, region_cols=cols, max_vertices=max_vertices
    ).localCheckpoint(eager=True)
    n_pieces = pieces.count()
    if n_pieces <= broadcast_max_rows and (n_points is None or n_points >= index_min_points):
        return build_region_index(
            regions,
            region_geom_col=region_geom_col,
            region_cols=cols,
            max_vertices=max_vertices,
            pieces=pieces,
        )
    return RegionPieces(
        pieces=pieces.withColumnRenamed(region_geom_col, "_region_geom"),
        region_cols=tuple(cols),
        broadcast=n_pieces <= broadcast_max_rows,
    )


def _assign_by_index(
    df: DataFrame,
    index: RegionIndex,
    *,
    point_col: str,
    region_types: Sequence[DataType],
    xy_cols: tuple[str, str] | None,
) -> DataFrame:
    """Region of each point via the grid index: one broadcast hash join, one row per row."""
    cols = list(index.region_cols)
    pt = F.col(point_col)
    x, y = (F.col(xy_cols[0]), F.col(xy_cols[1])) if xy_cols else (stf.ST_X(pt), stf.ST_Y(pt))
    x0, y0, x1, y1 = index.bounds
    inside = (
        pt.isNotNull()
        & x.isNotNull()
        & y.isNotNull()
        & x.between(F.lit(x0), F.lit(x1))
        & y.between(F.lit(y0), F.lit(y1))
    )
    step = F.lit(index.cell_size)
    # Points outside the regions' bounding box (and NaN) get no key: no region, no lookup.
    keyed = df.withColumn("_pcell", F.when(inside, _cell_key(F.floor(x / step), F.floor(y / step))))
    joined = keyed.join(F.broadcast(index.cells), F.col("_pcell") == F.col("_cell"), "left")
    hit_type = StructType([StructField(c, t) for c, t in zip(cols, region_types, strict=True)])
    # First chip (region order) that the point intersects; once found, CASE WHEN skips the
    # remaining tests. Core cells never reach this: their region is known without a test.
    # "Intersects" as distance 0: JTS locates the point in the polygon (or measures it
    # to a line chip) directly, where ST_Intersects runs a full relate per point; both
    # count the border (the locator is exact, as is the distance to an axis-parallel
    # line chip, the only lines a clip leaves).
    first_hit = F.aggregate(
        "_chips",
        F.lit(None).cast(hit_type),
        lambda acc, chip: F.when(acc.isNotNull(), acc).when(
            stf.ST_Distance(chip["_geom"], pt) == F.lit(0.0),
            F.struct(*[chip[c].alias(c) for c in cols]),
        ),
    )
    hit = F.when(F.col("_core").isNotNull(), F.col("_core")).otherwise(first_hit)
    return joined.withColumn("_hit", hit).select(
        *df.columns, *[F.col("_hit")[c].alias(c) for c in cols]
    )


def _assign_by_join(
    df: DataFrame,
    lookup: RegionPieces,
    *,
    point_col: str,
    region_types: Sequence[DataType],
    id_cols: Sequence[str],
) -> DataFrame:
    """Sedona's spatial join of the points with the pieces (broadcast index join when
    ``lookup.broadcast``, else partitioned); one row per input row: the first region by
    ``row_number``, a left-anti join for the rest."""
    region_cols = list(lookup.region_cols)
    side = F.broadcast(lookup.pieces) if lookup.broadcast else lookup.pieces
    matched = (
        df.where(F.col(point_col).isNotNull())
        .join(side, stp.ST_Intersects(F.col("_region_geom"), F.col(point_col)), "inner")
        .drop("_region_geom")
    )
    w = Window.partitionBy(*id_cols).orderBy(*[F.col(c) for c in region_cols])
    first = matched.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
    # Left-anti + union keeps unmatched points (and null geometries) with null regions.
    unmatched = df.join(first.select(*id_cols), list(id_cols), "left_anti")
    for c, t in zip(region_cols, region_types, strict=True):
        unmatched = unmatched.withColumn(c, F.lit(None).cast(t))
    return first.unionByName(unmatched)


def assign_region(
    regions: DataFrame | RegionIndex | RegionPieces,
    *,
    point_col: str,
    region_geom_col: str,
    region_cols: Sequence[str],
    id_cols: Sequence[str],
    broadcast_max_rows: int = 200_000,
    max_vertices: int = 64,
    xy_cols: tuple[str, str] | None = None,
) -> Transform:
    """Attach the region containing each point; points in no region keep null columns.

    A point's region is the region whose polygon it intersects (``ST_Intersects``: the
    border counts); on a shared border or where regions overlap, the one with the smallest
    region columns (in order) wins, so every input row appears exactly once.

    With a :class:`RegionIndex` each point's grid cell is looked up with one broadcast
    hash join; in a core cell the region is known, in an edge cell the point is tested
    against the cell's few small chips. No shuffle, no second pass: the stream keeps its
    partitioning and row order and gets exactly one output row per input row. With
    :class:`RegionPieces` (few points, or too many pieces to broadcast) Sedona's spatial
    join of the pieces is used, one row per point by ``row_number`` and a left-anti join
    for the rest. A plain frame of regions is looked up here with :func:`region_lookup`
    (input size unknown: the index when the pieces can be broadcast).

    Args:
        regions: Region polygons with ``region_geom_col`` and ``region_cols``, or a lookup
            built once with :func:`region_lookup` (reused across joins).
        point_col: Point geometry column of the input (same CRS as the regions).
        region_geom_col: Polygon column of ``regions``.
        region_cols: Region attributes to attach (e.g. ``uf``, ``region_name``).
        id_cols: Columns that identify an input row (the join path keeps one match per
            row by them).
        broadcast_max_rows: Broadcast threshold in subdivided pieces.
        max_vertices: Subdivision size.
        xy_cols: The point's raw x/y columns (e.g. ``("lon", "lat")``) when the caller has
            them; the cell key is then computed without decoding every point.
    """

    def apply(df: DataFrame) -> DataFrame:
        lookup = (
            regions
            if isinstance(regions, RegionIndex | RegionPieces)
            else region_lookup(
                regions,
                region_geom_col=region_geom_col,
                region_cols=region_cols,
                broadcast_max_rows=broadcast_max_rows,
                max_vertices=max_vertices,
            )
        )
        if isinstance(lookup, RegionIndex):
            core = lookup.cells.schema["_core"].dataType
            assert isinstance(core, StructType)
            types = [core[c].dataType for c in lookup.region_cols]
            return _assign_by_index(
                df, lookup, point_col=point_col, region_types=types, xy_cols=xy_cols
            )
        schema = lookup.pieces.schema
        return _assign_by_join(
            df,
            lookup,
            point_col=point_col,
            region_types=[schema[c].dataType for c in lookup.region_cols],
            id_cols=id_cols,
        )

    return apply


def _rank_nearest(pairs: DataFrame, id_cols: Sequence[str], k: int) -> DataFrame:
    """Per point, the k nearest (km, id) structs, nearest first, from candidate pairs."""
    return (
        pairs.withColumn("_km", stf.ST_DistanceSpheroid(F.col("_pt"), F.col("_cand_geom")) / 1000.0)
        .groupBy(*id_cols)
        .agg(
            F.first(stf.ST_Y(F.col("_pt"))).alias("_lat"),
            F.slice(F.array_sort(F.collect_list(F.struct("_km", "_cand_id"))), 1, k).alias("_nn"),
        )
    )


def nearest(
    candidates: DataFrame,
    *,
    point_col: str,
    candidate_geom_col: str,
    candidate_id_col: str,
    id_cols: Sequence[str],
    k: int = 3,
    out_prefix: str = "nearest",
    search_radius_deg: float = 0.5,
    cross_join_max: int = 256,
) -> Transform:
    """k nearest candidates per point with spheroidal distance in km (exact).

    Few candidates (warehouses) are simply cross-joined from a broadcast. Many candidates
    (municipalities) are first matched within ``search_radius_deg`` through Sedona's
    broadcast index join; a point keeps that answer only when its k-th distance is inside
    the ground radius the degree window is guaranteed to cover at that latitude, and every
    other point (sparse areas, offshore) goes to Sedona's exact ``ST_KNN`` join.

    Output: the input rows plus ``<prefix>_ids`` (array, nearest first), ``<prefix>_km``
    (array of distances) and ``<prefix>_id`` / ``<prefix>_km1`` for the first. Both sides
    must be WGS84 points.
    """

    def apply(df: DataFrame) -> DataFrame:
        cands = candidates.select(
            F.col(candidate_id_col).alias("_cand_id"), F.col(candidate_geom_col).alias("_cand_geom")
        )
        pts = df.where(F.col(point_col).isNotNull()).select(*id_cols, F.col(point_col).alias("_pt"))
        if cands.count() <= cross_join_max:
            ranked = _rank_nearest(pts.crossJoin(F.broadcast(cands)), id_cols, k)
        else:
            window = stp.ST_DWithin(F.col("_cand_geom"), F.col("_pt"), F.lit(search_radius_deg))
            near = _rank_nearest(pts.join(F.broadcast(cands), window), id_cols, k)
            # Smallest ground distance the degree window spans (1 deg of longitude shrinks
            # with cos(latitude)); 1% margin for spheroid vs sphere.
            safe_km = (
                0.99
                * search_radius_deg
                * 110.57
                * F.cos(F.radians(F.least(F.abs("_lat") + search_radius_deg, F.lit(89.0))))
            )
            certain = (F.size("_nn") >= k) & (F.col("_nn")[k - 1]["_km"] <= safe_km)
            near = near.where(certain)
            rest = pts.join(near.select(*id_cols), list(id_cols), "left_anti")
            knn = rest.alias("p").join(
                F.broadcast(cands).alias("c"),
                F.expr(f"ST_KNN(p._pt, c._cand_geom, {int(k)}, true)"),
            )
            ranked = near.unionByName(_rank_nearest(knn, id_cols, k))
        ranked = ranked.select(
            *id_cols,
            F.col("_nn._cand_id").alias(f"{out_prefix}_ids"),
            F.col("_nn._km").alias(f"{out_prefix}_km"),
        ).withColumns(
            {
                f"{out_prefix}_id": F.col(f"{out_prefix}_ids")[0],
                f"{out_prefix}_km1": F.col(f"{out_prefix}_km")[0],
            }
        )
        return df.join(ranked, list(id_cols), "left")

    return apply


def h3_cell(geom_col: str, resolution: int) -> Column:
    """H3 cell of a WGS84 point as the usual 15-hex-digit string (``ST_H3CellIDs``)."""
    cell = stf.ST_H3CellIDs(F.col(geom_col), F.lit(resolution), F.lit(True))[0]
    return F.lower(F.hex(cell))


def with_grid(
    *, geom_col: str, resolutions: Sequence[int], geohash_precision: int = 6
) -> Transform:
    """Add ``h3_r<res>`` columns for each resolution and ``geohash``."""

    def apply(df: DataFrame) -> DataFrame:
        cols = {f"h3_r{r}": h3_cell(geom_col, r) for r in resolutions}
        cols["geohash"] = stf.ST_GeoHash(F.col(geom_col), F.lit(geohash_precision))
        return df.withColumns(cols)

    return apply


def with_distance_km(*, a_col: str, b_col: str, out_col: str) -> Transform:
    """Spheroidal (WGS84) distance in km between two WGS84 point columns."""

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumn(out_col, stf.ST_DistanceSpheroid(F.col(a_col), F.col(b_col)) / 1000.0)

    return apply


def in_any(
    areas: DataFrame, *, point_col: str, area_geom_col: str, id_cols: Sequence[str], out_col: str
) -> Transform:
    """Flag points that intersect at least one of ``areas`` (broadcast, one row per input row)."""

    def apply(df: DataFrame) -> DataFrame:
        hits = (
            df.where(F.col(point_col).isNotNull())
            .select(*id_cols, point_col)
            .join(
                F.broadcast(areas.select(F.col(area_geom_col).alias("_area"))),
                stp.ST_Intersects(F.col("_area"), F.col(point_col)),
            )
            .select(*id_cols)
            .distinct()
            .withColumn(out_col, F.lit(True))
        )
        return df.join(hits, list(id_cols), "left").withColumn(
            out_col, F.coalesce(F.col(out_col), F.lit(False))
        )

    return apply


def cell_daily_aggregates(*, cell_col: str, date_col: str, by: Sequence[str] = ()) -> Transform:
    """Per cell x day (x extra keys) demand aggregates from order-line rows.

    Expects ``order_id``, ``customer_id``, ``quantity``, ``unit_price`` and
    ``delivery_km`` columns.
    """

    def apply(df: DataFrame) -> DataFrame:
        return df.groupBy(cell_col, date_col, *by).agg(
            F.countDistinct("order_id").alias("orders"),
            F.sum("quantity").cast("long").alias("units"),
            F.round(F.sum(F.col("quantity") * F.col("unit_price")), 2).alias("gmv"),
            F.countDistinct("customer_id").alias("customers"),
            F.avg("delivery_km").alias("mean_delivery_km"),
        )

    return apply
