"""The session is configured through public Spark settings, so Spark Connect can take them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shikong.config import AppConfig, ConfigError
from shikong.frames import default_parallelism, is_classic
from shikong.io import fs
from shikong.session import spark_location, use_checkpoint_dir

# Also run inside the container image (make image-test).
pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    "location",
    [
        "./lakehouse/_checkpoints",
        "lakehouse",
        "/abs/lake/_checkpoints",
        "file:/x/y",
        "s3a://bucket/lake/_checkpoints",
        "dbfs:/lake",
        "C:/lake",
    ],
)
def test_spark_location_follows_the_io_rule(location: str) -> None:
    assert spark_location(location) == fs.spark_uri(location)


def test_the_session_is_built_with_checkpoints_log_level_and_master(
    spark, base_config: AppConfig
) -> None:
    assert is_classic(spark)
    # The SparkContext's directory, not the session conf: a job's main() run in-process
    # by an earlier test reuses this session through getOrCreate, which rewrites the conf
    # entry but cannot move the context's (static) checkpoint directory.
    checkpoint_dir = spark.sparkContext.getCheckpointDir()
    assert checkpoint_dir is not None
    assert checkpoint_dir.startswith(spark_location(base_config.checkpoint_location) + "/")
    assert spark.conf.get("spark.log.level") == base_config.spark.log_level.upper()
    assert spark.conf.get("spark.master") == "local[2]"


def test_checkpoint_location_defaults_under_the_lakehouse(base_config: AppConfig) -> None:
    import dataclasses

    from shikong.config import Paths

    cfg = dataclasses.replace(
        base_config,
        paths=Paths(lakehouse="s3a://b/lake/"),
        spatial=dataclasses.replace(base_config.spatial, checkpoint_dir=""),
    )
    assert cfg.checkpoint_location == "s3a://b/lake/_checkpoints"


def test_use_checkpoint_dir_keeps_the_sessions_static_setting(spark, tmp_path) -> None:
    current = spark.conf.get("spark.checkpoint.dir")
    assert use_checkpoint_dir(spark, str(tmp_path / "elsewhere")) == current


def test_use_checkpoint_dir_under_connect_needs_the_server_setting() -> None:
    # Not a classic session and no spark.checkpoint.dir: nothing public can set it.
    remote = SimpleNamespace(conf=SimpleNamespace(get=lambda key, default: default))
    with pytest.raises(ConfigError, match="spark.checkpoint.dir"):
        use_checkpoint_dir(remote, "/lake/_checkpoints")  # type: ignore[arg-type]


def test_default_parallelism_matches_the_spark_context(spark) -> None:
    # The tests' session sets spark.default.parallelism = 2, as local.yaml sets 4.
    assert default_parallelism(spark) == spark.sparkContext.defaultParallelism == 2


def test_default_parallelism_without_the_setting_probes_range(spark) -> None:
    # A session whose conf lacks spark.default.parallelism (a cluster profile): the slices of
    # spark.range, which Spark sizes by the SparkContext's default parallelism.
    unset = SimpleNamespace(
        conf=SimpleNamespace(get=lambda key, default: default), range=spark.range
    )
    assert default_parallelism(unset) == spark.sparkContext.defaultParallelism  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spark_home_jars", "expected"),
    [
        pytest.param(
            ["sedona-spark-shaded-4.0_2.13-1.8.0.jar", "geotools-wrapper-1.8.0-33.1.jar",
             "delta-spark_2.13-4.4.0.jar", "delta-storage-4.4.0.jar", "spark-core_2.13.jar"],
            [],
            id="baked-into-spark-home",
        ),
        pytest.param(["spark-core_2.13.jar", "delta-spark_2.13-4.4.0.jar"], None, id="partial"),
    ],
)
def test_absent_jars_dir_is_fine_when_spark_home_has_the_jars(
    tmp_path, monkeypatch, spark_home_jars, expected
) -> None:
    from shikong.session import resolve_jars

    (tmp_path / "jars").mkdir()
    for name in spark_home_jars:
        (tmp_path / "jars" / name).write_bytes(b"")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    missing_dir = str(tmp_path / "no-such-cache")
    if expected is None:
        with pytest.raises(ConfigError, match="spark.jars_dir: no jars in"):
            resolve_jars(missing_dir)
    else:
        assert resolve_jars(missing_dir) == expected
