"""Shrinking or restating the input leaves no stale row: write modes and the stages on them.

The catalogue-level cases write inline frames through ``Catalog.write`` on a ``tmp_path``
lakehouse, one sequence of writes per mode; the end-to-end cases run the real stages on
small inline bronze tables, shrink their input and run them again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException

from shikong.io import catalog as C
from shikong.io.catalog import Catalog, Since, TableSpec, WriteMode
from shikong.stages.context import StageContext

# --------------------------------------------------------------------------------------
# Catalogue mechanics: one sequence of writes per mode, then the whole table.
# --------------------------------------------------------------------------------------

ROW = "k string, month string, v double, seq int, src string"

_I, _U, _R, _O = (
    WriteMode.INSERT_ONLY,
    WriteMode.UPSERT,
    WriteMode.REPLACE_SCOPE,
    WriteMode.OVERWRITE,
)
UPSERT = TableSpec("gold", "t", _U, keys=("k",), partition_by=("month",))
INSERT_ONLY = TableSpec("gold", "t", _I, keys=("k",), partition_by=("month",))
SEQUENCED = TableSpec(
    "bronze",
    "t",
    _U,
    keys=("k",),
    partition_by=("month",),
    sequence_by="seq",
    lineage=("src",),
)
SCOPED = TableSpec("gold", "t", _R, partition_by=("month",), scope_by=("month",))
UNPARTITIONED_SCOPE = TableSpec("gold", "t", _R, scope_by=("month",))
WHOLE = TableSpec("gold", "t", _O, partition_by=("month",))

Write = tuple[list[tuple[Any, ...]], Mapping[str, C.ScopeValue] | None]


@dataclasses.dataclass(frozen=True)
class Case:
    spec: TableSpec
    writes: list[Write]
    want: list[tuple[Any, ...]]


CASES = {
    # A row whose partition value changes upstream is updated where it lies, not inserted
    # a second time under its new month.
    "upsert-moves-a-row-across-partitions": Case(
        UPSERT,
        [
            ([("a", "2024-01", 1.0, 1, "f1"), ("b", "2024-01", 2.0, 1, "f1")], None),
            ([("a", "2024-02", 1.0, 1, "f1")], None),
        ],
        [("a", "2024-02", 1.0, 1, "f1"), ("b", "2024-01", 2.0, 1, "f1")],
    ),
    "insert-only-never-inserts-a-key-twice": Case(
        INSERT_ONLY,
        [([("a", "2024-01", 1.0, 1, "f1")], None), ([("a", "2024-02", 5.0, 2, "f2")], None)],
        [("a", "2024-01", 1.0, 1, "f1")],
    ),
    "newer-sequence-wins-across-partitions": Case(
        SEQUENCED,
        [([("a", "2024-01", 1.0, 2, "f1")], None), ([("a", "2024-02", 5.0, 3, "f2")], None)],
        [("a", "2024-02", 5.0, 3, "f2")],
    ),
    "older-sequence-never-overwrites": Case(
        SEQUENCED,
        [([("a", "2024-01", 1.0, 2, "f1")], None), ([("a", "2024-02", 5.0, 1, "f0")], None)],
        [("a", "2024-01", 1.0, 2, "f1")],
    ),
    "same-sequence-keeps-the-first-version": Case(
        SEQUENCED,
        [([("a", "2024-01", 1.0, 2, "f1")], None), ([("a", "2024-01", 5.0, 2, "f2")], None)],
        [("a", "2024-01", 1.0, 2, "f1")],
    ),
    "lineage-alone-is-no-change": Case(
        SEQUENCED,
        [([("a", "2024-01", 1.0, 2, "f1")], None), ([("a", "2024-01", 1.0, 3, "f2")], None)],
        [("a", "2024-01", 1.0, 2, "f1")],
    ),
    # A key missing from the recomputed scope goes; other scopes stay as history.
    "scope-drops-keys-the-stage-no-longer-has": Case(
        SCOPED,
        [
            (
                [("a", "2024-01", 1.0, 1, "r1"), ("b", "2024-01", 2.0, 1, "r1")],
                {"month": "2024-01"},
            ),
            (
                [("a", "2024-02", 1.0, 2, "r2"), ("b", "2024-02", 2.0, 2, "r2")],
                {"month": "2024-02"},
            ),
            ([("a", "2024-02", 3.0, 3, "r3")], {"month": "2024-02"}),
        ],
        [
            ("a", "2024-01", 1.0, 1, "r1"),
            ("a", "2024-02", 3.0, 3, "r3"),
            ("b", "2024-01", 2.0, 1, "r1"),
        ],
    ),
    # A rolling window also replaces later values that no longer have any row.
    "since-scope-drops-vanished-later-partitions": Case(
        SCOPED,
        [
            (
                [
                    ("a", "2024-01", 1.0, 1, "r1"),
                    ("a", "2024-02", 2.0, 1, "r1"),
                    ("a", "2024-03", 3.0, 1, "r1"),
                ],
                {"month": Since("2024-01")},
            ),
            ([("b", "2024-02", 9.0, 2, "r2")], {"month": Since("2024-02")}),
        ],
        [("a", "2024-01", 1.0, 1, "r1"), ("b", "2024-02", 9.0, 2, "r2")],
    ),
    "scope-over-a-data-column": Case(
        UNPARTITIONED_SCOPE,
        [
            (
                [("a", "2024-01", 1.0, 1, "r1"), ("a", "2024-02", 2.0, 1, "r1")],
                {"month": Since("2024-01")},
            ),
            ([], {"month": "2024-02"}),
        ],
        [("a", "2024-01", 1.0, 1, "r1")],
    ),
    "overwrite-drops-vanished-partitions": Case(
        WHOLE,
        [
            ([("a", "2024-01", 1.0, 1, "r1"), ("b", "2024-02", 2.0, 1, "r1")], None),
            ([("a", "2024-01", 1.0, 2, "r2")], None),
        ],
        [("a", "2024-01", 1.0, 2, "r2")],
    ),
}


def _table(spark, cat: Catalog, spec: TableSpec) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(r) for r in cat.read(spark, spec).select("k", "month", "v", "seq", "src").collect()
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_write_modes_leave_no_stale_row(spark, tmp_path, case: Case) -> None:
    cat = Catalog(str(tmp_path / "lake"))
    for rows, scope in case.writes:
        cat.write(spark, case.spec, spark.createDataFrame(rows, ROW), scope=scope)
    assert _table(spark, cat, case.spec) == sorted(case.want)
    detail = DeltaTable.forPath(spark, cat.uri(case.spec)).detail().first()
    assert tuple(detail["partitionColumns"]) == case.spec.partition_by


RERUNS = {
    "insert-only": (INSERT_ONLY, None),
    "upsert": (UPSERT, None),
    "upsert-sequenced": (SEQUENCED, None),
    "replace-scope": (SCOPED, {"month": "2024-01"}),
    "overwrite": (WHOLE, None),
}


@pytest.mark.parametrize(("spec", "scope"), RERUNS.values(), ids=RERUNS.keys())
def test_rerun_of_the_same_batch_changes_no_row(spark, tmp_path, spec, scope) -> None:
    cat = Catalog(str(tmp_path / "lake"))
    rows = [("a", "2024-01", 1.0, 1, "f1"), ("b", "2024-01", 2.0, 1, "f1")]
    cat.write(spark, spec, spark.createDataFrame(rows, ROW), scope=scope)
    before = _table(spark, cat, spec)
    # The same batch again: a later ingest (sequence, lineage) of unchanged values.
    again = [(k, m, v, 2, "f2") for k, m, v, _, _ in rows] if spec.sequence_by else rows
    result = cat.write(spark, spec, spark.createDataFrame(again, ROW), scope=scope)
    assert _table(spark, cat, spec) == before
    if spec.mode in (_I, _U):  # a MERGE reports what it changed: nothing
        assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (0, 0, 0)


@pytest.mark.parametrize(
    ("spec", "scope", "error"),
    [
        (SCOPED, None, "give a value for each of \\['month'\\]"),
        (SCOPED, {"run_date": "2024-01"}, "give a value for each of"),
        (UPSERT, {"month": "2024-01"}, "written by upsert: it takes no scope"),
        (WHOLE, {"month": "2024-01"}, "written by overwrite: it takes no scope"),
    ],
    ids=["scope-missing", "scope-other-column", "scope-on-merge", "scope-on-overwrite"],
)
def test_write_refuses_a_scope_that_does_not_fit(spark, tmp_path, spec, scope, error) -> None:
    rows = spark.createDataFrame([("a", "2024-01", 1.0, 1, "f1")], ROW)
    with pytest.raises(ValueError, match=error):
        Catalog(str(tmp_path / "lake")).write(spark, spec, rows, scope=scope)


def test_a_row_outside_the_stated_scope_fails_the_write(spark, tmp_path) -> None:
    cat = Catalog(str(tmp_path / "lake"))
    cat.write(
        spark,
        SCOPED,
        spark.createDataFrame([("a", "2024-01", 1.0, 1, "r1")], ROW),
        scope={"month": "2024-01"},
    )
    stray = spark.createDataFrame([("a", "2024-02", 1.0, 2, "r2")], ROW)
    with pytest.raises(AnalysisException, match="DELTA_REPLACE_WHERE_MISMATCH"):
        cat.write(spark, SCOPED, stray, scope={"month": "2024-01"})
    assert _table(spark, cat, SCOPED) == [("a", "2024-01", 1.0, 1, "r1")]


@pytest.mark.parametrize(
    ("scope", "predicate"),
    [
        ({"run_date": dt.date(2024, 5, 1)}, "`run_date` = DATE'2024-05-01'"),
        ({"delivery_date": Since(dt.date(2024, 5, 1))}, "`delivery_date` >= DATE'2024-05-01'"),
        ({"delivery_date": Since(dt.date.min)}, "`delivery_date` >= DATE'0001-01-01'"),
        ({"at": dt.datetime(2024, 5, 1, 6, 30)}, "`at` = TIMESTAMP'2024-05-01 06:30:00'"),
        ({"run": "it's\\x"}, "`run` = 'it\\'s\\\\x'"),
        ({"b": 2, "a": Since(1.5)}, "`a` >= 1.5 AND `b` = 2"),
    ],
    ids=["date", "since-date", "since-every-date", "timestamp", "quoted-string", "two-columns"],
)
def test_scope_predicate(scope, predicate) -> None:
    assert C.scope_predicate(scope) == predicate


@pytest.mark.parametrize(
    ("scope", "error"),
    [({}, ValueError), ({"run_date": None}, TypeError), ({"x": float("nan")}, TypeError)],
    ids=["empty", "null", "nan"],
)
def test_scope_predicate_refuses_what_matches_nothing_or_everything(scope, error) -> None:
    with pytest.raises(error):
        C.scope_predicate(scope)


#: The derived tables kept by MERGE: history keyed by run, where a run restates its own rows.
RUN_HISTORY = {"gold.training_metrics", "gold.model_registry", "gold.model_evaluation"}


def test_every_derived_table_states_how_its_stale_rows_go() -> None:
    derived = {t.qualified: t for t in C.TABLES.values() if t.layer in ("silver", "gold")}
    merged = {n for n, t in derived.items() if t.mode in (_I, _U)}
    assert merged == RUN_HISTORY
    scoped = {n: t.scope_by for n, t in derived.items() if t.mode is _R}
    assert scoped == {
        "gold.forecasts": ("run_date",),
        "gold.forecast_metrics": ("run_date",),
        "gold.inventory_policy": ("run_date", "forecast_source"),
        "gold.policy_simulation": ("run_date", "forecast_source"),
        "gold.routes": ("delivery_date",),
        "gold.route_stops": ("delivery_date",),
        "gold.route_groups": ("delivery_date",),
        "gold.route_sketches": ("delivery_date",),
        "gold.unrouted_orders": ("delivery_date",),
        "gold.demand_predictions": ("origin",),
    }
    bronze = {t.name: (t.mode, t.sequence_by) for t in C.TABLES.values() if t.layer == "bronze"}
    restated = (_U, "_ingested_at")
    assert bronze == {
        "products": restated,
        "warehouses": restated,
        "customers": restated,
        "orders": restated,
        "order_lines": restated,
        "events": (_I, None),
        "inventory": (_I, None),
        "quarantine": (_I, None),
    }


# --------------------------------------------------------------------------------------
# End to end: the real stages on small inline bronze tables.
# --------------------------------------------------------------------------------------

WAREHOUSE = ("W1", "sao paulo", "SP", -23.55, -46.63, 50.0)


def _bronze(spark, cat: Catalog, name: str, rows: pd.DataFrame, *, at: dt.datetime) -> None:
    """Write rows into ``bronze.<name>`` as one ingest at ``at`` would (lineage included)."""
    frame = rows.assign(
        _source_file=f"{name}/inline", _ingest_run_id=f"run-{at:%H%M}", _ingested_at=at
    )
    cat.write(spark, f"bronze.{name}", spark.createDataFrame(frame))


def _orders(ids: list[str], days: list[dt.date], *, status: str = "delivered") -> pd.DataFrame:
    rng = np.random.default_rng(len(ids))
    ts = [dt.datetime.combine(d, dt.time(10)) for d in days]
    return pd.DataFrame(
        {
            "order_id": ids,
            "customer_id": "C1",
            "order_ts": ts,
            "warehouse_id": "W1",
            "lat": -23.55 + rng.uniform(-0.05, 0.05, len(ids)),
            "lon": -46.63 + rng.uniform(-0.05, 0.05, len(ids)),
            "status": status,
            "order_date": days,
            "order_month": [f"{d:%Y-%m}" for d in days],
        }
    )


def _lines(orders: pd.DataFrame, skus: list[str], quantities: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": orders["order_id"],
            "line_no": 1,
            "order_ts": orders["order_ts"],
            "sku": skus,
            "quantity": quantities,
            "unit_price": 10.0,
            "order_date": orders["order_date"],
            "order_month": orders["order_month"],
        }
    )


def _warehouses() -> pd.DataFrame:
    cols = ["warehouse_id", "city", "state", "lat", "lon", "service_radius_km"]
    return pd.DataFrame([WAREHOUSE], columns=cols)


def _read(spark, cat: Catalog, table: str) -> pd.DataFrame:
    return cat.read(spark, table).toPandas()


T0 = dt.datetime(2024, 6, 1, 8, 0)
SKUS = ["S1", "S2", "S3"]
START = dt.date(2024, 1, 1)
DAYS = 84


@pytest.fixture()
def demand_lake(spark, cfg):
    """Twelve weeks of daily sales of three SKUs at one warehouse, plus stock and prices."""
    cfg = dataclasses.replace(
        cfg,
        timeseries=dataclasses.replace(cfg.timeseries, max_series=0, horizon=7, backtest_folds=1),
        decisions=dataclasses.replace(cfg.decisions, simulation_weeks=2),
    )
    cat = Catalog(cfg.paths.lakehouse)
    rng = np.random.default_rng(11)
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    weekly = np.array([1.0, 1.1, 1.0, 0.9, 1.3, 1.6, 0.7])
    ids, order_days, skus, qty = [], [], [], []
    for s, base in zip(SKUS, (12, 8, 5), strict=True):
        for i, d in enumerate(days):
            ids.append(f"O-{s}-{i}")
            order_days.append(d)
            skus.append(s)
            qty.append(int(max(1, rng.poisson(base * weekly[i % 7]))))
    orders = _orders(ids, order_days)
    _bronze(spark, cat, "warehouses", _warehouses(), at=T0)
    _bronze(spark, cat, "orders", orders, at=T0)
    _bronze(spark, cat, "order_lines", _lines(orders, skus, qty), at=T0)
    last = days[-1]
    stock = pd.DataFrame(
        {
            "snapshot_date": last,
            "sku": SKUS,
            "warehouse_id": "W1",
            "on_hand": 40,
            "on_order": 0,
            "snapshot_month": f"{last:%Y-%m}",
        }
    )
    _bronze(spark, cat, "inventory", stock, at=T0)
    products = pd.DataFrame({"sku": SKUS, "category": "toys", "unit_price": 10.0, "weight_kg": 0.5})
    _bronze(spark, cat, "products", products, at=T0)
    return cfg, cat


def _of_run(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    cols = [c for c in df.columns if c != "run_id"]
    return df[cols].sort_values(keys).reset_index(drop=True)


def test_forecasts_and_policy_of_a_dropped_series_go(spark, demand_lake) -> None:
    from shikong.stages import demand_series, forecast_arima, inventory_policy

    cfg, cat = demand_lake
    demand_series.run(StageContext.create(spark, cfg))
    forecast_arima.run(StageContext.create(spark, cfg))
    inventory_policy.run(StageContext.create(spark, cfg))
    tables = {
        "gold.forecasts": ["series_id", "ds"],
        "gold.forecast_metrics": ["series_id", "fold", "model"],
        "gold.inventory_policy": ["sku", "warehouse_id"],
        "gold.policy_simulation": ["sku", "warehouse_id", "policy"],
    }
    first = {t: _read(spark, cat, t) for t in tables}
    assert {t: sorted(set(f["run_date"])) for t, f in first.items()} == {
        t: [START + dt.timedelta(days=DAYS)] for t in tables
    }

    # S3 drops out of the series (e.g. delisted): only S1 and S2 are recomputed.
    series = _read(spark, cat, "silver.sku_daily")
    kept = series[series["sku"] != "S3"]
    cat.write(
        spark,
        "silver.sku_daily",
        spark.createDataFrame(kept, cat.read(spark, "silver.sku_daily").schema),
    )
    forecast_arima.run(StageContext.create(spark, cfg))
    inventory_policy.run(StageContext.create(spark, cfg))

    dropped = set(series.loc[series["sku"] == "S3", "series_id"])
    for table, keys in tables.items():
        now = _read(spark, cat, table)
        before = first[table]
        gone = before["sku"].eq("S3") if "sku" in before else before["series_id"].isin(dropped)
        assert gone.any(), table  # the first run did cover S3
        want = _of_run(before[~gone], ["run_date", *keys])
        pd.testing.assert_frame_equal(_of_run(now, ["run_date", *keys]), want, obj=table)


ROUTE_TABLES = ("gold.routes", "gold.route_stops", "gold.route_groups", "gold.unrouted_orders")


def _routed(spark, cat: Catalog) -> dict[str, list[dt.date]]:
    return {t: sorted(set(_read(spark, cat, t)["delivery_date"])) for t in ROUTE_TABLES}


def test_routes_of_a_vanished_delivery_date_go_and_older_dates_stay(spark, cfg) -> None:
    from shikong.stages import delivery_routes

    cfg = dataclasses.replace(
        cfg, decisions=dataclasses.replace(cfg.decisions, route_time_limit_s=1.0)
    )
    cat = Catalog(cfg.paths.lakehouse)
    d = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(5)]
    order_days = [d[i] for i in range(4) for _ in range(3)]
    orders = _orders([f"O{i}" for i in range(len(order_days))], order_days)
    # Two small orders a day and one no vehicle can carry (it goes to unrouted_orders).
    units = [5, 5, 500] * 4
    _bronze(spark, cat, "warehouses", _warehouses(), at=T0)
    _bronze(spark, cat, "orders", orders, at=T0)
    _bronze(spark, cat, "order_lines", _lines(orders, ["S1"] * len(orders), units), at=T0)

    def route(days: int = 2) -> dict[str, list[dt.date]]:
        delivery_routes.run(StageContext.create(spark, cfg), days=days)
        stops = pd.concat(
            [_read(spark, cat, t)[["delivery_date", "order_id"]] for t in ROUTE_TABLES[1::2]]
        )
        active = _read(spark, cat, "bronze.orders").query("status != 'canceled'")
        want = active[active["order_date"].isin(set(stops["delivery_date"]))]
        assert sorted(stops["order_id"]) == sorted(want["order_id"])
        return _routed(spark, cat)

    assert route() == {t: d[2:4] for t in ROUTE_TABLES}
    # Every order of the last day is cancelled upstream (a later ingest restates them):
    # the window moves back a day and the last day keeps no route.
    last_day = orders[orders["order_date"] == d[3]]
    _bronze(spark, cat, "orders", last_day.assign(status="canceled"), at=T0 + dt.timedelta(hours=1))
    assert route() == {t: d[1:3] for t in ROUTE_TABLES}
    # New orders on a fifth day: the window is the last two days, the earlier ones stay.
    fifth = _orders(["O-new-1", "O-new-2"], [d[4], d[4]])
    later = T0 + dt.timedelta(hours=2)
    _bronze(spark, cat, "orders", fifth, at=later)
    _bronze(spark, cat, "order_lines", _lines(fifth, ["S1", "S1"], [4, 500]), at=later)
    assert route() == {t: [d[1], d[2], d[4]] for t in ROUTE_TABLES}
    # Without a window every day is routed and replaced (the cancelled day has no route).
    assert route(days=0) == {t: [d[0], d[1], d[2], d[4]] for t in ROUTE_TABLES}
