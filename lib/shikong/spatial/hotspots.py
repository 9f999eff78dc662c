"""Hot/cold spots (local Getis-Ord Gi*) and global Moran's I on Sedona's ``stats`` module.

Both work on a cross-section: one row per location (e.g. one H3 cell for one period) whose
geometry is a point (the cell centroid) in a *metric* CRS such as EPSG:5880, so the distance
band is in metres; :func:`getis_ord_gi_star` can also split by period (``partition_cols``).
Neighbours come from Sedona's binary distance band
(:func:`sedona.spark.stats.add_binary_distance_band_column`, ``distance <= band``), the
statistics from :func:`sedona.spark.stats.g_local` and :class:`sedona.spark.stats.Moran`.

Notes on Sedona 1.8.0 that shape this module:

* ``add_binary_distance_band_column`` identifies a row by the hash of its whole content, so
  rows must be unique (an H3 cell id column guarantees it); when called from Python with no
  ``saved_attributes`` the neighbour struct holds *only* the geometry, so the value column is
  always passed explicitly.
* ``g_local`` adds ``G, EG, VG, Z, P`` where ``P = 1 - Phi(|Z|)`` is ONE-sided; the two-sided
  p-value here is ``2 * P``. Its variance is the Getis & Ord (1992) one, which gives the
  1995 Gi* z-score for binary weights -- times the sign of the mean, because ``G`` divides by
  the sum of values. The values are therefore standardised to mean 1, sd 1 before Sedona
  sees them (the z-score is invariant to that). ``g_local`` runs one Spark job (the global
  sums) when called.
* Degenerate inputs (constant values, a band that makes every row a neighbour of every row)
  divide by zero. Spark 4 runs with ANSI mode on, where that is an error (DIVIDE_BY_ZERO in
  ``GetisOrd.gLocal``), so the statistic's plan is built with ANSI arithmetic off; such rows
  get null ``gi_z``/``gi_p`` and are ``not_significant``.
* ``Moran.get_global`` needs a column literally named ``weights`` whose neighbour structs
  carry the id and value columns, and returns only ``I``, ``z`` and ``p`` (no ``E[I]``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812

logger = logging.getLogger(__name__)

#: Hot/cold classes, strongest first: (name, FDR alpha, sign of z).
HOTSPOT_LEVELS: tuple[tuple[str, float, int], ...] = (
    ("hot_99", 0.01, 1),
    ("hot_95", 0.05, 1),
    ("hot_90", 0.10, 1),
    ("cold_99", 0.01, -1),
    ("cold_95", 0.05, -1),
    ("cold_90", 0.10, -1),
)
NOT_SIGNIFICANT = "not_significant"
HOTSPOT_CLASSES: tuple[str, ...] = tuple(name for name, _, _ in HOTSPOT_LEVELS) + (NOT_SIGNIFICANT,)

#: Columns this module adds to the input of :func:`getis_ord_gi_star`.
GI_OUTPUT_COLUMNS: tuple[str, ...] = (
    "gi_n_neighbors",
    "gi_z",
    "gi_p",
    "gi_p_fdr",
    "hotspot_class",
)

_WEIGHTS = "__gi_weights"
_X = "__gi_x"  # standardised value fed to Sedona
_SEDONA_GI_COLUMNS = ("G", "EG", "VG", "Z", "P")
_ANSI_CONF = "spark.sql.ansi.enabled"


@dataclass(frozen=True)
class MoransI:
    """Global Moran's I with its normal-approximation test.

    Attributes:
        i: Moran's I (binary distance-band weights, not row-standardised, no self-weight).
        expected_i: Its expectation under no autocorrelation, ``-1 / (n - 1)``.
        z: z-score under the normality assumption.
        p: Two-sided p-value of ``z``.
        n: Number of observations.
    """

    i: float
    expected_i: float
    z: float
    p: float
    n: int


#: Session settings the Gi* and Moran's I plans must be built under: Sedona's statistics
#: divide by zero for isolated or constant neighbourhoods, which ANSI mode turns into errors
#: (non-ANSI gives null, which the functions here map to a null z). Spark fixes an
#: expression's evaluation mode when the plan is analysed, i.e. at call time for the
#: DataFrame API, so the settings need to hold only while these functions are called; the
#: caller sets them (``shikong.session.sql_settings``), the transforms only check.
REQUIRED_SQL_SETTINGS = {_ANSI_CONF: "false"}


def _require_settings(spark: SparkSession) -> None:
    wrong = {
        k: v for k, v in REQUIRED_SQL_SETTINGS.items() if str(spark.conf.get(k, None)).lower() != v
    }
    if wrong:
        raise ValueError(
            f"build Gi*/Moran's I plans under the session settings {wrong} "
            "(with shikong.session.sql_settings(spark, hotspots.REQUIRED_SQL_SETTINGS))"
        )


def _check_columns(df: DataFrame, required: tuple[str, ...], reserved: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"missing input column(s) {missing}; have {df.columns}")
    clashing = [c for c in reserved if c in df.columns]
    if clashing:
        raise ValueError(f"input already has column(s) {clashing} that this transform adds")


def _check_band(distance_band_m: float) -> None:
    if not distance_band_m > 0:
        raise ValueError(f"distance_band_m must be > 0, got {distance_band_m}")


def add_bh_fdr(df: DataFrame, *, p_col: str, out_col: str) -> DataFrame:
    """Add Benjamini-Hochberg adjusted p-values, taken over all rows of ``df``.

    ``p_adj(i) = min(1, min_{j >= i} p(j) * m / j)`` with ``j`` the rank of the p-value in
    ascending order and ``m`` the number of non-null p-values; null p-values stay null and do
    not count in ``m``. Tied p-values get equal adjusted values (as ``statsmodels``'
    ``multipletests(method="fdr_bh")``).

    Computed in Spark with windows over the sorted p-values. The windows have no partition
    key, so Spark moves all rows to one partition for this step: fine for one cross-section
    (thousands to a few hundred thousand rows), which is what one family of tests is here.

    Args:
        df: Input rows.
        p_col: Column of p-values in [0, 1] (nulls allowed).
        out_col: Name of the added column.

    Returns:
        ``df`` plus ``out_col`` (double).
    """
    rank_col, raw_col = "__bh_rank", "__bh_raw"
    p = F.col(p_col)
    ranked = df.withColumn(rank_col, F.row_number().over(Window.orderBy(p.asc_nulls_last())))
    ranked = ranked.withColumn(raw_col, p * F.count(p).over(Window.partitionBy()) / F.col(rank_col))
    step_up = Window.orderBy(F.col(rank_col).desc()).rowsBetween(
        Window.unboundedPreceding, Window.currentRow
    )
    # ``least`` skips nulls, so keep null p-values null explicitly.
    adjusted = F.when(p.isNotNull(), F.least(F.min(raw_col).over(step_up), F.lit(1.0)))
    return ranked.withColumn(out_col, adjusted).drop(rank_col, raw_col)


def _hotspot_class(z: Column, p_fdr: Column) -> Column:
    rules = [
        ((p_fdr <= alpha) & ((z > 0) if sign > 0 else (z < 0)), name)
        for name, alpha, sign in HOTSPOT_LEVELS
    ]
    expr = F.when(*rules[0])
    for cond, name in rules[1:]:
        expr = expr.when(cond, name)
    return expr.otherwise(NOT_SIGNIFICANT)


def getis_ord_gi_star(
    df: DataFrame,
    *,
    geometry_col: str,
    value_col: str,
    distance_band_m: float,
    partition_cols: Sequence[str] = (),
) -> DataFrame:
    """Local Getis-Ord Gi* hot/cold spots over a binary distance band (self included).

    One row is one location of one cross-section (e.g. an H3 cell in one period) with its
    point geometry in a metric CRS. Neighbours of a row are all rows of the same
    cross-section whose geometry lies within ``distance_band_m`` (``<=``), the row itself
    included, each with weight 1; Sedona's ``g_local(..., star=True)`` then gives the Gi*
    z-score of Getis & Ord (1995)::

        z_i = (sum_j w_ij x_j - xbar * W_i) / (S * sqrt((n * W_i - W_i**2) / (n - 1)))

    with ``W_i = sum_j w_ij`` (j includes i), and ``n``, ``xbar`` and the population
    standard deviation ``S`` of ``value_col`` taken over the cross-section.

    Sedona's implementation divides by the mean (``G = sum w x / sum x``), so its ``Z`` has
    the sign of the mean and is undefined for a zero mean. This z-score is invariant to
    ``x -> a x + b`` (``a > 0``), so Sedona is fed ``(x - xbar) / S + 1`` instead: any sign
    of values (e.g. log excess demand) works and the result is the z above exactly.

    ``gi_p`` is the two-sided normal p-value, ``gi_p_fdr`` its Benjamini-Hochberg
    adjustment over the cross-section (see :func:`add_bh_fdr`), and ``hotspot_class`` is
    ``hot_99``/``hot_95``/``hot_90`` (``cold_*``) when ``gi_p_fdr <= 0.01/0.05/0.10`` and
    ``gi_z > 0`` (``< 0``), else ``not_significant``.

    With ``partition_cols`` (e.g. ``["period"]``) every distinct key is its own
    cross-section: its own neighbours, ``n``, mean, standard deviation and FDR family. The
    keys are collected and the sections computed one after the other and unioned, so this
    is meant for tens of periods, not thousands.

    Preconditions: rows are unique (Sedona keys rows by content) and ``value_col`` is
    non-null (fill empty cells with 0 first). Where the statistic is undefined (constant
    values, or a band covering the whole section) ``gi_z``/``gi_p``/``gi_p_fdr`` are null
    and the class is ``not_significant``.

    Runs two small Spark jobs per section when called (the section's mean/sd/count and
    Sedona's global sums) and reads ``df`` several times: cache it if it is expensive.

    Args:
        df: Locations of one cross-section, or of several with ``partition_cols``.
        geometry_col: Point geometry column in a metric CRS.
        value_col: Numeric value to test (e.g. orders per cell, or a log excess).
        distance_band_m: Neighbourhood radius in the geometry's units (metres).
        partition_cols: Columns whose distinct values are separate cross-sections.

    Returns:
        The input columns plus ``gi_n_neighbors`` (neighbours incl. self), ``gi_z``, ``gi_p``,
        ``gi_p_fdr`` and ``hotspot_class``.

    Raises:
        ValueError: On a missing input column, a clash with an output name, a non-positive
            band, or null values.
    """
    _check_band(distance_band_m)
    _check_columns(
        df,
        (geometry_col, value_col, *partition_cols),
        GI_OUTPUT_COLUMNS + _SEDONA_GI_COLUMNS + (_WEIGHTS, _X),
    )
    if not partition_cols:
        return _gi_star_section(
            df, geometry_col=geometry_col, value_col=value_col, distance_band_m=distance_band_m
        )
    keys = [
        tuple(row)
        for row in df.select(*partition_cols).distinct().orderBy(*partition_cols).collect()
    ]
    logger.info("Gi*: %d cross-sections by %s", len(keys), list(partition_cols))
    sections = []
    for key in keys:
        cond = reduce(
            lambda acc, c: acc & c,
            [F.col(c).eqNullSafe(F.lit(v)) for c, v in zip(partition_cols, key, strict=True)],
        )
        sections.append(
            _gi_star_section(
                df.where(cond),
                geometry_col=geometry_col,
                value_col=value_col,
                distance_band_m=distance_band_m,
                label=str(dict(zip(partition_cols, key, strict=True))),
            )
        )
    return reduce(DataFrame.unionByName, sections)


def _gi_star_section(
    df: DataFrame,
    *,
    geometry_col: str,
    value_col: str,
    distance_band_m: float,
    label: str = "all rows",
) -> DataFrame:
    """Gi* of one cross-section; see :func:`getis_ord_gi_star`."""
    from sedona.spark.stats import add_binary_distance_band_column

    surrogate = _standardised(df, value_col, f"{label}, {distance_band_m:.0f} m band")
    input_cols = df.columns
    weighted = add_binary_distance_band_column(
        df.withColumn(_X, surrogate),
        float(distance_band_m),
        include_zero_distance_neighbors=True,
        include_self=True,
        geometry=geometry_col,
        saved_attributes=[_X],
        result_name=_WEIGHTS,
    )
    return _gi_from_weights(weighted, input_cols)


def _gi_from_weights(weighted: DataFrame, input_cols: Sequence[str]) -> DataFrame:
    """Sedona's ``g_local`` (star) on a prepared weights column, then p, FDR and class."""
    from sedona.spark.stats import g_local

    _require_settings(weighted.sparkSession)
    gi = g_local(weighted, _X, weights=_WEIGHTS, star=True)
    z_ok = F.col("Z").isNotNull() & ~F.isnan("Z")
    gi = gi.select(
        *[F.col(c) for c in input_cols],
        # Sum of the binary weights = neighbours incl. self (also for an aggregated entry).
        F.aggregate(_WEIGHTS, F.lit(0.0), lambda acc, w: acc + w["value"])
        .cast("int")
        .alias("gi_n_neighbors"),
        F.when(z_ok, F.col("Z")).alias("gi_z"),
        F.when(z_ok, F.least(F.col("P") * 2.0, F.lit(1.0))).alias("gi_p"),
    )
    gi = add_bh_fdr(gi, p_col="gi_p", out_col="gi_p_fdr")
    return gi.withColumn("hotspot_class", _hotspot_class(F.col("gi_z"), F.col("gi_p_fdr")))


def _standardised(df: DataFrame, value_col: str, label: str) -> Column:
    """``(x - mean) / sd + 1`` (see :func:`getis_ord_gi_star`); constant 1 when undefined."""
    stats = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.count(value_col).alias("n_values"),
        F.avg(value_col).alias("mean"),
        F.stddev_pop(value_col).alias("sd"),
    ).first()
    assert stats is not None
    if stats["n_values"] != stats["n"]:
        raise ValueError(
            f"{value_col} has {stats['n'] - stats['n_values']} null value(s) in {label}"
        )
    n, mean, sd = int(stats["n"]), stats["mean"], stats["sd"]
    logger.info("Gi* %s: n=%d, %s mean=%s sd=%s", label, n, value_col, mean, sd)
    if n < 3 or not sd or not math.isfinite(sd):
        logger.warning("Gi* %s: n=%d, sd=%s: the statistic is undefined (null)", label, n, sd)
        return F.lit(1.0)
    return (F.col(value_col).cast("double") - F.lit(mean)) / F.lit(sd) + F.lit(1.0)


