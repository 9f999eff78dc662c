"""Shared fixtures: one local Spark session (Sedona + Delta) for the whole test run."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3_emulator import S3Emulator, s3_emulator
from shikong.config import AppConfig, Paths, load_config
from shikong.secrets import DEVELOPMENT_KEY

# Every run of the tests (in process, and the command lines they start) pseudonymises with
# the public development key, whatever the profile; tests of a missing key remove it.
os.environ["SHIKONG_PSEUDONYM_KEY"] = DEVELOPMENT_KEY.decode()

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

TEST_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "3g",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # The driver's servers (RPC, block manager) on loopback only.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # Delta's MERGE defaults to 50+ shuffle partitions; tiny test data wants few.
    "spark.databricks.delta.merge.repartitionBeforeWrite.enabled": "false",
}


#: One run id for the pipeline fixtures' stages, as ``shikong run`` gives all its stages.
FIXTURE_RUN_ID = "20240101T000000-fixture"


@pytest.fixture(scope="session")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    """The embedded default config, adjusted for tests (local[2], few partitions).

    The checkpoint directory is fixed in a temporary folder: the one session is built with
    it (``spark.checkpoint.dir``, static) and every test config derived from this one keeps
    it, whatever its lakehouse.
    """
    cfg = load_config(REPO_ROOT / "conf" / "local.yaml", env={})
    conf = {**TEST_SPARK_CONF, "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse"))}
    spark_settings = dataclasses.replace(
        cfg.spark, master="local[2]", app_name="shikong-tests", conf=conf
    )
    spatial = dataclasses.replace(
        cfg.spatial, checkpoint_dir=str(tmp_path_factory.mktemp("spark-checkpoints"))
    )
    return dataclasses.replace(cfg, spark=spark_settings, spatial=spatial)


@pytest.fixture(scope="session")
def spark(base_config: AppConfig) -> Iterator[object]:
    """One SparkSession with Sedona and Delta for the whole run."""
    from shikong.session import build_session

    session = build_session(base_config)
    yield session
    session.stop()


@pytest.fixture()
def cfg(base_config: AppConfig, tmp_path: Path) -> AppConfig:
    """Config whose lakehouse lives under this test's tmp_path."""
    return dataclasses.replace(base_config, paths=Paths(lakehouse=str(tmp_path / "lakehouse")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data beside the project; tests needing it skip if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found")
    return SHARED_DATA


@dataclasses.dataclass(frozen=True)
class SmallWorld:
    """The generated small world, ingested once for every test that reads bronze."""

    cfg: AppConfig
    reports: dict


@pytest.fixture(scope="session")
def small_world(
    spark, base_config: AppConfig, tmp_path_factory: pytest.TempPathFactory
) -> SmallWorld:
    """Generate the small demo world (seeded) and ingest it into a session lakehouse."""
    from shikong.stages.context import StageContext
    from shikong.stages.generate import run as generate
    from shikong.stages.ingest import ingest_landing

    lakehouse = tmp_path_factory.mktemp("small_world") / "lakehouse"
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(lakehouse)))
    generate(cfg, scale="small", seed=7)
    reports = {r.source: r for r in ingest_landing(StageContext.create(spark, cfg))}
    return SmallWorld(cfg, reports)


@pytest.fixture(scope="session")
def small_pipeline(spark, small_world: SmallWorld) -> SmallWorld:
    """Every Spark job after ingest, run once on the small world with test-sized settings
    (through the runner, so the run log has each stage's status and timing)."""
    from shikong.stages import registry
    from shikong.stages.context import StageContext
    from shikong.stages.runner import run_stage

    cfg = dataclasses.replace(
        small_world.cfg,
        timeseries=dataclasses.replace(small_world.cfg.timeseries, max_series=40, backtest_folds=2),
        decisions=dataclasses.replace(small_world.cfg.decisions, route_days=2),
    )
    ctx = StageContext.create(spark, cfg, run_id=FIXTURE_RUN_ID)
    results = {
        name: run_stage(ctx, registry.get(name))
        for name in ("spatial", "series", "forecast", "policy", "routes")
    }
    return SmallWorld(cfg, {**small_world.reports, "pipeline": results})


@pytest.fixture(scope="session")
def ml(spark, small_pipeline: SmallWorld) -> dict:
    """The deep-model stages run once on the small pipeline (shards, models, scores, the
    fusion-driven policy, evaluation)."""
    from shikong.stages import registry
    from shikong.stages.context import StageContext
    from shikong.stages.runner import run_stage

    base = small_pipeline.cfg
    models = dataclasses.replace(
        base.models,
        backend="torch_distributor",
        num_processes=2,
        num_shards=2,
        val_days=21,
        test_days=21,
        demand=dataclasses.replace(base.models.demand, max_series=60, stride=3, epochs=8),
        recommender=dataclasses.replace(base.models.recommender, history_days=150, epochs=6),
    )
    cfg = dataclasses.replace(base, models=models)
    ctx = StageContext.create(spark, cfg, run_id=FIXTURE_RUN_ID)
    meta, trained, first, policies, table = (
        run_stage(ctx, registry.get(name))
        for name in ("training_data", "train", "infer", "policy_fusion", "evaluate")
    )
    return {
        "cfg": cfg,
        "meta": meta,
        "trained": trained,
        "infer": first,
        "policies": policies,
        "eval": table,
    }


