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
    # A renamed column: the whole file is quarantined, the other order-line file loads.
    _write_csv(
        root / "order_lines" / "order_lines-2023-04.csv",
        ("order_id", "line", "order_ts", "sku", "quantity", "unit_price"),
        BAD_HEADER_LINES,
    )
    # No record at all: still a file of the run, with zero rows in.
    (root / "products" / "products-empty.csv").write_text("", encoding="utf-8")


BAD_HEADER_LINES = [
    ("O7", "1", "2023-04-01T10:00:00", "SKU-1", "1", "10.5"),
    ("O7", "2", "2023-04-01T10:00:00", "SKU-2", "1", "20"),
]


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
    ("order_lines", "BAD_HEADER", 2),
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
        "order_lines": 8,
    }
    for r in ingested.first.values():
        assert r.rows_in == r.rows_accepted + r.rows_rejected


def test_accepted_rows_are_typed(spark, ingested):
    lines = Catalog(ingested.cfg.paths.lakehouse).read(spark, "bronze.order_lines")
    got = lines.select(
        "order_id", "line_no", "sku", "quantity", "unit_price", "order_date", "freight_value"
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
    pd.testing.assert_frame_equal(got.drop(columns="freight_value"), want, check_dtype=False)
    # The files have the contract's header without the optional freight_value.
    assert dict(lines.dtypes)["freight_value"] == "double"
    assert got["freight_value"].isna().all()


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
    assert len(log) == 2 * 8  # one row per landing file per run
    assert (log["rows_in"] == log["rows_accepted"] + log["rows_rejected"]).all()


def test_every_file_has_its_run_log_row(spark, ingested):
    log = Catalog(ingested.cfg.paths.lakehouse).read(spark, "ops.run_log").toPandas()
    # Both runs read the same files: their rows agree.
    got = {r.source_file: (r.rows_in, r.rows_accepted, r.rows_rejected) for r in log.itertuples()}
    assert got["products/products-empty.csv"] == (0, 0, 0)
    assert got["order_lines/order_lines-2023-04.csv"] == (2, 0, 2)
    assert got["order_lines/order_lines-2023-03.csv"] == (6, 3, 3)


def test_bad_header_file_is_quarantined_whole_with_its_lines(spark, ingested):
    q = Catalog(ingested.cfg.paths.lakehouse).read(spark, "bronze.quarantine")
    rows = q.where(F.col("reason") == "BAD_HEADER").select("raw", "source_file").collect()
    assert {r["source_file"] for r in rows} == {"order_lines/order_lines-2023-04.csv"}
    got = sorted(json.loads(r["raw"])[S.CORRUPT] for r in rows)
    assert got == sorted(",".join(line) for line in BAD_HEADER_LINES)


# --- Out-of-domain numbers: quarantined with the column's reason, not accepted ---

#: A valid raw row per source; ``i`` makes the business key unique.
VALID_ROW = {
    "products": lambda i: (f"SKU-{i}", "toys", "10", "1"),
    "warehouses": lambda i: (f"W{i}", "sao paulo", "SP", "-23.5", "-46.6", "50"),
    "customers": lambda i: (f"C{i}", "sao paulo", "SP", "-23.5", "-46.6", "2023-01-01"),
    "orders": lambda i: (f"O{i}", "C1", "2023-03-01T10:00:00", "W1", "-23.5", "-46.6", "shipped"),
    "order_lines": lambda i: (f"O{i}", "1", "2023-03-01T10:00:00", "SKU-1", "2", "10.5"),
    "events": lambda i: (
        f"E{i}",
        "S1",
        "C1",
        "2023-03-01T10:00:00",
        "view",
        "SKU-1",
        "-23.5",
        "-46.6",
    ),
    "inventory": lambda i: (f"2023-03-{i:02d}", "SKU-1", "W1", "5", "0"),
}

#: (id, source, column, raw value, expected reason or None when accepted)
BAD_NUMBERS = [
    ("price-infinity", "products", "unit_price", "Infinity", "BAD_PRICE"),
    ("price-minus-infinity", "products", "unit_price", "-Infinity", "BAD_PRICE"),
    ("price-nan", "products", "unit_price", "NaN", "BAD_PRICE"),
    ("price-1e308", "products", "unit_price", "1e308", "BAD_PRICE"),
    ("price-above-1e9", "products", "unit_price", "1000000000.01", "BAD_PRICE"),
    ("price-at-1e9", "products", "unit_price", "1e9", None),
    ("weight-infinity", "products", "weight_kg", "inf", "BAD_VALUE"),
    ("weight-nan", "products", "weight_kg", "nan", "BAD_VALUE"),
    ("weight-1e308", "products", "weight_kg", "1e308", "BAD_VALUE"),
    ("lat-infinity", "warehouses", "lat", "Infinity", "BAD_COORDINATE"),
    ("lat-nan", "warehouses", "lat", "NaN", "BAD_COORDINATE"),
    ("lon-minus-infinity", "warehouses", "lon", "-Infinity", "BAD_COORDINATE"),
    ("lon-1e308", "warehouses", "lon", "1e308", "BAD_COORDINATE"),
    ("radius-infinity", "warehouses", "service_radius_km", "Infinity", "BAD_VALUE"),
    ("customer-lat-1e308", "customers", "lat", "-1e308", "BAD_COORDINATE"),
    ("order-lon-nan", "orders", "lon", "NaN", "BAD_COORDINATE"),
    ("quantity-infinity", "order_lines", "quantity", "Infinity", "BAD_QUANTITY"),
    ("quantity-nan", "order_lines", "quantity", "NaN", "BAD_QUANTITY"),
    ("quantity-1e308", "order_lines", "quantity", "1e308", "BAD_QUANTITY"),
    ("quantity-above-1e6", "order_lines", "quantity", "1000001", "BAD_QUANTITY"),
    ("quantity-at-1e6", "order_lines", "quantity", "1000000", None),
    ("line-price-infinity", "order_lines", "unit_price", "Infinity", "BAD_PRICE"),
    ("line-no-1e308", "order_lines", "line_no", "1e308", "BAD_VALUE"),
    ("line-no-smallest-int", "order_lines", "line_no", "-2147483648", "BAD_VALUE"),
    ("event-lat-infinity", "events", "lat", "Infinity", "BAD_COORDINATE"),
    ("on-hand-infinity", "inventory", "on_hand", "Infinity", "BAD_QUANTITY"),
    ("on-hand-1e10", "inventory", "on_hand", "1e10", "BAD_QUANTITY"),
    ("on-order-minus-infinity", "inventory", "on_order", "-Infinity", "BAD_QUANTITY"),
    ("on-order-nan", "inventory", "on_order", "NaN", "BAD_QUANTITY"),
]

#: (id, source, column, value as the reader gives it, expected reason): bytes that were not
#: UTF-8 reach validation as U+FFFD, and such a value cannot be accepted as it stands.
UNDECODABLE = [
    ("latin1-city", "customers", "city", "S\ufffdo Paulo", "MALFORMED_ROW"),
    ("latin1-category", "products", "category", "brinquedos e acess\ufffdrios", "MALFORMED_ROW"),
    ("latin1-sku", "order_lines", "sku", "SKU-\ufffd1", "MALFORMED_ROW"),
    ("accented-city", "customers", "city", "S\u00e3o Paulo", None),
]

#: (id, source, column, raw value, expected reason): the optional freight_value is money,
#: checked as unit_price is (the value read is checked by the tests of whole files below).
FREIGHT_VALUES = [
    ("freight-ok", "order_lines", "freight_value", "18.14", None),
    ("freight-zero", "order_lines", "freight_value", "0", None),
    ("freight-blank", "order_lines", "freight_value", " ", None),
    ("freight-negative", "order_lines", "freight_value", "-0.01", "BAD_PRICE"),
    ("freight-text", "order_lines", "freight_value", "R$ 5", "BAD_PRICE"),
    ("freight-comma-decimal", "order_lines", "freight_value", "18,14", "BAD_PRICE"),
    ("freight-nan", "order_lines", "freight_value", "NaN", "BAD_PRICE"),
    ("freight-infinity", "order_lines", "freight_value", "Infinity", "BAD_PRICE"),
    ("freight-above-1e9", "order_lines", "freight_value", "1e10", "BAD_PRICE"),
]
CLASSIFIED = BAD_NUMBERS + UNDECODABLE + FREIGHT_VALUES


@pytest.fixture(scope="module")
def classified_reasons(spark, base_config) -> dict[str, str | None]:
    """Classify every CLASSIFIED row (one frame per source); the case id is its file."""
    from shikong.ingest.validate import SPECS, classify

    refs = {
        "sku": spark.createDataFrame([("SKU-1",)], "sku string"),
        "customers": spark.createDataFrame([("C1",)], "customer_id string"),
        "warehouses": spark.createDataFrame([("W1",)], "warehouse_id string"),
    }
    reasons: dict[str, str | None] = {}
    for source in {c[1] for c in CLASSIFIED}:
        spec = SPECS[source]
        rows = []
        for i, (case, of, column, value, _) in enumerate(CLASSIFIED, start=1):
            if of == source:
                row = dict.fromkeys(spec.source.all_columns)  # optional columns null
                row.update(zip(spec.source.columns, VALID_ROW[source](i), strict=True))
                rows.append((*{**row, column: value}.values(), case))
        schema = ", ".join(f"{c} string" for c in (*spec.source.all_columns, S.SOURCE_FILE))
        raw = spark.createDataFrame(rows, schema)
        classified = classify(
            raw,
            spec,
            refs=refs,
            valid_from=base_config.ingest.valid_from,
            valid_to=base_config.ingest.valid_to,
        )
        reasons.update({r[S.SOURCE_FILE]: r["_reason"] for r in classified.collect()})
    return reasons


@pytest.mark.parametrize(
    ("case", "source", "column", "value", "reason"), BAD_NUMBERS, ids=[c[0] for c in BAD_NUMBERS]
)
def test_out_of_domain_numbers_get_the_column_reason(
    classified_reasons, case, source, column, value, reason
):
    assert classified_reasons[case] == reason, f"{source}.{column} = {value!r}"


@pytest.mark.parametrize(
    ("case", "source", "column", "value", "reason"), UNDECODABLE, ids=[c[0] for c in UNDECODABLE]
)
def test_undecodable_text_is_malformed(classified_reasons, case, source, column, value, reason):
    assert classified_reasons[case] == reason, f"{source}.{column} = {value!r}"


@pytest.mark.parametrize(
    ("case", "source", "column", "value", "reason"),
    FREIGHT_VALUES,
    ids=[c[0] for c in FREIGHT_VALUES],
)
def test_freight_is_checked_as_money(classified_reasons, case, source, column, value, reason):
    assert classified_reasons[case] == reason, f"{source}.{column} = {value!r}"


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


# --- Optional contract columns: order lines' freight_value ---

LINE = ("O1", "1", "2023-03-01T10:00:00", "SKU-1", "2", "10.5")
CORE = S.ORDER_LINES.columns
LINE_PRODUCT = ("SKU-1", "toys", "10.5", "0.2")

#: (id, header, row, freight_value read or None, whether the file is BAD_HEADER)
FREIGHT_HEADERS = [
    ("without-freight", CORE, LINE, None, False),
    ("with-freight", (*CORE, "freight_value"), (*LINE, "18.14"), "18.14", False),
    ("with-empty-freight", (*CORE, "freight_value"), (*LINE, ""), None, False),
    (
        "freight-not-last",
        (*CORE[:-1], "freight_value", CORE[-1]),
        (*LINE[:-1], "18.14", "10.5"),
        None,
        True,
    ),
    ("freight-and-more", (*CORE, "freight_value", "x"), (*LINE, "18.14", "1"), None, True),
    ("freight-renamed", (*CORE, "freight"), (*LINE, "18.14"), None, True),
]


@pytest.mark.parametrize(
    ("case", "header", "row", "freight", "bad"),
    FREIGHT_HEADERS,
    ids=[c[0] for c in FREIGHT_HEADERS],
)
def test_optional_freight_column_in_the_header(spark, tmp_path, case, header, row, freight, bad):
    from shikong.io.landing import read_landing

    _write_csv(tmp_path / "order_lines" / "order_lines-2023-03.csv", header, [row])
    read = read_landing(spark, str(tmp_path), S.ORDER_LINES)
    rows = read.rows.collect()
    assert read.rows.columns[: len(S.ORDER_LINES.all_columns)] == list(S.ORDER_LINES.all_columns)
    assert len(rows) == 1
    assert rows[0][S.BAD_HEADER_FLAG] is bad
    if not bad:
        assert rows[0][S.CORRUPT] is None
        assert tuple(rows[0][c] for c in CORE) == LINE
        assert rows[0]["freight_value"] == freight


def _old_row_hash(values: tuple[str | None, ...]) -> str:
    """validate.with_row_hash as it was before optional columns: every column, null as NUL."""
    import hashlib

    text = "\u0001".join("\u0000" if v is None else v for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_freight_is_added_to_a_bronze_table_written_before_it(spark, cfg):
    """A lakehouse whose bronze.order_lines predates freight_value: the next ingest adds the
    column (null in the old rows, which are not rewritten); files with and without it load;
    a bad freight is quarantined as BAD_PRICE; rows of files without it keep their row hash
    and raw JSON; a re-run changes nothing."""
    import datetime as dt

    landing = Path(cfg.paths.landing_dir)
    cat = Catalog(cfg.paths.lakehouse)
    _write_csv(landing / "products" / "products.csv", S.PRODUCTS.columns, [LINE_PRODUCT])
    ts = dt.datetime(2023, 3, 1, 10)
    old = pd.DataFrame(
        {
            "order_id": ["O1"],
            "line_no": [1],
            "order_ts": [ts],
            "sku": ["SKU-1"],
            "quantity": [2],
            "unit_price": [10.5],
            "order_date": [ts.date()],
            "order_month": ["2023-03"],
            "_source_file": ["order_lines/order_lines-2023-03.csv"],
            "_ingest_run_id": ["before-freight"],
            "_ingested_at": [dt.datetime(2023, 3, 2)],
        }
    )
    old_schema = (
        "order_id string, line_no int, order_ts timestamp, sku string, quantity int, "
        "unit_price double, order_date date, order_month string, _source_file string, "
        "_ingest_run_id string, _ingested_at timestamp"
    )
    cat.write(spark, "bronze.order_lines", spark.createDataFrame(old, old_schema))
    assert "freight_value" not in cat.read(spark, "bronze.order_lines").columns

    bad_old = ("O1", "2", "2023-03-01T10:00:00", "SKU-1", "-3", "10.5")
    _write_csv(landing / "order_lines" / "order_lines-2023-03.csv", CORE, [LINE, bad_old])
    _write_csv(
        landing / "order_lines" / "order_lines-2023-04.csv",
        (*CORE, "freight_value"),
        [
            ("O2", "1", "2023-04-01T10:00:00", "SKU-1", "1", "20", "3.5"),
            ("O2", "2", "2023-04-01T10:00:00", "SKU-1", "1", "20", ""),
            ("O2", "3", "2023-04-01T10:00:00", "SKU-1", "1", "20", "-1"),
            ("O2", "4", "2023-04-01T10:00:00", "SKU-1", "1", "20", "free"),
        ],
    )
    sources = ("products", "order_lines")
    first = {r.source: r for r in ingest_landing(StageContext.create(spark, cfg), sources=sources)}
    r = first["order_lines"]
    assert (r.rows_in, r.rows_accepted, r.rows_rejected, r.rows_inserted) == (6, 3, 3, 2)

    lines = cat.read(spark, "bronze.order_lines")
    assert dict(lines.dtypes)["freight_value"] == "double"
    got = sorted(
        (x.order_id, x.line_no, x.freight_value, x._ingest_run_id)
        for x in lines.select("order_id", "line_no", "freight_value", "_ingest_run_id").collect()
    )
    run = {x._ingest_run_id for x in lines.collect()} - {"before-freight"}
    assert got == [
        ("O1", 1, None, "before-freight"),  # the same row again: not rewritten
        ("O2", 1, 3.5, *run),
        ("O2", 2, None, *run),
    ]
    q = cat.read(spark, "bronze.quarantine").where("source = 'order_lines'").toPandas()
    by_line = {json.loads(x.raw)["line_no"]: x for x in q.itertuples()}
    assert {k: x.reason for k, x in by_line.items()} == {
        "2": "BAD_QUANTITY",
        "3": "BAD_PRICE",
        "4": "BAD_PRICE",
    }
    # The row of the file without freight: hash and raw JSON as before the column existed.
    assert list(json.loads(by_line["2"].raw)) == [*CORE, S.CORRUPT]
    assert by_line["2"].row_hash == _old_row_hash((*bad_old, None))
    assert json.loads(by_line["3"].raw)["freight_value"] == "-1"

    before = lines.toPandas().sort_values(["order_id", "line_no"]).reset_index(drop=True)
    again = ingest_landing(StageContext.create(spark, cfg), sources=sources)
    assert {x.rows_inserted for x in again} == {0}
    after = cat.read(spark, "bronze.order_lines").toPandas()
    after = after.sort_values(["order_id", "line_no"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert cat.read(spark, "bronze.quarantine").count() == len(q)