def getis_ord_gi_star_h3(
    df: DataFrame,
    *,
    cell_col: str,
    value_col: str,
    k_ring: int,
    period_cols: Sequence[str] = (),
    time_col: str | None = None,
    time_steps: int = 0,
) -> DataFrame:
    """Local Getis-Ord Gi* with H3 ring (and optionally space-time) neighbourhoods.

    The neighbours of a row are the rows within ``k_ring`` H3 rings of its cell (Sedona's
    ``ST_H3KRing``), itself included, with binary weights, that share its ``period_cols``
    key and, with ``time_col``, whose time index lies within ``time_steps`` of its own
    (``|t_j - t_i| <= time_steps``). ``time_steps = 0`` is one cross-section per time
    index; ``time_steps = 1`` is the space-time neighbourhood of emerging hot-spot analysis
    (the rings in the previous, the same and the next period), which pools a short event's
    signal over the periods it spans. The statistic is Sedona's ``g_local(star=True)`` on
    the standardised values, exactly as in :func:`getis_ord_gi_star`; mean, standard
    deviation, ``n`` and the FDR family are those of all rows together.

    Sedona's ``g_local`` reads a row's weights only through ``sum_j w_ij x_j`` and
    ``W_i = sum_j w_ij`` (its variance is the binary-weight one of Getis & Ord 1992), so the
    neighbourhood is handed over as one entry with ``value = W_i`` (the neighbour count)
    and neighbour value ``sum_j x_j / W_i``: the same G, E[G], V[G] and z as the list of
    ``W_i`` unit-weight entries, without materialising up to ``(2 * time_steps + 1) *
    (3 k^2 + 3 k + 1)`` structs per row. The sums are built by scattering: each row adds
    its value to the periods within ``time_steps`` of its own, then each (cell, period)
    sum to the cells of its ring (the ring relation is symmetric: H3 grid distance), two
    aggregations whose cost grows linearly with rows x neighbourhood size and needs no
    join per neighbour.

    Args:
        df: One row per (period key, time, cell); ``cell_col`` holds H3 ids as hex strings.
        cell_col: H3 cell column.
        value_col: Numeric, non-null value.
        k_ring: Rings of neighbours (1 = the 6 adjacent cells).
        period_cols: Columns that separate cross-sections (neighbours never cross them).
        time_col: Integer column of consecutive time indices (e.g. weeks since an epoch);
            required when ``time_steps > 0``, else rows of different times are separate
            cross-sections.
        time_steps: Time indices on each side that belong to the neighbourhood.

    Returns:
        The input columns plus ``gi_n_neighbors``, ``gi_z``, ``gi_p``, ``gi_p_fdr`` and
        ``hotspot_class``.

    Raises:
        ValueError: On ``k_ring < 1``, ``time_steps < 0``, ``time_steps > 0`` without
            ``time_col``, or a missing/clashing column.
    """
    from sedona.spark.sql import st_functions as stf

    if k_ring < 1:
        raise ValueError(f"k_ring must be >= 1, got {k_ring}")
    if time_steps < 0:
        raise ValueError(f"time_steps must be >= 0, got {time_steps}")
    if time_steps and time_col is None:
        raise ValueError("time_steps > 0 needs time_col")
    times = (time_col,) if time_col else ()
    _check_columns(
        df, (cell_col, value_col, *period_cols, *times), GI_OUTPUT_COLUMNS + (_WEIGHTS, _X)
    )
    input_cols = df.columns
    keys = [*period_cols, "__t", "__id"]
    keyed = df.withColumns(
        {
            _X: _standardised(df, value_col, f"{k_ring}-ring H3"),
            "__t": F.col(time_col).cast("long") if time_col else F.lit(0).cast("long"),
            "__id": F.conv(F.col(cell_col), 16, 10).cast("long"),
        }
    )
    # Time first: each row adds its value to the periods within time_steps of its own
    # (one row per (cell, period) reached, also periods where the cell has no row).
    in_time = keyed.select(*period_cols, "__t", "__id", F.col(_X).alias("__sx"))
    if time_steps:
        in_time = (
            in_time.withColumn(
                "__t", F.explode(F.sequence(F.col("__t") - time_steps, F.col("__t") + time_steps))
            )
            .groupBy(*keys)
            .agg(F.sum("__sx").alias("__sx"), F.count(F.lit(1)).alias("__nx"))
        )
    else:
        in_time = in_time.withColumn("__nx", F.lit(1).cast("long"))
    # Then space: each (cell, period) sum goes to every cell of its ring.
    ring = F.explode(stf.ST_H3KRing(F.col("__id"), F.lit(k_ring), F.lit(False)))
    sums = (
        in_time.select(*period_cols, "__t", ring.alias("__id"), "__sx", "__nx")
        .groupBy(*keys)
        .agg(F.sum("__sx").alias("__sx"), F.sum("__nx").cast("double").alias("__w"))
    )
    entry = F.struct(
        F.struct((F.col("__sx") / F.col("__w")).alias(_X)).alias("neighbor"),
        F.col("__w").alias("value"),
    )
    weighted = (
        keyed.join(sums, keys)
        .withColumn(_WEIGHTS, F.array(entry))
        .drop("__t", "__id", "__sx", "__w")
    )
    # g_local runs one job for its global sums and the caller another for the output;
    # materialise the weights once so that both do not redo the scatter aggregations. A
    # local checkpoint (unlike cache) is released once the result is no longer referenced.
    return _gi_from_weights(weighted.localCheckpoint(eager=True), input_cols)


