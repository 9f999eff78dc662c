"""The lakehouse run lock (``<lakehouse>/_lock``): one writer, stale locks taken over."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from shikong.cli import _replace_lakehouse
from shikong.cli import main as cli_main
from shikong.config import Paths
from shikong.io import lock

#: A process that takes the lock as run R-1 (the package's own code), says so, and holds
#: it until killed.
_HOLDER = """
import sys, time
from shikong.io import lock
lock.acquire(sys.argv[1], "R-1", "shikong run")
print("locked", flush=True)
time.sleep(300)
"""


@dataclasses.dataclass
class Holder:
    proc: subprocess.Popen[str]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture()
def holder(tmp_path: Path) -> Iterator[Holder]:
    """Another process holding ``tmp_path/lake``'s lock for the test (killed at the end)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "lake")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "lib")},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield Holder(proc)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _plant(lake: Path, text: str) -> Path:
    """A lock file nobody holds, as a killed run leaves it."""
    lake.mkdir(parents=True, exist_ok=True)
    path = lake / lock.LOCK_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _named(pid: int, host: str | None = None) -> str:
    return json.dumps(
        {
            "pid": pid,
            "host": host or socket.gethostname(),
            "run_id": "R-1",
            "command": "shikong run",
            "started_at": "2025-01-01T00:00:00Z",
        }
    )


def test_lock_holds_the_holder_and_is_given_back(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with lock.locked(str(lake), "R-me", "shikong run"):
        doc = json.loads((lake / lock.LOCK_FILE).read_text())
        assert (doc["pid"], doc["host"], doc["run_id"]) == (
            os.getpid(),
            socket.gethostname(),
            "R-me",
        )
        assert doc["command"] == "shikong run" and doc["started_at"].endswith("Z")
        assert lock.holds(str(lake))
        # Nested commands of the same process do not lock again.
        assert lock.acquire(str(lake), "R-inner", "shikong series") is None
    assert not (lake / lock.LOCK_FILE).exists()
    assert not lock.holds(str(lake))


def test_a_live_holder_refuses_until_it_ends(
    tmp_path: Path, holder: Holder, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    path = lake / lock.LOCK_FILE
    with pytest.raises(lock.LakehouseLockedError) as exc:
        lock.acquire(str(lake), "R-2", "shikong run")
    msg = str(exc.value)
    assert f"is in use by run R-1 (shikong run, pid {holder.proc.pid} on host" in msg
    assert msg.endswith(f"or stop it; its lock {path} is freed when that process ends")
    assert json.loads(path.read_text())["run_id"] == "R-1"  # untouched
    holder.kill()  # kill -9: the holder cannot give the lock back, the kernel frees it
    assert json.loads(path.read_text())["pid"] == holder.proc.pid
    with (
        caplog.at_level(logging.WARNING, logger="shikong.io.lock"),
        lock.locked(str(lake), "R-2", "shikong run"),
    ):
        assert json.loads(path.read_text())["run_id"] == "R-2"
    taken = f"taking over the stale lock of run R-1 (shikong run, pid {holder.proc.pid}"
    assert taken in caplog.text


@pytest.mark.parametrize(
    "text",
    [_named(os.getpid()), _named(1, "elsewhere.example"), "", "{not json"],
    ids=["own-pid", "other-host", "empty", "garbage"],
)
def test_a_lock_file_nobody_holds_is_taken_over_whatever_it_names(
    tmp_path: Path, text: str
) -> None:
    """The flock decides: a pid that is alive (even this process's: a reused pid), another
    host, an empty or unreadable file -- none of them holds the lock."""
    lake = tmp_path / "lake"
    _plant(lake, text)
    with lock.locked(str(lake), "R-2", "shikong run"):
        assert json.loads((lake / lock.LOCK_FILE).read_text())["run_id"] == "R-2"
        assert sorted(p.name for p in lake.iterdir()) == [lock.LOCK_FILE]
    assert not (lake / lock.LOCK_FILE).exists()


#: Contenders: each imports, says it is ready, waits for the go file, tries the lock once,
#: holds it a moment if it got it, and prints what happened.
_CONTENDER = """
import os, sys, time
from shikong.io import lock
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
try:
    path = lock.acquire(sys.argv[1], sys.argv[2], "shikong run")
except lock.LakehouseLockedError:
    print("refused", flush=True)
else:
    print("locked", flush=True)
    time.sleep(3)
    lock.release(path)
"""


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "after-a-kill"])
def test_of_runs_started_together_exactly_one_holds_the_lakehouse(
    tmp_path: Path, stale: bool
) -> None:
    lake = tmp_path / "lake"
    if stale:
        _plant(lake, _named(1))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "lib")}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(lake), f"R-{i}", str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(6)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)
    assert outcomes == ["locked"] + ["refused"] * 5
    assert not (lake / lock.LOCK_FILE).exists()


