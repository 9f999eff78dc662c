"""Fault injection: ``kill -9`` mid-write in each layer, a task failing once, two runs at once.

Every test runs the real ``shikong`` command (Spark, Sedona, Delta) in a subprocess of its
own process group on a tiny generated world, and compares every table it leaves with one
uninterrupted reference run through ``scripts/compare_tables.py`` (row counts and
order-independent content checksums, volatile columns such as run ids left out).

To keep the module within a few minutes on two cores, the reference pipeline runs once
(module fixture) and each fault starts from a copy of the reference lakehouse as it was
before the faulted stages: the outputs of those stages and of every later stage are
removed from the copy (for the bronze layer the copy holds the landing files only). The
faulted command (``shikong run --only <the layer's stages>``) is killed while it writes the
layer, then run again to completion, and every table of the lakehouse must equal the
reference's. ``ops.run_log`` is compared apart: it logs the killed run (a STARTED row that
never finished) next to the rerun's SUCCEEDED rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO_ROOT, TEST_SPARK_CONF
from shikong.io import lock
from shikong.io.catalog import TABLES, Catalog
from shikong.stages import registry

pytestmark = pytest.mark.slow

#: The tiny world: few customers and SKUs, three months (the stages' time is mostly
#: Spark's fixed cost per job; a smaller world mostly shortens the spatial clustering).
TINY_WORLD = {
    "name": "fault-tiny",
    "days": 90,
    "skus": 60,
    "order_lines": 8_000,
    "customers": 1_000,
    "warehouses": 4,
    "categories": 6,
    "hotspots": 2,
}

#: Spark settings of every run here: the tests' own, plus less per-query overhead.
RUN_SPARK_CONF = {
    **TEST_SPARK_CONF,
    "spark.driver.memory": "2g",
    "spark.ui.showConsoleProgress": "false",
    # Tiny data: fusing every stage into generated code costs more than it saves.
    "spark.sql.codegen.wholeStage": "false",
}

#: Seconds a whole reference pipeline may take; a faulted command; a rerun.
PIPELINE_TIMEOUT_S = 1200
COMMAND_TIMEOUT_S = 600


def _compare_tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compare_tables", REPO_ROOT / "scripts" / "compare_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPARE = _compare_tables()


def config_yaml(lakehouse: Path, *, master: str = "local[2]") -> str:
    """The cut-down config of every run here (few series, one fold, tiny models)."""
    conf = "\n".join(f'    {k}: "{v}"' for k, v in RUN_SPARK_CONF.items())
    return f"""\
spark:
  master: "{master}"
  app_name: shikong-faults
  jars_dir: .jars/lib
  log_level: ERROR
  conf:
{conf}
paths:
  lakehouse: {lakehouse}
generator:
  seed: 42
  scale: small
spatial:
  dbscan_sample: 500
  kmeans_sample: 500
  kmeans_k_max: 3
timeseries:
  level: sku_warehouse
  max_series: 10
  search: pruned
  backtest_folds: 1
decisions:
  route_days: 1
models:
  enabled: true
  backend: local
  num_processes: 1
  num_threads: 2
  num_shards: 2
  val_days: 14
  test_days: 7
  demand:
    max_series: 20
    stride: 7
    epochs: 2
    batch_size: 32
    eval_origins: 1
    d_model: 16
  recommender:
    history_days: 60
    epochs: 1
    batch_size: 128
    d_model: 16
"""


def write_config(where: Path, lakehouse: Path, **kw: Any) -> Path:
    path = where / "conf.yaml"
    path.write_text(config_yaml(lakehouse, **kw), encoding="utf-8")
    return path


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child run: this checkout's package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "lib"), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.update(extra)
    return env


def shikong(*args: str) -> list[str]:
    return [sys.executable, "-m", "shikong.cli", *args]


@dataclasses.dataclass
class Child:
    """A command in its own process group, stderr to a file."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    stdout: Path

    @classmethod
    def start(cls, cmd: list[str], logs: Path, name: str, **env: str) -> Child:
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=child_env(**env),
                stdout=o,
                stderr=e,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return cls(proc, err, out)

    def kill(self) -> None:
        """SIGKILL the whole group: the Python driver, its JVM and the Python workers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def group_gone(self, timeout: float = 30.0) -> bool:
        """Whether every process of the group has exited (reaped or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_members(self.proc.pid):
                return True
            time.sleep(0.2)
        return False

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.proc.args} did not finish in {timeout} s:\n{self.tail()}")

    def err_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def tail(self, n: int = 30) -> str:
        lines = [ln for ln in self.err_text().splitlines() if "WARN" not in ln or "shikong" in ln]
        return "\n".join(lines[-n:])


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