def morans_i(
    df: DataFrame,
    *,
    geometry_col: str,
    value_col: str,
    distance_band_m: float,
    id_col: str | None = None,
) -> MoransI:
    """Global Moran's I over a binary distance band (no self-weight), via Sedona's ``Moran``.

    ``I = (n / S0) * sum_ij w_ij z_i z_j / sum_i z_i**2`` with ``z = x - xbar``, ``w_ij = 1``
    when rows ``i != j`` lie within ``distance_band_m`` of each other (else 0) and
    ``S0 = sum_ij w_ij``; the z-score uses the variance under the normality assumption
    (Cliff & Ord), ``E[I] = -1 / (n - 1)``.

    The neighbour table is cached for the duration of the call (Sedona's ``Moran`` runs four
    jobs over it) and released afterwards.

    Args:
        df: One cross-section of locations, unique rows, non-null values.
        geometry_col: Point geometry column in a metric CRS.
        value_col: Numeric value.
        distance_band_m: Neighbourhood radius in metres.
        id_col: Unique row id column; when None one is derived from the geometry and value
            (so ``(geometry, value)`` pairs must then be unique).

    Returns:
        The statistic, its expectation, z-score, two-sided p-value and ``n``.

    Raises:
        ValueError: On a missing column or a non-positive band.
    """
    from sedona.spark.stats import Moran, add_binary_distance_band_column

    _check_band(distance_band_m)
    _check_columns(df, (geometry_col, value_col) + ((id_col,) if id_col else ()), ())
    rid = id_col or "__moran_id"
    base = df.select(geometry_col, value_col, *([id_col] if id_col else []))
    if id_col is None:
        base = base.withColumn(rid, F.sha2(F.to_json(F.struct(geometry_col, value_col)), 256))
    weighted = add_binary_distance_band_column(
        base,
        float(distance_band_m),
        include_zero_distance_neighbors=True,
        include_self=False,
        geometry=geometry_col,
        saved_attributes=[rid, value_col],
        result_name="weights",  # Sedona's Moran reads this fixed name
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n = weighted.count()
        result = Moran.get_global(weighted, two_tailed=True, id_column=rid, value_column=value_col)
    finally:
        weighted.unpersist()
    out = MoransI(
        i=float(result.i),
        expected_i=-1.0 / (n - 1) if n > 1 else float("nan"),
        z=float(result.z_norm),
        p=float(result.p_norm),
        n=int(n),
    )
    logger.info("Moran's I of %s (band %.0f m): %s", value_col, distance_band_m, out)
    return out
