"""Incremental ingest (``shikong stream``): the same bronze as batch ingest, exactly once.

A tiny generated world is dripped into landing as daily files (``generate --drip``'s
writer). Batch ingest of all its files into one lakehouse is the reference; then

* parity: the stream, run after each of two drops, leaves bronze, the quarantine and the
  run log's per-file reconciliation equal to the reference's;
* idempotence: replaying a committed micro-batch (same stream id and batch id) commits
  nothing and changes no row;
* recovery: ``shikong stream`` (continuous) killed with SIGKILL in the middle of a batch,
  restarted from its checkpoint and stopped with Ctrl-C, leaves the reference's bronze:
  no row twice, none missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT
from shikong import schemas as S
from shikong.config import AppConfig, Paths
from shikong.generator import build_world, resolve_scale
from shikong.generator.drip import Drop, daily_drops
from shikong.io.world_files import write_drops

#: Lineage columns that differ between two ingests of the same files by design.
INGEST_TIME = {"_ingested_at", "_ingest_run_id", "quarantined_at", "run_id"}
BRONZE = [s.name for s in S.SOURCES]
#: Days of the tiny world; the stream sees them in two drops.
DAYS = 7
SPLIT = 3


def tiny_world() -> Any:
    scale = resolve_scale(
        "small",
        days=DAYS,
        skus=30,
        order_lines=600,
        customers=200,
        warehouses=3,
        dirty_share=0.05,
        inventory_skus_per_warehouse=10,
    )
    return build_world(seed=11, scale=scale)


@pytest.fixture(scope="module")
def drops() -> list[Drop]:
    return daily_drops(tiny_world())


def write_extras(landing: str) -> None:
    """Files an upstream system may drop besides the generator's: a CSV whose header is
    not the contract's (quarantined whole as BAD_HEADER) and an empty file (logged, 0 in)."""
    bad = Path(landing) / "order_lines" / "order_lines-late.csv"
    bad.write_text(
        "order_id,line,order_ts,sku,quantity,unit_price\n"
        "O1,1,2023-01-02T10:00:00,SKU-00001,1,9.90\nO2,1,2023-01-02T11:00:00,SKU-00002,2,5.00\n",
        encoding="utf-8",
    )
    (Path(landing) / "events" / "events-empty.jsonl").write_bytes(b"")


def lake(base: AppConfig, root: Path, landing: Path | None = None) -> AppConfig:
    paths = Paths(lakehouse=str(root), landing=str(landing) if landing else None)
    return dataclasses.replace(base, paths=paths)


@pytest.fixture(scope="module")
def reference(
    spark: Any, base_config: AppConfig, drops: list[Drop], tmp_path_factory: pytest.TempPathFactory
) -> AppConfig:
    """Batch ingest of every daily file: the lakehouse the stream must reproduce."""
    from shikong.stages.context import StageContext
    from shikong.stages.ingest import ingest_landing

    root = tmp_path_factory.mktemp("reference")
    cfg = lake(base_config, root / "lakehouse", root / "landing")
    write_drops(drops, cfg.paths.landing_dir, rate=0)
    write_extras(cfg.paths.landing_dir)
    ingest_landing(StageContext.create(spark, cfg))
    return cfg


def frame(spark: Any, cfg: AppConfig, table: str) -> list[tuple]:
    from shikong.io.catalog import Catalog

    df = Catalog(cfg.paths.lakehouse).read(spark, table)
    cols = sorted(c for c in df.columns if c not in INGEST_TIME)
    return sorted(tuple(r) for r in df.select(*cols).collect())


def file_rows(spark: Any, cfg: AppConfig) -> dict[str, tuple[int, int, int]]:
    """The run log's ingest rows per landing file: (rows in, accepted, rejected)."""
    from shikong.io.catalog import Catalog

    rows = (
        Catalog(cfg.paths.lakehouse)
        .read(spark, "ops.run_log")
        .where("job = 'ingest' AND source_file != '*'")
        .collect()
    )
    out: dict[str, tuple[int, int, int]] = {}
    for r in rows:
        assert r["source_file"] not in out, f"{r['source_file']} logged twice"
        assert r["rows_in"] == r["rows_accepted"] + r["rows_rejected"], r
        out[r["source_file"]] = (r["rows_in"], r["rows_accepted"], r["rows_rejected"])
    return out


