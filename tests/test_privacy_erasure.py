"""Erasure building blocks: landing records and shard rows dropped by whole-token id,
quarantine expiry, and the ``shikong forget`` command line (the whole erasure on the
small world is ``tests/test_forget.py``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shikong.config import PrivacySettings
from shikong.io import erasure
from shikong.io.catalog import Catalog

CSV = (
    "customer_id,name,note\n"
    "C0000012,Ana,plain\n"
    'C00000123,Bia,"two\nlines, ""quoted"""\n'
    'C0000013,Caio,"mentions c0000012 inside"\n'
    "C0000014,Duda,last\n"
)
JSONL_ESCAPED = '{"id":"A1","note":"say \\"hi"}\n{"id":"C9","x":"\u2028"}\n{"id":"B2"}\n'
JSONL = (
    '{"order_id":"O1","customer_id":"C0000012"}\n'
    '{"order_id":"O12","customer_id":"C0000099"}\n'
    '{"order_id":"O2","customer_id":"C0000099"}\n'
)


@pytest.mark.parametrize(
    ("name", "text", "ids", "removed", "kept"),
    [
        ("x.csv", CSV, ["C0000012"], 2, ["C00000123", "two\nlines", "C0000014"]),
        ("x.csv", CSV, ["C00000123"], 1, ["C0000012,Ana", "C0000013", "C0000014"]),
        ("x.jsonl", JSONL, ["O1"], 1, ['"O12"', '"O2"']),
        ("x.jsonl", JSONL, ["nobody"], 0, ['"O1"', '"O12"', '"O2"']),
        ("x.jsonl", JSONL_ESCAPED, ["C9"], 1, ['"A1"', '"B2"']),
    ],
    ids=[
        "csv-token-and-case",
        "csv-multiline-record",
        "jsonl-order-id",
        "jsonl-none",
        "jsonl-escaped-quote-and-u2028",
    ],
)
def test_text_records_are_dropped_by_whole_token(tmp_path, name, text, ids, removed, kept) -> None:
    f = tmp_path / "landing" / name
    f.parent.mkdir()
    f.write_text(text)
    crc = f.parent / f".{name}.crc"
    crc.write_bytes(b"stale")
    assert erasure.drop_text_records(str(f), ids) == removed
    out = f.read_text()
    assert all(k in out for k in kept)
    # Every remaining record is one of the originals, whole and in order.
    csv = name.endswith(".csv")
    records, left = erasure._records(text, csv=csv), erasure._records(out, csv=csv)
    assert left == [r for r in records if r in left]
    assert len(left) == len(records) - removed
    assert crc.exists() == (removed == 0)


def test_parquet_rows_are_dropped_and_shards_keep_their_names(tmp_path) -> None:
    folder = tmp_path / "score"
    folder.mkdir()
    frames = {
        "part-0.parquet": pd.DataFrame({"customer_id": ["C1", "C2", None], "x": [1, 2, 3]}),
        "part-1.parquet": pd.DataFrame({"customer_id": ["C3", "c1"], "x": [4, 5]}),
        "part-2.parquet": pd.DataFrame({"sku": ["C1"], "x": [6]}),
    }
    for name, frame in frames.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / name)
    removed = erasure.erase_from_files(str(folder), column="customer_id", ids=["C1"])
    assert removed == {"part-0.parquet": 1, "part-1.parquet": 1}
    got = {n: pq.read_table(folder / n).to_pandas() for n in frames}
    assert got["part-0.parquet"]["x"].tolist() == [2, 3]
    assert got["part-1.parquet"]["customer_id"].tolist() == ["C3"]
    assert got["part-2.parquet"].equals(frames["part-2.parquet"])  # no such column: untouched


def test_quarantine_raw_content_expires_after_the_retention(spark, cfg) -> None:
    from shikong.stages.context import StageContext
    from shikong.stages.ingest import expire_quarantine

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        ("orders", "f.jsonl", "h1", 1, "BAD_DATE", '{"customer_id":"C1"}', "r", now),
        (
            "orders",
            "f.jsonl",
            "h2",
            1,
            "BAD_DATE",
            '{"customer_id":"C2"}',
            "r",
            now - dt.timedelta(days=31),
        ),
        ("orders", "f.jsonl", "h3", 1, "BAD_DATE", None, "r", now - dt.timedelta(days=400)),
    ]
    schema = (
        "source string, source_file string, row_hash string, occurrence int, reason string, "
        "raw string, run_id string, quarantined_at timestamp"
    )
    cat = Catalog(cfg.paths.lakehouse)
    cat.write(spark, "bronze.quarantine", spark.createDataFrame(rows, schema))
    cfg30 = dataclasses.replace(cfg, privacy=PrivacySettings(quarantine_retention_days=30))
    ctx = StageContext.create(spark, cfg30)
    assert expire_quarantine(ctx) == 1
    got = {r["row_hash"]: r["raw"] for r in cat.read(spark, "bronze.quarantine").collect()}
    assert got == {"h1": '{"customer_id":"C1"}', "h2": None, "h3": None}
    assert expire_quarantine(ctx) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [([], "give --customer ID"), (["--customers-file", "/nonexistent/ids.txt"], "ids.txt")],
    ids=["no-ids", "missing-file"],
)
def test_forget_without_ids_stops_in_one_line(tmp_path: Path, args, needle) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shikong.cli", "forget", "--lakehouse", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_shikong_forget_erases_from_a_lakehouse(spark, tmp_path: Path) -> None:
    """The command itself, in its own process: tables and landing file lose the customer."""
    lakehouse = tmp_path / "lakehouse"
    cat = Catalog(str(lakehouse))
    rows = [("C0000001", "SP", -23.5, -46.6), ("C0000002", "RJ", -22.9, -43.2)]
    cat.write(
        spark,
        "silver.customers_geo",
        spark.createDataFrame(rows, "customer_id string, uf string, lat double, lon double"),
    )
    landing = lakehouse / "landing" / "customers" / "customers.csv"
    landing.parent.mkdir(parents=True)
    landing.write_text("customer_id,uf\nC0000001,SP\nC0000002,RJ\n")
    ids = tmp_path / "ids.txt"
    ids.write_text("# erasure requests\nC0000001\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shikong.cli",
            "forget",
            "--customers-file",
            str(ids),
            "--lakehouse",
            str(lakehouse),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 customer(s)" in proc.stdout and "C0000001" not in proc.stdout + proc.stderr
    left = cat.read(spark, "silver.customers_geo").toPandas()
    assert left["customer_id"].tolist() == ["C0000002"]
    assert landing.read_text() == "customer_id,uf\nC0000002,RJ\n"
    logged = cat.read(spark, "ops.erasure_log").toPandas()
    assert logged.set_index("table")["rows_removed"].to_dict() == {
        "silver.customers_geo": 1,
        "landing/customers/customers.csv": 1,
    }