def test_release_leaves_a_lock_that_is_not_ours(tmp_path: Path, holder: Holder) -> None:
    path = tmp_path / "lake" / lock.LOCK_FILE
    lock.release(str(path))
    assert path.exists()


@pytest.mark.parametrize(
    "uri",
    [
        "s3a://bucket/lake",
        "abfss://c@a.dfs.core.windows.net/lake",
        "dbfs:/shikong/lake",
        "/dbfs/shikong/lake",
        "/Volumes/main/shikong/lake",
    ],
)
def test_shared_storage_takes_no_lock_file(uri: str) -> None:
    assert lock.lock_path(uri) is None
    assert lock.acquire(uri, "R", "shikong run") is None


def _yaml(tmp_path: Path, lake: Path) -> str:
    path = tmp_path / "conf.yaml"
    path.write_text(f"paths:\n  lakehouse: {lake}\ngenerator:\n  scale: small\n")
    return str(path)


@pytest.mark.parametrize("command", ["run", "series", "forecast_arima"])
def test_a_second_run_exits_1_in_one_line_before_touching_anything(
    tmp_path: Path, holder: Holder, capsys, command: str
) -> None:
    lake = tmp_path / "lake"
    path = lake / lock.LOCK_FILE
    assert cli_main([command, "--config", _yaml(tmp_path, lake)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        f"shikong {command}: LakehouseLockedError: lakehouse {lake} is in use by run R-1 "
        f"(shikong run, pid {holder.proc.pid} on host"
    )
    assert err[0].endswith(f"its lock {path} is freed when that process ends")
    assert sorted(p.name for p in lake.iterdir()) == [lock.LOCK_FILE]  # no landing generated


def test_run_fresh_keeps_its_own_lock(tmp_path: Path, base_config) -> None:
    lake = tmp_path / "lake"
    (lake / "bronze" / "orders").mkdir(parents=True)
    (lake / "_world.json").write_text("{}")
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(lake)))
    with lock.locked(str(lake), "R-me", "shikong run"):
        _replace_lakehouse(cfg)
        assert sorted(p.name for p in lake.iterdir()) == [lock.LOCK_FILE]


def test_a_stage_run_under_the_lock_drops_rows_of_its_unfinished_runs(
    spark, cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows keyed by run id that a killed (STARTED) or FAILED run of the stage left are
    removed by its next run under the lock; a SUCCEEDED run's rows stay."""
    from types import SimpleNamespace

    from shikong.io.catalog import Catalog
    from shikong.io.runlog import RunLogEntry, utc_now, write_run_log
    from shikong.stages import registry
    from shikong.stages.context import StageContext
    from shikong.stages.runner import run_stage

    catalog = Catalog(cfg.paths.lakehouse)
    now = utc_now()
    runs = {"R-killed": "STARTED", "R-failed": "FAILED", "R-good": "SUCCEEDED"}
    logged = {("train_models", r): s for r, s in runs.items()} | {("ingest", "R-killed"): "STARTED"}
    write_run_log(
        spark,
        catalog,
        [
            RunLogEntry(j, r, "*", "*", now, now, None, None, None, s)
            for (j, r), s in logged.items()
        ],
    )
    rows = [(kind, run) for run in runs for kind in ("demand", "recommender")]
    catalog.write(
        spark,
        "gold.model_registry",
        spark.createDataFrame(rows, "model_kind string, run_id string"),
    )
    stage = registry.get("train")
    monkeypatch.setattr(type(stage), "module", lambda self: SimpleNamespace(run=lambda ctx: 0))

    def registered() -> list[str]:
        return sorted({r["run_id"] for r in catalog.read(spark, "gold.model_registry").collect()})

    run_stage(StageContext.create(spark, cfg, run_id="R-unlocked"), stage)
    assert registered() == ["R-failed", "R-good", "R-killed"]  # no lock: maybe still running
    with lock.locked(cfg.paths.lakehouse, "R-locked", "shikong run"):
        run_stage(StageContext.create(spark, cfg, run_id="R-locked"), stage)
        # ingest writes the run log, keyed by run id too: that record stays whole.
        run_stage(StageContext.create(spark, cfg, run_id="R-locked"), registry.get("ingest"))
    assert registered() == ["R-good"]
    status = {
        (r["job"], r["run_id"]): r["status"] for r in catalog.read(spark, "ops.run_log").collect()
    }
    assert {k: v for k, v in status.items() if k[1] in runs} == logged
