"""Sedona DBSCAN, Spark k-means by silhouette and Ward profiles against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score

from shikong.spatial.clusters import (
    NOISE,
    dbscan_clusters,
    hierarchical_region_profiles,
    kmeans_by_silhouette,
)

X0, Y0 = 5_000_000.0, 7_400_000.0  # EPSG:5880 metres, near Sao Paulo
EPS, MIN_PTS = 300.0, 3


def test_dbscan_needs_a_checkpoint_dir() -> None:
    from types import SimpleNamespace

    from shikong.spatial.clusters import _require_checkpoint_dir

    # A session without spark.checkpoint.dir whose SparkContext has none either.
    no_dir = SimpleNamespace(
        sparkSession=SimpleNamespace(
            conf=SimpleNamespace(get=lambda key, default: default),
            sparkContext=SimpleNamespace(getCheckpointDir=lambda: None),
        )
    )
    with pytest.raises(ValueError, match="checkpoint directory"):
        _require_checkpoint_dir(no_dir)  # type: ignore[arg-type]


def test_dbscan_refuses_a_spark_connect_session() -> None:
    from types import SimpleNamespace

    from shikong.spatial.clusters import _require_classic_session

    # Not a pyspark.sql.SparkSession, as a Connect session is not.
    remote = SimpleNamespace(sparkSession=SimpleNamespace())
    with pytest.raises(ValueError, match="Spark Connect"):
        _require_classic_session(remote)  # type: ignore[arg-type]


def _dbscan_points() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    blob_a = rng.normal([0, 0], 100, size=(12, 2))
    blob_b = rng.normal([3000, 0], 100, size=(10, 2))
    # A chain 250 m apart: interior points have 3 neighbours (self included) -> core,
    # the two ends have 2 -> border points of the chain's cluster.
    chain = np.array([[x, 3000.0] for x in np.arange(0, 1500, 250.0)])
    # Exactly MIN_PTS mutually close points: a cluster only if a point counts itself.
    triple = np.array([[6000, 6000], [6100, 6000], [6050, 6080.0]])
    pair = np.array([[9000, 0], [9200, 0.0]])  # 2 < MIN_PTS -> noise
    noise = np.array([[-3000, 5000], [5000, -4000], [12000, 12000], [1500, 1500.0]])
    xy = np.vstack([blob_a, blob_b, chain, triple, pair, noise])
    return pd.DataFrame({"pid": np.arange(len(xy)), "x": X0 + xy[:, 0], "y": Y0 + xy[:, 1]})


@pytest.fixture(scope="module")
def dbscan_result(spark) -> pd.DataFrame:
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    pdf = _dbscan_points()
    sdf = spark.createDataFrame(pdf).withColumn(
        "geom", stf.ST_SetSRID(stc.ST_Point("x", "y"), 5880)
    )
    out = dbscan_clusters(sdf, geometry_col="geom", eps_m=EPS, min_pts=MIN_PTS)
    assert out.columns == ["pid", "x", "y", "geom", "is_core", "dbscan_cluster"]
    # The session fixture is built with spark.checkpoint.dir (tests/conftest.py).
    assert spark.conf.get("spark.checkpoint.dir", None)
    got = out.drop("geom").toPandas().sort_values("pid").reset_index(drop=True)
    assert len(got) == len(pdf)
    return got


def test_dbscan_matches_sklearn(dbscan_result: pd.DataFrame) -> None:
    xy = dbscan_result[["x", "y"]].to_numpy() - [X0, Y0]
    # sklearn: |{j : d(i, j) <= eps}| >= min_samples, the point itself counted.
    ref = DBSCAN(eps=EPS, min_samples=MIN_PTS).fit(xy)
    got = dbscan_result["dbscan_cluster"].to_numpy()
    assert adjusted_rand_score(ref.labels_, got) == 1.0
    assert set(np.where(got == NOISE)[0]) == set(np.where(ref.labels_ == -1)[0])
    assert set(np.where(dbscan_result["is_core"])[0]) == set(ref.core_sample_indices_)
    # Labels are 0..k-1 by decreasing size; here that is also sklearn's order.
    np.testing.assert_array_equal(got, ref.labels_)


def test_dbscan_min_pts_counts_the_point_itself(dbscan_result: pd.DataFrame) -> None:
    by_pid = dbscan_result.set_index("pid")
    triple, pair, chain_ends = [28, 29, 30], [31, 32], [22, 27]
    assert by_pid.loc[triple, "is_core"].all()
    assert by_pid.loc[triple, "dbscan_cluster"].nunique() == 1
    assert (by_pid.loc[triple, "dbscan_cluster"] != NOISE).all()
    assert (by_pid.loc[pair, "dbscan_cluster"] == NOISE).all()
    assert not by_pid.loc[pair, "is_core"].any()
    assert not by_pid.loc[chain_ends, "is_core"].any()  # border points
    assert (by_pid.loc[chain_ends, "dbscan_cluster"] == by_pid.loc[24, "dbscan_cluster"]).all()


def test_dbscan_rejects_bad_parameters(spark) -> None:
    sdf = spark.createDataFrame(_dbscan_points())
    with pytest.raises(ValueError, match="eps_m"):
        dbscan_clusters(sdf, geometry_col="x", eps_m=0, min_pts=3)
    with pytest.raises(ValueError, match="geometry column"):
        dbscan_clusters(sdf, geometry_col="geom", eps_m=10, min_pts=3)


def test_kmeans_by_silhouette_finds_true_k(spark) -> None:
    rng = np.random.default_rng(5)
    centres = np.array([[0, 0], [10_000, 0], [0, 10_000]])
    xy = np.vstack([rng.normal(c, 300, size=(15, 2)) for c in centres])
    truth = np.repeat(np.arange(len(centres)), 15)
    pdf = pd.DataFrame({"pid": np.arange(len(xy)), "x": X0 + xy[:, 0], "y": Y0 + xy[:, 1]})
    sdf = spark.createDataFrame(pdf)
    ref = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(pdf[["x", "y"]])

    out, k, scores = kmeans_by_silhouette(sdf, x_col="x", y_col="y", k_range=(2, 5), seed=42)
    assert k == 3
    assert sorted(scores) == [2, 3, 4, 5]
    assert max(scores, key=scores.__getitem__) == 3
    got = out.toPandas().sort_values("pid")
    assert list(got.columns) == ["pid", "x", "y", "kmeans_cluster"]
    assert adjusted_rand_score(ref, got["kmeans_cluster"]) == 1.0
    assert adjusted_rand_score(truth, got["kmeans_cluster"]) == 1.0

    # k chosen on a seeded sample, final model refitted on every row.
    out_s, k_s, scores_s = kmeans_by_silhouette(
        sdf, x_col="x", y_col="y", k_range=(2, 3), seed=42, sample=30, cluster_col="c"
    )
    assert k_s == 3 and sorted(scores_s) == [2, 3]
    got_s = out_s.toPandas().sort_values("pid")
    assert len(got_s) == len(pdf)
    assert adjusted_rand_score(ref, got_s["c"]) == 1.0


def test_hierarchical_region_profiles_equals_sklearn() -> None:
    rng = np.random.default_rng(3)
    archetypes = np.array(
        [
            [0.20, 0.18, 0.16, 0.14, 0.12, 0.10, 0.10],  # weekday-heavy
            [0.10, 0.10, 0.10, 0.10, 0.12, 0.24, 0.24],  # weekend-heavy
            [1 / 7] * 7,  # flat
        ]
    )
    truth = np.arange(12) % 3
    shares = np.clip(archetypes[truth] + rng.normal(0, 0.005, size=(12, 7)), 0, None)
    shares /= shares.sum(axis=1, keepdims=True)
    profile = pd.DataFrame(
        shares,
        index=pd.Index([f"region_{i:02d}" for i in range(12)], name="region"),
        columns=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    )

    out = hierarchical_region_profiles(profile, n_clusters=3)
    ref = AgglomerativeClustering(n_clusters=3, linkage="ward").fit_predict(profile.to_numpy())
    np.testing.assert_array_equal(out["cluster"].to_numpy(), ref)
    assert adjusted_rand_score(truth, out["cluster"]) == 1.0
    pd.testing.assert_frame_equal(out.drop(columns="cluster"), profile)
    assert "cluster" not in profile.columns  # input untouched
    # A region-code column (as after reset_index) is carried along, not used as a feature.
    flat = hierarchical_region_profiles(profile.reset_index(), n_clusters=3)
    np.testing.assert_array_equal(flat["cluster"].to_numpy(), ref)
    assert list(flat["region"]) == list(profile.index)
    with pytest.raises(ValueError, match="n_clusters"):
        hierarchical_region_profiles(profile, n_clusters=13)
    with pytest.raises(ValueError, match="missing"):
        hierarchical_region_profiles(profile.assign(mon=np.nan), n_clusters=2)