@pytest.fixture()
def children() -> Iterator[list[Child]]:
    """Children started by a test; every one is killed (its whole group) at the end."""
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None or _group_members(child.proc.pid):
            child.kill()


def run_to_end(cmd: list[str], logs: Path, name: str, children: list[Child], **env: str) -> Child:
    child = Child.start(cmd, logs, name, **env)
    children.append(child)
    rc = child.wait(COMMAND_TIMEOUT_S)
    assert rc == 0, f"{name} exited {rc}:\n{child.tail()}"
    return child


# --- the reference run and lakehouse copies --------------------------------------------------


def table_locations(spark: Any, lakehouse: Path) -> dict[str, str]:
    """``name -> format:path`` of every table compare_tables snapshots (run log apart)."""
    tables = COMPARE._tables(spark, str(lakehouse))
    return {k: v for k, v in tables.items() if k != "ops.run_log"}


def snapshot_table(spark: Any, where: str) -> dict[str, Any]:
    """compare_tables' snapshot of one table (``format:path``), on this test session."""
    fmt, path = where.split(":", 1)
    return COMPARE.snapshot_table(spark.read.format(fmt).load(path), 9)


def file_digests(where: str) -> dict[str, str]:
    """Content digest of every file of a table (its data files and Delta log)."""
    root = Path(where.split(":", 1)[1])
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclasses.dataclass
class Reference:
    """The uninterrupted run: its lakehouse, run id and (computed once each) snapshots."""

    lakehouse: Path
    run_id: str
    tables: dict[str, str]
    output: str = ""
    snapshots: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def snapshot(self, spark: Any, name: str) -> dict[str, Any]:
        if name not in self.snapshots:
            self.snapshots[name] = snapshot_table(spark, self.tables[name])
        return self.snapshots[name]


def _generate_tiny_world(landing: Path) -> None:
    from shikong.generator import build_world, resolve_scale
    from shikong.io.world_files import write_world

    scale = resolve_scale("small", **TINY_WORLD)
    write_world(build_world(seed=42, scale=scale, start_date=dt.date(2023, 1, 1)), str(landing))


def _finished_run_id(child: Child) -> str:
    m = re.search(r"shikong pipeline finished in .* \(run (\S+)\)", child.stdout.read_text())
    assert m, child.stdout.read_text()[-2000:]
    return m.group(1)


