"""Ingest: every defect gets its reason, nothing is lost, re-runs change nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from shikong import schemas as S
from shikong.config import Paths
from shikong.io.catalog import Catalog
from shikong.stages.context import StageContext
from shikong.stages.ingest import ingest_landing


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _make_landing(root: Path) -> None:
    _write_csv(
        root / "products" / "products.csv",
        S.PRODUCTS.columns,
        [
            ("SKU-1", "toys", "10.5", "0.2"),
            ("SKU-2", "books", "20", "1.0"),
            ("SKU-3", "books", "-1", "1"),
        ],
    )
    _write_csv(
        root / "warehouses" / "warehouses.csv",
        S.WAREHOUSES.columns,
        [("W1", "sao paulo", "SP", "-23.55", "-46.63", "50")],
    )
    _write_csv(
        root / "customers" / "customers.csv",
        S.CUSTOMERS.columns,
        [
            ("C1", "sao paulo", "SP", "-23.5", "-46.6", "2023-01-01"),
            ("C2", "rio", "RJ", "-22.9", "-43.2", "2023-01-02"),
            ("C3", "x", "SP", "123.4", "-46.6", "2023-01-02"),
        ],
    )
    order = {
        "order_id": "O1",
        "customer_id": "C1",
        "order_ts": "2023-03-01T10:00:00",
        "warehouse_id": "W1",
        "lat": -23.5,
        "lon": -46.6,
        "status": "delivered",
    }
    _write_jsonl(
        root / "orders" / "orders-2023-03.jsonl",
        [
            order,
            dict(order),  # exact duplicate
            dict(order, order_id="O2", order_ts="not-a-date"),
            dict(order, order_id="O3", order_ts="2099-01-01T00:00:00"),
            dict(order, order_id="O4", customer_id="C-404"),
            dict(order, order_id=None),
            dict(order, order_id="O5", lon=-200),
            dict(order, order_id="O6", customer_id="C2"),
        ],
    )
    _write_csv(
        root / "order_lines" / "order_lines-2023-03.csv",
        S.ORDER_LINES.columns,
        [
            ("O1", "1", "2023-03-01T10:00:00", "SKU-1", "2", "10.5"),
            ("O1", "2", "2023-03-01T10:00:00", "SKU-2", "1", "20"),
            ("O1", "3", "2023-03-01T10:00:00", "SKU-9", "1", "20"),
            ("O6", "1", "2023-03-01T11:00:00", "SKU-1", "-3", "10.5"),
            ("O6", "2", "2023-03-01T11:00:00", "SKU-1", "1", "-5"),
            ("O6", "3", "2023-03-01 11:00:00", "SKU-2", "4", "20"),
        ],
    )
    (root / "orders" / "orders-2023-04.jsonl").write_text(
        '{"order_id": "O9", "customer_id": "C1"\n', encoding="utf-8"
    )


@dataclasses.dataclass(frozen=True)
class Ingested:
    cfg: object
    first: dict
    second: dict
    counts_after_first: dict


TABLES = ("products", "customers", "orders", "order_lines", "quarantine")


@pytest.fixture(scope="module")
def ingested(spark, base_config, tmp_path_factory) -> Ingested:
    """Ingest one hand-made landing batch twice (the second run must be a no-op)."""
    lakehouse = tmp_path_factory.mktemp("ingest") / "lakehouse"
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(lakehouse)))
    _make_landing(Path(cfg.paths.landing_dir))
    first = {r.source: r for r in ingest_landing(StageContext.create(spark, cfg))}
    counts = {t: Catalog(cfg.paths.lakehouse).read(spark, f"bronze.{t}").count() for t in TABLES}
    second = {r.source: r for r in ingest_landing(StageContext.create(spark, cfg))}
    return Ingested(cfg, first, second, counts)


EXPECTED_QUARANTINE = [
    ("products", "BAD_PRICE", 1),
    ("customers", "BAD_COORDINATE", 1),
    ("orders", "MALFORMED_ROW", 1),
    ("orders", "MISSING_KEY", 1),
    ("orders", "BAD_TIMESTAMP", 1),
    ("orders", "TS_OUT_OF_RANGE", 1),
    ("orders", "BAD_COORDINATE", 1),
    ("orders", "UNKNOWN_REFERENCE", 1),
    ("orders", "DUPLICATE", 1),
    ("order_lines", "BAD_QUANTITY", 1),
    ("order_lines", "BAD_PRICE", 1),
    ("order_lines", "UNKNOWN_SKU", 1),
]


def test_every_defect_is_quarantined_with_its_reason(spark, ingested):
    q = Catalog(ingested.cfg.paths.lakehouse).read(spark, "bronze.quarantine")
    got = sorted(
        (r["source"], r["reason"], r["count"])
        for r in q.groupBy("source", "reason").count().collect()
    )
    assert got == sorted(EXPECTED_QUARANTINE)


def test_rows_in_equal_accepted_plus_quarantined(ingested):
    accepted = {name: r.rows_accepted for name, r in ingested.first.items()}
    assert accepted == {
        "products": 2,
        "warehouses": 1,
        "customers": 2,
        "orders": 2,
        "order_lines": 3,
    }
    rows_in = {name: r.rows_in for name, r in ingested.first.items()}
    assert rows_in == {
        "products": 3,
        "warehouses": 1,
        "customers": 3,
        "orders": 9,
        "order_lines": 6,
    }
    for r in ingested.first.values():
        assert r.rows_in == r.rows_accepted + r.rows_rejected


def test_accepted_rows_are_typed(spark, ingested):
    lines = Catalog(ingested.cfg.paths.lakehouse).read(spark, "bronze.order_lines")
    got = lines.select(
        "order_id", "line_no", "sku", "quantity", "unit_price", "order_date"
    ).toPandas()
    got = got.sort_values(["order_id", "line_no"]).reset_index(drop=True)
    want = pd.DataFrame(
        {
            "order_id": ["O1", "O1", "O6"],
            "line_no": [1, 2, 3],
            "sku": ["SKU-1", "SKU-2", "SKU-2"],
            "quantity": [2, 1, 4],
            "unit_price": [10.5, 20.0, 20.0],
            "order_date": pd.to_datetime(["2023-03-01"] * 3).date,
        }
    )
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_quarantine_keeps_the_raw_row_unchanged(spark, ingested):
    q = Catalog(ingested.cfg.paths.lakehouse).read(spark, "bronze.quarantine")
    row = q.where(F.col("reason") == "BAD_TIMESTAMP").select("raw", "source_file").first()
    assert json.loads(row["raw"])["order_ts"] == "not-a-date"
    assert row["source_file"] == "orders/orders-2023-03.jsonl"


def test_rerun_of_same_batch_changes_nothing(spark, ingested):
    cfg = ingested.cfg
    after = {t: Catalog(cfg.paths.lakehouse).read(spark, f"bronze.{t}").count() for t in TABLES}
    assert after == ingested.counts_after_first
    assert {r.rows_inserted for r in ingested.second.values()} == {0}

    log = Catalog(cfg.paths.lakehouse).read(spark, "ops.run_log").toPandas()
    assert log["run_id"].nunique() == 2
    assert len(log) == 2 * 6  # one row per landing file per run
    assert (log["rows_in"] == log["rows_accepted"] + log["rows_rejected"]).all()


def test_a_restated_row_replaces_its_bronze_version_and_a_rerun_changes_nothing(spark, cfg):
    """Upstream re-exports its files: an order's status changes, another order's timestamp
    is corrected into the next month (its partition), a customer moves. Bronze keeps one,
    latest version of each; ingesting the same files again rewrites no row."""
    landing = Path(cfg.paths.landing_dir)
    sources = ("warehouses", "customers", "orders")
    _write_csv(
        landing / "warehouses" / "warehouses.csv",
        S.WAREHOUSES.columns,
        [("W1", "sao paulo", "SP", "-23.55", "-46.63", "50")],
    )

    def customers(c2: tuple[str, ...]) -> None:
        rows = [("C1", "sao paulo", "SP", "-23.5", "-46.6", "2023-01-01"), c2]
        _write_csv(landing / "customers" / "customers.csv", S.CUSTOMERS.columns, rows)

    order = {"customer_id": "C1", "warehouse_id": "W1", "lat": -23.5, "lon": -46.6}
    o1 = dict(order, order_id="O1", order_ts="2023-03-10T10:00:00", status="shipped")
    o2 = dict(order, order_id="O2", order_ts="2023-03-31T23:30:00", status="delivered")
    customers(("C2", "rio", "RJ", "-22.9", "-43.2", "2023-01-02"))
    _write_jsonl(landing / "orders" / "orders-2023-03.jsonl", [o1, o2])
    ingest_landing(StageContext.create(spark, cfg), sources=sources)

    customers(("C2", "niteroi", "RJ", "-22.88", "-43.1", "2023-01-02"))
    _write_jsonl(landing / "orders" / "orders-2023-03.jsonl", [dict(o1, status="delivered")])
    _write_jsonl(
        landing / "orders" / "orders-2023-04.jsonl", [dict(o2, order_ts="2023-04-01T00:30:00")]
    )
    ingest_landing(StageContext.create(spark, cfg), sources=sources)

    cat = Catalog(cfg.paths.lakehouse)
    got_orders = cat.read(spark, "bronze.orders").select(
        "order_id", F.col("order_ts").cast("string"), "status", "order_month", "_source_file"
    )
    assert sorted(map(tuple, got_orders.collect())) == [
        ("O1", "2023-03-10 10:00:00", "delivered", "2023-03", "orders/orders-2023-03.jsonl"),
        ("O2", "2023-04-01 00:30:00", "delivered", "2023-04", "orders/orders-2023-04.jsonl"),
    ]
    got_customers = cat.read(spark, "bronze.customers").select("customer_id", "city", "lat")
    assert sorted(map(tuple, got_customers.collect())) == [
        ("C1", "sao paulo", -23.5),
        ("C2", "niteroi", -22.88),
    ]

    def bronze() -> dict[str, pd.DataFrame]:
        keys = {"customers": "customer_id", "orders": "order_id"}
        return {
            t: cat.read(spark, f"bronze.{t}").toPandas().sort_values(k) for t, k in keys.items()
        }

    before = bronze()
    reports = ingest_landing(StageContext.create(spark, cfg), sources=sources)
    assert {r.rows_inserted for r in reports} == {0}
    for t, frame in bronze().items():  # lineage included: no row was rewritten
        pd.testing.assert_frame_equal(frame, before[t], obj=t)