@pytest.fixture(scope="session")
def report(spark, ml: dict) -> dict:
    """The report stage run once on the small world's full lakehouse (after the models)."""
    from shikong.stages import registry
    from shikong.stages.context import StageContext
    from shikong.stages.runner import run_stage

    ctx = StageContext.create(spark, ml["cfg"], run_id=FIXTURE_RUN_ID)
    return {"cfg": ml["cfg"], "result": run_stage(ctx, registry.get("report")), "ctx": ctx}


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Emulator]:
    """An S3 emulator on 127.0.0.1 with an empty bucket, and the environment pointing at it
    (``AWS_ENDPOINT_URL``, fake credentials, region), as a deployment would set it."""
    with s3_emulator() as emulator:
        for name, value in emulator.env.items():
            monkeypatch.setenv(name, value)
        yield emulator


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the Horovod tests run (they skip without a Horovod build)."""
    from shikong.training.launch import horovod_unavailable_reason

    # Checked in a child process: horovod.torch must not be loaded into this one (see
    # horovod_unavailable_reason: OR-Tools, imported later by the routing tests, segfaults).
    reason = horovod_unavailable_reason()
    if reason is not None:
        return (
            f"horovod: NOT installed ({reason}) — Horovod tests skipped "
            "(run scripts/install_horovod.sh)"
        )
    from importlib.metadata import version

    return f"horovod: installed {version('horovod')} — Horovod tests run"


# --- two workers (make test: pytest -n 2) ------------------------------------------------------
#: Session fixtures that run pipelines.
PIPELINE_FIXTURES = frozenset({"small_world", "small_pipeline", "ml", "report"})
#: The test files using them: under ``make test`` (two xdist workers) these run on one
#: worker, so the fixtures are built once; every other file runs whole on one worker (its
#: module fixtures, such as a cluster or a reference run, built once). Checked at
#: collection: a file using a pipeline fixture must be listed.
PIPELINE_FIXTURE_FILES = frozenset(
    {
        "tests/test_forget.py",
        "tests/test_ingest_generated.py",
        "tests/test_ml_pipeline.py",
        "tests/test_notebooks.py",
        "tests/test_pipeline.py",
        "tests/test_privacy_dp.py",
        "tests/test_report.py",
        "tests/test_report_browser.py",
    }
)


#: Work units that take the most minutes, in that order (measured: see the stop notes).
LONGEST_FIRST = {
    scope: rank
    for rank, scope in enumerate(
        (
            "tests/test_cluster.py",
            "pipeline-fixtures",
            "tests/test_faults.py",
            "tests/test_olist_pipeline.py",
            "tests/test_streaming.py",
        )
    )
}


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unlisted = sorted(
        {
            _test_file(item.nodeid)
            for item in items
            if PIPELINE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            and _test_file(item.nodeid) not in PIPELINE_FIXTURE_FILES
        }
    )
    if unlisted:
        raise pytest.UsageError(
            f"{', '.join(unlisted)} use(s) a pipeline fixture: add it to "
            "PIPELINE_FIXTURE_FILES in tests/conftest.py"
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole files to a worker, the pipeline-fixture files together. (xdist's own
    ``--dist loadgroup`` reads a node id attribute pytest 9 no longer has.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = _test_file(nodeid)
            return "pipeline-fixtures" if path in PIPELINE_FIXTURE_FILES else path

        def _assign_work_unit(self, node: Any) -> None:
            # The longest units first (xdist orders by test count, which would leave the
            # few-test, many-minute files such as the cluster's for the end).
            first = min(self.workqueue, key=lambda s: LONGEST_FIRST.get(s, len(LONGEST_FIRST)))
            self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

    return FileGroups(config, log)


# --- where CI's time goes ---------------------------------------------------------------------
# pytest's --durations table is printed at the end only, so a run stopped by CI's time limit
# shows none of it; each test file's wall time (module fixtures included) is printed beside
# its progress line instead.
_FILE_STARTED: dict[str, float] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    import time

    _FILE_STARTED.setdefault(item.nodeid.split("::", 1)[0], time.monotonic())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    import time

    yield
    path = item.nodeid.split("::", 1)[0]
    if nextitem is None or nextitem.nodeid.split("::", 1)[0] != path:
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and path in _FILE_STARTED:
            reporter.write(f" {time.monotonic() - _FILE_STARTED[path]:.0f}s")