def assert_same_lakehouse(spark: Any, got: AppConfig, want: AppConfig) -> None:
    for name in BRONZE:
        a, b = frame(spark, got, f"bronze.{name}"), frame(spark, want, f"bronze.{name}")
        assert len(a) == len(set(a)), f"bronze.{name}: duplicate rows"
        assert a == b, f"bronze.{name}: {len(a)} rows vs batch {len(b)}"
    assert frame(spark, got, "bronze.quarantine") == frame(spark, want, "bronze.quarantine")
    assert file_rows(spark, got) == file_rows(spark, want)


def versions(spark: Any, cfg: AppConfig) -> dict[str, int]:
    from shikong.io.catalog import Catalog

    c = Catalog(cfg.paths.lakehouse)
    return {
        t: c.version(spark, t) for t in [*(f"bronze.{n}" for n in BRONZE), "bronze.quarantine"]
    } | {"ops.run_log": c.version(spark, "ops.run_log")}


@pytest.fixture(scope="module")
def streamed(
    spark: Any,
    base_config: AppConfig,
    drops: list[Drop],
    reference: AppConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> AppConfig:
    """The stream run after each of two drops (catalogue + first days, then the rest)."""
    from shikong.stages import stream
    from shikong.stages.context import StageContext

    root = tmp_path_factory.mktemp("streamed")
    cfg = lake(base_config, root / "lakehouse")
    ctx = StageContext.create(spark, cfg)
    write_drops(drops[: SPLIT + 1], cfg.paths.landing_dir, rate=0)
    report = stream.run(ctx, once=True)
    assert report.batches == dict.fromkeys(BRONZE, 1)
    write_drops(drops, cfg.paths.landing_dir, rate=0)
    write_extras(cfg.paths.landing_dir)
    report = stream.run(ctx, once=True)
    # Only the facts have new (daily) files; the catalogue streams find nothing new.
    assert report.batches == {
        n: int(n in ("orders", "order_lines", "events", "inventory")) for n in BRONZE
    }
    return cfg


def test_drip_keeps_every_row_in_daily_files(drops: list[Drop]) -> None:
    monthly = {f.rel: f.rows for f in tiny_world().files() if f.source}
    daily = [f for d in drops for f in d.files if f.source]
    assert drops[0].day is None and {f.source for f in drops[0].files if f.source} == {
        "products",
        "warehouses",
        "customers",
    }
    facts = [f for f in daily if f.source not in ("products", "warehouses", "customers")]
    # orders/orders-2023-01-05.jsonl: the source's folder, name and format, by day.
    assert all(
        f.rel
        == f"{f.source}/{f.source}-{d.day.isoformat()}.{'jsonl' if f.fmt == 'jsonl' else 'csv'}"
        for d in drops[1:]
        for f in d.files
        if d.day is not None
    )
    assert len(facts) == sum(len(d.files) for d in drops[1:])
    per_source_monthly: dict[str, int] = {}
    for rel, n in monthly.items():
        per_source_monthly[rel.split("/")[0]] = per_source_monthly.get(rel.split("/")[0], 0) + n
    per_source_daily: dict[str, int] = {}
    for f in daily:
        per_source_daily[str(f.source)] = per_source_daily.get(str(f.source), 0) + f.rows
    assert per_source_daily == per_source_monthly
    assert len(drops) == DAYS + 1


def test_stream_equals_batch(spark: Any, streamed: AppConfig, reference: AppConfig) -> None:
    assert_same_lakehouse(spark, streamed, reference)
    logged = file_rows(spark, streamed)
    assert logged["order_lines/order_lines-late.csv"] == (2, 0, 2)  # BAD_HEADER, whole
    assert logged["events/events-empty.jsonl"] == (0, 0, 0)
    # Every daily file of every source has its reconciliation row.
    landing = Path(reference.paths.landing_dir)
    files = [p for s in S.SOURCES for p in (landing / s.folder).iterdir()]
    assert len(file_rows(spark, streamed)) == len(files) > DAYS


def test_replayed_batch_changes_nothing(
    spark: Any, streamed: AppConfig, drops: list[Drop], reference: AppConfig
) -> None:
    from shikong.io.streams import stream_id
    from shikong.stages import stream
    from shikong.stages.context import StageContext

    ctx = StageContext.create(spark, streamed)
    checkpoint = f"{stream.checkpoint_root(ctx)}/orders"
    first = sorted(f.rel for d in drops[: SPLIT + 1] for f in d.files if f.source == "orders")
    before = versions(spark, streamed)
    # Batch 0 of the orders stream again, as a restart replays it: nothing is committed.
    stream.ingest_batch(ctx, S.ORDERS, first, stream=stream_id(checkpoint), batch_id=0)
    assert versions(spark, streamed) == before
    assert_same_lakehouse(spark, streamed, reference)
    # Under another identity the MERGEs still insert nothing twice (a new run id adds run
    # log rows of its own, so only bronze and the quarantine are compared here).
    again = StageContext.create(spark, streamed)
    stream.ingest_batch(again, S.ORDERS, first, stream="another-stream", batch_id=0)
    for name in ("bronze.orders", "bronze.quarantine"):
        assert frame(spark, streamed, name) == frame(spark, reference, name)


# --- recovery: a real `shikong stream` killed with SIGKILL ---------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "lib"), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


CONFIG = """\
spark:
  master: "local[2]"
  jars_dir: {jars}
  log_level: ERROR
  conf:
    spark.ui.enabled: false
    spark.sql.shuffle.partitions: 2
    spark.default.parallelism: 2
    spark.driver.memory: 2g
    spark.sql.session.timeZone: UTC
    spark.databricks.delta.snapshotPartitions: 1
    spark.driver.host: 127.0.0.1
    spark.driver.bindAddress: 127.0.0.1
    spark.databricks.delta.merge.repartitionBeforeWrite.enabled: false
paths:
  lakehouse: {lakehouse}
privacy:
  allow_development_key: true
"""


@contextlib.contextmanager
def child(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def wait_for(
    what: str, cond: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(
                f"stream exited {proc.returncode} before {what}:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def test_killed_stream_recovers_exactly_once(
    spark: Any, base_config: AppConfig, drops: list[Drop], reference: AppConfig, tmp_path: Path
) -> None:
    lakehouse = tmp_path / "lakehouse"
    write_drops(drops, str(lakehouse / "landing"), rate=0)
    write_extras(str(lakehouse / "landing"))
    conf = tmp_path / "conf.yaml"
    jars = REPO_ROOT / ".jars" / "lib"
    conf.write_text(CONFIG.format(jars=jars, lakehouse=lakehouse), encoding="utf-8")
    cmd = [sys.executable, "-m", "shikong.cli", "stream", "--config", str(conf), "--interval", "1"]
    checkpoints = lakehouse / "_streaming" / "ingest"
    orders_log = lakehouse / "bronze" / "orders" / "_delta_log"

    def mid_batch() -> bool:
        # The orders batch has written bronze.orders but not yet committed to its checkpoint.
        return orders_log.is_dir() and any(orders_log.glob("*.json"))

    with child(cmd, tmp_path / "first.err") as proc:
        wait_for("orders batch", mid_batch, proc, tmp_path / "first.err", 300)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    killed_mid_batch = not (checkpoints / "orders" / "commits" / "0").exists()
    assert (checkpoints / "orders" / "offsets" / "0").exists()

    def caught_up() -> bool:
        return all((checkpoints / s / "commits" / "0").exists() for s in BRONZE)

    with child(cmd, tmp_path / "second.err") as proc:
        wait_for("all batches", caught_up, proc, tmp_path / "second.err", 300)
        proc.send_signal(signal.SIGINT)  # Ctrl-C (the JVM ignores SIGINT: pyspark's launch)
        assert proc.wait(timeout=120) == 0, (tmp_path / "second.err").read_text()[-3000:]
    err = (tmp_path / "second.err").read_text()
    assert "stopped by Ctrl-C" in err
    cfg = lake(base_config, lakehouse)
    assert_same_lakehouse(spark, cfg, reference)
    assert killed_mid_batch, "the kill came after the orders batch committed (test timing)"
    shutil.rmtree(lakehouse, ignore_errors=True)