@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The tiny world generated once, then the whole pipeline run once, uninterrupted."""
    root = tmp_path_factory.mktemp("faults")
    _generate_tiny_world(root / "landing")
    lake = root / "reference"
    shutil.copytree(root / "landing", lake / "landing")
    conf = write_config(root, lake)
    child = Child.start(shikong("run", "--config", str(conf)), root / "logs", "reference")
    try:
        rc = child.wait(PIPELINE_TIMEOUT_S)
        assert rc == 0, f"reference run exited {rc}:\n{child.tail()}"
    finally:
        if child.proc.poll() is None or _group_members(child.proc.pid):
            child.kill()
    yield Reference(
        lake, _finished_run_id(child), table_locations(spark, lake), child.stdout.read_text()
    )


def test_the_run_ends_by_printing_the_report_path(reference: Reference) -> None:
    last = [ln for ln in reference.output.splitlines() if ln.strip()][-1]
    label, _, path = last.partition(" ")
    assert label == "report:", last
    report = reference.lakehouse / "report" / "index.html"
    assert Path(path.strip()).resolve() == report.resolve() and report.is_file(), last


def _producer(table: str) -> str:
    """The stage that writes a snapshot table (``ml.<kind>.<split>``: the shards)."""
    name = "ml.training_data" if table.startswith("ml.") else table
    for stage in registry.STAGES:
        if name in stage.writes and name != "ops.run_log":
            return stage.name
    raise KeyError(table)


def _stage_index(name: str) -> int:
    return [s.name for s in registry.STAGES].index(name)


def lakehouse_before(ref: Reference, first: str | None, dest: Path) -> Path:
    """A copy of the reference lakehouse as it was before stage ``first``: everything the
    stages from ``first`` on write is removed (``None``: the landing files only), but for
    tables an earlier stage writes too."""
    if first is None:
        shutil.copytree(ref.lakehouse / "landing", dest / "landing")
        return dest
    shutil.copytree(ref.lakehouse, dest, symlinks=True)
    catalog = Catalog(str(dest))
    index = _stage_index(first)
    # A table an earlier stage writes too (gold.inventory_policy: policy writes its SARIMA
    # rows, policy_fusion its fusion rows) stays whole: removing it would lose the earlier
    # stage's rows, which the stages run here do not write again.
    earlier = {out for stage in registry.STAGES[:index] for out in stage.writes}
    for stage in registry.STAGES[index:]:
        for out in stage.writes:
            if out == "ops.run_log" or out in earlier:
                continue
            where = catalog.uri(out) if out in TABLES else str(dest / out.replace(".", "/"))
            shutil.rmtree(where, ignore_errors=True)
    return dest


def assert_tables_equal(spark: Any, ref: Reference, lakehouse: Path, last: str) -> None:
    """Every table written by the stages up to ``last`` equals the reference's, and no
    other table exists. A table whose files are the reference's byte for byte (one the
    faulted stages did not write) is equal as it stands; the others are compared by
    compare_tables' snapshot and diff."""
    upto = _stage_index(last)
    want = {n for n in ref.tables if _stage_index(_producer(n)) <= upto}
    got = table_locations(spark, lakehouse)
    assert set(got) == want, f"tables: {sorted(got)} vs the reference's {sorted(want)}"
    bad = []
    for name in sorted(want):
        if file_digests(got[name]) == file_digests(ref.tables[name]):
            continue
        before, after = ref.snapshot(spark, name), snapshot_table(spark, got[name])
        [(_, verdict)] = COMPARE.diff({name: before}, {name: after}, 1e-6)
        if not verdict.startswith("equal"):
            bad.append(f"{name}: {verdict}")
    assert not bad, "tables differ from the uninterrupted run:\n" + "\n".join(bad)


def job_status(spark: Any, lakehouse: Path) -> dict[tuple[str, str], str]:
    """``(run id, job) -> status`` of the stage status rows in ``ops.run_log``."""
    rows = Catalog(str(lakehouse)).read(spark, "ops.run_log").where("source = '*'").collect()
    return {(r["run_id"], r["job"]): r["status"] for r in rows}


# --- 1. kill -9 mid-write, then rerun ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layer:
    """Where to kill: the stages run, and the file whose appearance means "writing now".

    Attributes:
        stages: ``shikong run --only`` of the killed run and of the rerun.
        fresh: Start from the landing files alone (else from the reference before
            ``stages[0]``).
        writing: Path under the lakehouse that appears when the layer's write is under way.
        killed_job: The job whose status row the kill leaves STARTED.
    """

    stages: tuple[str, ...]
    fresh: bool
    writing: str
    killed_job: str


LAYERS = {
    # Products, warehouses and customers are in; the orders are being written.
    "bronze": Layer(("ingest",), True, "bronze/orders", "ingest"),
    # The cleaned series (applyInPandas per series) are being written.
    "silver": Layer(("series",), False, "silver/sku_daily", "demand_series"),
    # The forecasts are committed; the backtest is being computed and written.
    "gold": Layer(("forecast",), False, "gold/forecast_metrics", "forecast_arima"),
    # Both models are trained and their metrics committed; the registry is not yet written.
    "models": Layer(
        ("train",),
        False,
        "gold/training_metrics/_delta_log/00000000000000000000.json",
        "train_models",
    ),
}


