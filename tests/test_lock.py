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

from shikong.cli import _replace_lakehouse
from shikong.cli import main as cli_main
from shikong.config import Paths
from shikong.io import lock


@pytest.fixture()
def live_pid() -> Iterator[int]:
    """The pid of another process that lives for the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture()
def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant(lake: Path, *, pid: int, host: str | None = None, run_id: str = "R-1") -> Path:
    lake.mkdir(parents=True, exist_ok=True)
    path = lake / lock.LOCK_FILE
    holder = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "run_id": run_id,
        "command": "shikong run",
        "started_at": "2025-01-01T00:00:00Z",
    }
    path.write_text(json.dumps(holder), encoding="utf-8")
    return path


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


def test_a_live_holder_refuses_with_its_name_and_the_fix(tmp_path: Path, live_pid: int) -> None:
    lake = tmp_path / "lake"
    path = _plant(lake, pid=live_pid)
    with pytest.raises(lock.LakehouseLockedError) as exc:
        lock.acquire(str(lake), "R-2", "shikong run")
    msg = str(exc.value)
    assert f"is in use by run R-1 (shikong run, pid {live_pid} on host" in msg
    assert "wait for it to finish" in msg and f"remove {path} if that run is gone" in msg
    assert json.loads(path.read_text())["run_id"] == "R-1"  # untouched


def test_a_stale_lock_is_taken_over_with_a_warning(
    tmp_path: Path, dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    _plant(lake, pid=dead_pid)
    with caplog.at_level(logging.WARNING, logger="shikong.io.lock"):
        path = lock.acquire(str(lake), "R-2", "shikong run")
    try:
        assert json.loads((lake / lock.LOCK_FILE).read_text())["run_id"] == "R-2"
        assert "taking over the stale lock of run R-1" in caplog.text
        assert sorted(p.name for p in lake.iterdir()) == [lock.LOCK_FILE]  # nothing aside
    finally:
        lock.release(path)


def test_another_hosts_lock_is_never_taken_over(tmp_path: Path, dead_pid: int) -> None:
    lake = tmp_path / "lake"
    _plant(lake, pid=dead_pid, host="elsewhere.example")
    with pytest.raises(lock.LakehouseLockedError, match="on host elsewhere.example"):
        lock.acquire(str(lake), "R-2", "shikong run")


def test_an_unreadable_lock_is_young_or_abandoned(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    path = lake / lock.LOCK_FILE
    path.write_text("")  # a holder between create and write...
    with pytest.raises(lock.LakehouseLockedError):
        lock.acquire(str(lake), "R-2", "shikong run")
    old = path.stat().st_mtime - 2 * lock.UNREADABLE_GRACE_S
    os.utime(path, (old, old))  # ...or one killed right there
    lock.release(lock.acquire(str(lake), "R-2", "shikong run"))


def test_release_leaves_a_lock_that_is_not_ours(tmp_path: Path, live_pid: int) -> None:
    lake = tmp_path / "lake"
    path = _plant(lake, pid=live_pid)
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
    tmp_path: Path, live_pid: int, capsys, command: str
) -> None:
    lake = tmp_path / "lake"
    path = _plant(lake, pid=live_pid)
    assert cli_main([command, "--config", _yaml(tmp_path, lake)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"shikong {command}: LakehouseLockedError: lakehouse {lake} is in use")
    assert err[0].endswith(f"remove {path} if that run is gone")
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
