"""Spatial clustering: Sedona DBSCAN, Spark ML k-means chosen by silhouette, Ward profiles.

* :func:`dbscan_clusters` wraps :func:`sedona.spark.stats.clustering.dbscan` (points in a
  metric CRS, ``eps`` in metres) and relabels its clusters deterministically.
* :func:`kmeans_by_silhouette` fits Spark ML ``KMeans`` on projected coordinates for each
  ``k`` in a range and keeps the best ``ClusteringEvaluator`` silhouette.
* :func:`hierarchical_region_profiles` is plain pandas/scikit-learn on a small matrix of
  per-region weekly demand-profile shares.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from shikong.frames import is_classic

logger = logging.getLogger(__name__)

NOISE = -1
_SEDONA_RESERVED = ("__id",)  # DBSCAN renames an input ``id`` to this while it runs


def _require_classic_session(df: DataFrame) -> None:
    # Sedona 1.8.0's Python dbscan calls its Scala object through the session's py4j
    # gateway (``_jvm``, ``_jdf``), which a Spark Connect client does not have: say so here
    # rather than fail inside Sedona with an attribute error.
    if not is_classic(df.sparkSession):
        raise ValueError(
            "dbscan_clusters needs a classic SparkSession: Sedona 1.8.0's DBSCAN calls the "
            "JVM through py4j, which Spark Connect does not offer"
        )


def _require_checkpoint_dir(df: DataFrame) -> None:
    # The transform only checks: where checkpoints go is storage, chosen by the caller
    # (the session is built with spark.checkpoint.dir from spatial.checkpoint_dir).
    spark = df.sparkSession
    if spark.conf.get("spark.checkpoint.dir", None):
        return
    if not spark.sparkContext.getCheckpointDir():
        raise ValueError(
            "dbscan_clusters needs a Spark checkpoint directory (shared storage on a "
            "cluster): build the session with spark.checkpoint.dir "
            "(shikong.session.use_checkpoint_dir sets one on a classic session)"
        )


def dbscan_clusters(
    df: DataFrame,
    *,
    geometry_col: str,
    eps_m: float,
    min_pts: int,
    cluster_col: str = "dbscan_cluster",
    is_core_col: str = "is_core",
) -> DataFrame:
    """DBSCAN with Sedona on geometries in a metric CRS.

    Semantics (Sedona 1.8.0, the same as scikit-learn's ``DBSCAN(eps, min_samples)``):

    * neighbours of a point are all points at ``ST_Distance <= eps_m``, the point itself
      included, so a point is core when that count is ``>= min_pts`` (``min_pts`` counts the
      point itself, like ``min_samples``);
    * clusters are the connected components of core points; a non-core point within
      ``eps_m`` of a core point is a border point of that cluster (if it touches several
      clusters it joins the one with the smallest internal component id, where scikit-learn
      takes the first cluster to reach it, so such rare ties may differ);
    * every other point is noise: ``cluster_col = -1`` and ``is_core_col = False``.

    Cluster ids are relabelled ``0..k-1`` by cluster size (largest first), then by the
    smallest x and then y of the members' envelopes, so labels do not depend on partitioning.

    Sedona checkpoints an intermediate DataFrame and GraphFrames' connected components need a
    checkpoint directory: the session's ``spark.checkpoint.dir`` (or, on a classic session,
    one set on its SparkContext), on a cluster on shared storage. Classic sessions only:
    Sedona's DBSCAN goes through py4j, which Spark Connect does not have.

    Rows must be unique (Sedona keys rows by the hash of their content). Runs Spark jobs
    when called (checkpoint and connected components); the relabelling is lazy.

    Args:
        df: Points (or other geometries) in a metric CRS.
        geometry_col: Geometry column.
        eps_m: Neighbourhood radius in metres (> 0).
        min_pts: Minimum neighbourhood size for a core point, self included (>= 1).
        cluster_col: Output cluster id column (int, noise = -1).
        is_core_col: Output core-point flag column (bool).

    Returns:
        The input columns plus ``is_core_col`` and ``cluster_col``. Row order is not kept.

    Raises:
        ValueError: On bad parameters, a missing geometry column, an output-name clash, a
            Spark Connect session or no checkpoint directory.
    """
    from sedona.spark.sql import st_functions as stf
    from sedona.spark.stats.clustering.dbscan import dbscan

    if not eps_m > 0:
        raise ValueError(f"eps_m must be > 0, got {eps_m}")
    if min_pts < 1:
        raise ValueError(f"min_pts must be >= 1, got {min_pts}")
    if geometry_col not in df.columns:
        raise ValueError(f"geometry column {geometry_col!r} not in {df.columns}")
    clashing = [c for c in (cluster_col, is_core_col, *_SEDONA_RESERVED) if c in df.columns]
    if clashing:
        raise ValueError(f"input already has column(s) {clashing}")

    _require_classic_session(df)
    _require_checkpoint_dir(df)
    raw_cluster = "__dbscan_component"
    logger.info("DBSCAN: eps=%.1f m, min_pts=%d", eps_m, min_pts)
    clustered = dbscan(
        df,
        float(eps_m),
        int(min_pts),
        geometry=geometry_col,
        include_outliers=True,
        is_core_column_name=is_core_col,
        cluster_column_name=raw_cluster,
    )

    members = clustered.filter(F.col(raw_cluster) != NOISE)
    order = (
        members.groupBy(raw_cluster)
        .agg(
            F.count(F.lit(1)).alias("__n"),
            F.min(stf.ST_XMin(geometry_col)).alias("__xmin"),
            F.min(stf.ST_YMin(geometry_col)).alias("__ymin"),
        )
        .withColumn(
            "__label",
            (
                F.row_number().over(
                    Window.orderBy(F.col("__n").desc(), "__xmin", "__ymin", F.col(raw_cluster))
                )
                - 1
            ).cast("int"),
        )
        .select(raw_cluster, "__label")
    )
    labelled = clustered.join(F.broadcast(order), on=raw_cluster, how="left")
    return labelled.select(
        *[F.col(c) for c in df.columns],
        F.col(is_core_col).cast("boolean").alias(is_core_col),
        F.coalesce(F.col("__label"), F.lit(NOISE)).cast("int").alias(cluster_col),
    )


def kmeans_by_silhouette(
    df: DataFrame,
    *,
    x_col: str,
    y_col: str,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 42,
    cluster_col: str = "kmeans_cluster",
    sample: int | None = None,
    max_iter: int = 50,
) -> tuple[DataFrame, int, dict[int, float]]:
    """Spark ML k-means on projected coordinates, ``k`` chosen by silhouette.

    Fits ``KMeans(k, seed)`` for every ``k`` in ``k_range`` (both ends inclusive, the upper
    end capped at ``n_rows - 1``) on the raw ``(x, y)`` -- already in metres, so no scaling --
    and scores each with ``ClusteringEvaluator`` (silhouette with Spark's default squared
    Euclidean distance, which is *not* scikit-learn's Euclidean silhouette). The highest
    score wins; ties go to the smaller ``k``.

    With ``sample`` and more rows than that, ``k`` is chosen on a seeded Bernoulli sample of
    about ``sample`` rows and the final model is refitted on all rows with that ``k``.
    Without it the chosen model is the one scored. Working tables are cached during the
    search and released afterwards.

    Args:
        df: Rows with projected coordinates (e.g. EPSG:5880 metres).
        x_col: Easting column.
        y_col: Northing column.
        k_range: ``(k_min, k_max)``, inclusive, ``k_min >= 2``.
        seed: KMeans seed (k-means|| initialisation) and sampling seed.
        cluster_col: Output cluster column (int, ``0..k-1`` as Spark assigns them).
        sample: Approximate number of rows used to choose ``k``; None uses all rows.
        max_iter: KMeans iteration cap.

    Returns:
        ``(df plus cluster_col, chosen k, {k: silhouette})``.

    Raises:
        ValueError: On a bad range, too few rows, or an output-name clash.
    """
    from pyspark.ml.clustering import KMeans, KMeansModel
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import VectorAssembler

    k_min, k_max = k_range
    if k_min < 2 or k_max < k_min:
        raise ValueError(f"k_range must satisfy 2 <= k_min <= k_max, got {k_range}")
    if cluster_col in df.columns:
        raise ValueError(f"input already has column {cluster_col!r}")
    if sample is not None and sample < 2:
        raise ValueError(f"sample must be >= 2, got {sample}")
    features = "__km_features"
    assembler = VectorAssembler(inputCols=[x_col, y_col], outputCol=features)

    def kmeans(k: int) -> KMeans:
        return KMeans(
            k=k, seed=seed, maxIter=max_iter, featuresCol=features, predictionCol=cluster_col
        )

    assembled = assembler.transform(df).persist(StorageLevel.MEMORY_AND_DISK)
    search = assembled
    try:
        n = assembled.count()
        if sample is not None and n > sample:
            search = assembled.sample(fraction=sample / n, seed=seed).persist(
                StorageLevel.MEMORY_AND_DISK
            )
            n_search = search.count()
            logger.info("k-means: choosing k on a sample of %d of %d rows", n_search, n)
        else:
            n_search = n
        k_max = min(k_max, n_search - 1)
        if k_max < k_min:
            raise ValueError(f"{n_search} rows are too few for k_range {k_range}")
        evaluator = ClusteringEvaluator(
            featuresCol=features, predictionCol=cluster_col, metricName="silhouette"
        )
        scores: dict[int, float] = {}
        models: dict[int, KMeansModel] = {}
        for k in range(k_min, k_max + 1):
            models[k] = kmeans(k).fit(search)
            scores[k] = float(evaluator.evaluate(models[k].transform(search)))
            logger.info("k-means k=%d silhouette=%.4f", k, scores[k])
        best_k = max(scores, key=lambda k: (scores[k], -k))
        model = models[best_k] if search is assembled else kmeans(best_k).fit(assembled)
    finally:
        if search is not assembled:
            search.unpersist()
        assembled.unpersist()
    logger.info("k-means: chose k=%d", best_k)
    return model.transform(assembler.transform(df)).drop(features), best_k, scores


def hierarchical_region_profiles(
    profile_pdf: pd.DataFrame,
    *,
    n_clusters: int,
    feature_cols: Sequence[str] | None = None,
    cluster_col: str = "cluster",
) -> pd.DataFrame:
    """Ward agglomerative clustering of regions by their weekly demand profile.

    Plain pandas/scikit-learn on a tiny matrix: one row per region, the profile shares as
    columns (e.g. the share of weekly orders per weekday, summing to 1 per row). By default
    every numeric column is a feature and the others (e.g. a region code) are carried
    along. Labels are scikit-learn's ``AgglomerativeClustering(n_clusters, linkage="ward")``
    labels, which are deterministic.

    Args:
        profile_pdf: Regions x profile columns.
        n_clusters: Number of clusters, ``1 <= n_clusters <= n_regions``.
        feature_cols: Feature columns; None means all numeric columns.
        cluster_col: Name of the added label column.

    Returns:
        A copy of ``profile_pdf`` (same index and columns) with ``cluster_col`` (int) added.

    Raises:
        ValueError: On missing/non-numeric features, a bad ``n_clusters`` or a name clash.
    """
    from sklearn.cluster import AgglomerativeClustering

    if cluster_col in profile_pdf.columns:
        raise ValueError(f"profile_pdf already has column {cluster_col!r}")
    cols = (
        list(feature_cols)
        if feature_cols is not None
        else list(profile_pdf.select_dtypes(include="number").columns)
    )
    if not cols:
        raise ValueError("profile_pdf has no numeric feature columns")
    matrix = profile_pdf[cols].apply(pd.to_numeric, errors="coerce")
    if matrix.isna().to_numpy().any():
        raise ValueError(f"feature columns {cols} must be numeric with no missing values")
    if not 1 <= n_clusters <= len(matrix):
        raise ValueError(f"n_clusters must be in [1, {len(matrix)}], got {n_clusters}")
    labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(
        matrix.to_numpy(dtype=float)
    )
    out = profile_pdf.copy()
    out[cluster_col] = labels.astype(int)
    logger.info(
        "Ward: %d regions into %d clusters on %d features (sizes %s)",
        len(out),
        n_clusters,
        len(cols),
        out[cluster_col].value_counts().sort_index().tolist(),
    )
    return out