def kill_when_written(child: Child, target: Path, timeout: float) -> None:
    """SIGKILL the child's group the moment ``target`` exists (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not target.exists():
        if child.proc.poll() is not None:
            pytest.fail(f"the run ended ({child.proc.returncode}) before {target} appeared")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"{target} did not appear in {timeout} s:\n{child.tail()}")
        time.sleep(0.02)
    child.kill()


@pytest.mark.parametrize("layer", list(LAYERS), ids=list(LAYERS))
def test_kill_9_mid_write_then_rerun_gives_the_uninterrupted_tables(
    spark, reference: Reference, layer: str, tmp_path: Path, children: list[Child]
) -> None:
    spec = LAYERS[layer]
    lake = lakehouse_before(reference, None if spec.fresh else spec.stages[0], tmp_path / "lake")
    cmd = shikong("run", "--only", *spec.stages, "--config", str(write_config(tmp_path, lake)))

    killed = Child.start(cmd, tmp_path / "logs", "killed")
    children.append(killed)
    kill_when_written(killed, lake / spec.writing, COMMAND_TIMEOUT_S)
    assert killed.proc.returncode == -signal.SIGKILL
    assert killed.group_gone(), "processes of the killed run survived SIGKILL of its group"
    # The killed run's lock stays behind, naming a process that is gone.
    holder = json.loads((lake / lock.LOCK_FILE).read_text())
    assert holder["pid"] == killed.proc.pid
    killed_run = holder["run_id"]

    rerun = run_to_end(cmd, tmp_path / "logs", "rerun", children)
    assert "taking over the stale lock of run " + killed_run in rerun.err_text()
    assert not (lake / lock.LOCK_FILE).exists()
    rerun_id = _finished_run_id(rerun)

    status = job_status(spark, lake)
    assert status[(killed_run, spec.killed_job)] == "STARTED"
    for name in spec.stages:
        assert status[(rerun_id, registry.get(name).job)] == "SUCCEEDED"
    assert_tables_equal(spark, reference, lake, spec.stages[-1])


# --- 2. a task that fails on its first attempt ------------------------------------------------


def test_a_task_failing_on_its_first_attempt_is_retried_to_the_same_tables(
    spark, reference: Reference, tmp_path: Path, children: list[Child]
) -> None:
    lake = lakehouse_before(reference, "forecast", tmp_path / "lake")
    # local[2,2]: two cores, and every task may fail once (spark.task.maxFailures = 2).
    conf = write_config(tmp_path, lake, master="local[2,2]")
    markers = tmp_path / "markers"
    markers.mkdir()
    cmd = [sys.executable, str(REPO_ROOT / "tests" / "fault_inject.py"), "forecast"]
    run_to_end(
        [*cmd, "--config", str(conf)],
        tmp_path / "logs",
        "injected",
        children,
        SHIKONG_FAULT_MARKERS=str(markers),
    )
    attempts: dict[str, set[str]] = {}
    for m in markers.iterdir():
        task, attempt = m.name.rsplit("-", 1)
        attempts.setdefault(task, set()).add(attempt)
    assert attempts, "the forecast function never ran"
    assert all(a == {"attempt0", "attempt1"} for a in attempts.values()), attempts
    status = job_status(spark, lake)
    runs = {run: s for (run, job), s in status.items() if job == "forecast_arima"}
    assert [s for run, s in runs.items() if run != reference.run_id] == ["SUCCEEDED"]
    assert_tables_equal(spark, reference, lake, "forecast")


# --- 3. two runs on one lakehouse at once -----------------------------------------------------


def test_two_runs_at_once_one_stops_with_the_lock_message(
    spark, reference: Reference, tmp_path: Path, children: list[Child]
) -> None:
    lake = lakehouse_before(reference, "series", tmp_path / "lake")
    cmd = shikong("run", "--only", "series", "--config", str(write_config(tmp_path, lake)))
    first = Child.start(cmd, tmp_path / "logs", "first")
    children.append(first)
    time.sleep(2.0)
    second = Child.start(cmd, tmp_path / "logs", "second")
    children.append(second)
    codes = {"first": first.wait(COMMAND_TIMEOUT_S), "second": second.wait(COMMAND_TIMEOUT_S)}
    assert sorted(codes.values()) == [0, 1], codes
    loser, winner = (first, second) if codes["first"] == 1 else (second, first)
    err = loser.err_text().strip().splitlines()
    assert len(err) == 1, err
    assert re.fullmatch(
        rf"shikong run: LakehouseLockedError: lakehouse {re.escape(str(lake))} is in use by "
        rf"run \S+ \(shikong run, pid {winner.proc.pid} on host \S+, since \S+\): wait for "
        rf"it to finish or stop it; its lock {re.escape(str(lake / lock.LOCK_FILE))} is freed "
        r"when that process ends",
        err[0],
    ), err[0]
    assert not (lake / lock.LOCK_FILE).exists()
    status = job_status(spark, lake)
    new = {run for (run, job) in status if job == "demand_series"} - {reference.run_id}
    assert [status[(run, "demand_series")] for run in new] == ["SUCCEEDED"]
    assert_tables_equal(spark, reference, lake, "series")
