"""Point and polygon features on Sedona: CRS transform, clipping, region joins, nearest
warehouse, H3/geohash grid and per-cell aggregates.

Every function is a pure ``DataFrame -> DataFrame`` transform with keyword-only column
names; geometry is built and compared with Sedona's function modules, never by hand.
Distances and areas are computed in the metric CRS or on the spheroid, never in degrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf
from sedona.spark.sql import st_predicates as stp

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


def assign_region(
    regions: DataFrame,
    *,
    point_col: str,
    region_geom_col: str,
    region_cols: Sequence[str],
    id_cols: Sequence[str],
    broadcast_max_rows: int = 100_000,
    max_vertices: int = 64,
) -> Transform:
    """Attach the region containing each point; points in no region keep null columns.

    Regions are subdivided first; the small side is broadcast (Sedona's broadcast index
    join) when it has at most ``broadcast_max_rows`` pieces, otherwise Sedona plans its
    partitioned spatial join. A point on a shared border can touch two regions; the one
    with the smallest first region column wins, so every input row appears exactly once.

    Args:
        regions: Region polygons with ``region_geom_col`` and ``region_cols``.
        point_col: Point geometry column of the input (same CRS as the regions).
        region_geom_col: Polygon column of ``regions``.
        region_cols: Region attributes to attach (e.g. ``uf``, ``region_name``).
        id_cols: Columns that identify an input row (to keep one match per row).
        broadcast_max_rows: Broadcast threshold in subdivided pieces.
        max_vertices: Subdivision size.
    """

    def apply(df: DataFrame) -> DataFrame:
        pieces = subdivide(geom_col=region_geom_col, max_vertices=max_vertices)(
            regions.select(*region_cols, F.col(region_geom_col))
        ).withColumnRenamed(region_geom_col, "_region_geom")
        n_pieces = pieces.count()
        right = F.broadcast(pieces) if n_pieces <= broadcast_max_rows else pieces
        matched = (
            df.where(F.col(point_col).isNotNull())
            .join(right, stp.ST_Intersects(F.col("_region_geom"), F.col(point_col)), "inner")
            .drop("_region_geom")
        )
        w = Window.partitionBy(*id_cols).orderBy(*[F.col(c) for c in region_cols])
        first = matched.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
        # Left-anti + union keeps unmatched points (and null geometries) with null regions.
        unmatched = df.join(first.select(*id_cols), list(id_cols), "left_anti")
        for c in region_cols:
            unmatched = unmatched.withColumn(c, F.lit(None).cast(regions.schema[c].dataType))
        return first.unionByName(unmatched)

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
