"""``shikong forget`` on a copy of the small world after every stage (README "Privacy").

Two customers are erased: one with a quarantined raw row, one with recommendations and
serving shards. Afterwards neither id (nor an id of their orders, nor their pseudonym)
is in the current version of any table, nor in any data file under the lakehouse (Parquet
read back with pyarrow, text files as bytes), and the next ingest does not bring them back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from shikong.config import Paths
from shikong.io.catalog import NO_STATS_COLUMNS, TABLES, Catalog
from shikong.secrets import DEVELOPMENT_KEY
from shikong.stages import forget


def _strings(df):
    """Every string value of every string column (top level) of a Spark frame."""
    cols = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    if not cols:
        return df.sparkSession.createDataFrame([], "v string")
    return df.select(F.explode(F.array(*cols)).alias("v")).where(F.col("v").isNotNull())


def _holders(spark, cat: Catalog, needles: set[str]) -> dict[str, int]:
    """Per table: rows of its current version holding a needle (anywhere in a string)."""
    found = {}
    pattern = "|".join(re.escape(n) for n in sorted(needles))
    for t in TABLES.values():
        if cat.exists(spark, t):
            n = _strings(cat.read(spark, t)).where(F.col("v").rlike(pattern)).count()
            if n:
                found[t.qualified] = n
    return found


def _logged_statistics(root: Path) -> set[str]:
    """Every column some Delta log under ``root`` keeps a min/max of."""
    cols: set[str] = set()
    for f in root.rglob("_delta_log/*.json"):
        for line in f.read_text().splitlines():
            add = json.loads(line).get("add") or {}
            if add.get("stats"):
                stats = json.loads(add["stats"])
                cols |= set(stats.get("minValues", {})) | set(stats.get("maxValues", {}))
    assert cols, "no statistics at all: the check would be empty"
    return cols


def _parquet_holds(path: Path, pattern: str) -> bool:
    table = pq.read_table(path)
    for col in table.columns:
        while pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = pc.list_flatten(col)
        text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        if text and pc.any(pc.match_substring_regex(col, pattern)).as_py():
            return True
    return False


def _files_holding(root: Path, needles: set[str], *, log: bool) -> list[str]:
    """Files under ``root`` holding a needle: Parquet decoded, everything else as bytes.
    ``log``: the Delta logs (``_delta_log``) instead of the data files."""
    hits = []
    raw = [n.encode() for n in needles]
    pattern = "|".join(re.escape(n) for n in sorted(needles))
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        if ("_delta_log" in f.parts) != log:
            continue
        if f.suffix == ".parquet":
            held = _parquet_holds(f, pattern)
        else:
            data = f.read_bytes()
            held = any(n in data for n in raw)
        if held:
            hits.append(str(f.relative_to(root)))
    return hits


@pytest.fixture(scope="module")
def erased(spark, ml, tmp_path_factory):
    src = Path(ml["cfg"].paths.lakehouse)
    copy = tmp_path_factory.mktemp("forget") / "lakehouse"
    shutil.copytree(src, copy)
    privacy = dataclasses.replace(ml["cfg"].privacy, vacuum_retention_hours=0)
    cfg = dataclasses.replace(ml["cfg"], paths=Paths(lakehouse=str(copy)), privacy=privacy)
    cat = Catalog(cfg.paths.lakehouse)
    customers = {r[0] for r in cat.read(spark, "bronze.customers").select("customer_id").collect()}
    # One customer with a quarantined raw row, one with recommendations (pseudonymised).
    quarantined = sorted(
        {
            r[0]
            for r in cat.read(spark, "bronze.quarantine")
            .select(F.get_json_object("raw", "$.customer_id"))
            .collect()
        }
        & customers
    )
    by_pseudonym = {p: c for c in customers for p in forget.pseudonyms([c], DEVELOPMENT_KEY)}
    recommended = sorted(
        by_pseudonym[r[0]]
        for r in cat.read(spark, "gold.recommendations").select("customer_id").distinct().collect()
    )
    stops = cat.read(spark, "gold.route_stops").select("order_id")
    routed = {
        r[0]
        for r in cat.read(spark, "bronze.orders")
        .join(stops, "order_id")
        .select("customer_id")
        .collect()
    }
    both = [c for c in recommended if c in routed and c != quarantined[0]]
    assert quarantined and both
    ids = [quarantined[0], both[0]]
    orders = {
        r[0]
        for r in cat.read(spark, "bronze.orders")
        .where(F.col("customer_id").isin(ids))
        .select("order_id")
        .collect()
    }
    # Their rejected orders too: the quarantine keeps them as raw JSON.
    orders |= {
        r[0]
        for r in cat.read(spark, "bronze.quarantine")
        .where(F.get_json_object("raw", "$.customer_id").isin(ids))
        .select(F.get_json_object("raw", "$.order_id"))
        .collect()
        if r[0]
    }
    needles = {*ids, *orders, *forget.pseudonyms(ids, DEVELOPMENT_KEY)}
    routes = {
        r[0]
        for r in cat.read(spark, "gold.route_stops")
        .where(F.col("order_id").isin(sorted(orders)))
        .select("route_id")
        .collect()
    }
    before = _holders(spark, cat, needles)
    shards_before = _files_holding(copy / "ml" / "training_data", set(ids), log=False)
    from shikong.stages.context import StageContext

    ctx = StageContext.create(spark, cfg)
    records: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("shikong")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # every record of the run, whatever the root's level
    try:
        # Spelt otherwise (case, spaces) and repeated: the same two customers.
        report = forget.run(ctx, customer_ids=[f" {ids[0].lower()} ", ids[1], ids[1]])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return {
        "cfg": cfg,
        "ids": ids,
        "orders": orders,
        "routes": routes,
        "needles": needles,
        "before": before,
        "shards_before": shards_before,
        "report": report,
        "logged": "\n".join(records),
    }


def test_the_customers_were_everywhere_before(erased) -> None:
    before = erased["before"]
    for table in (
        "bronze.customers",
        "bronze.orders",
        "bronze.order_lines",
        "bronze.quarantine",
        "silver.customers_geo",
        "silver.orders_geo",
        "gold.customer_clusters",
        "gold.recommendations",
        "gold.buyer_probability",
    ):
        assert before.get(table, 0) > 0, table
    assert erased["shards_before"], "no training or serving shard held the customers"
    assert erased["orders"]


def test_no_current_table_holds_them(spark, erased) -> None:
    cat = Catalog(erased["cfg"].paths.lakehouse)
    assert _holders(spark, cat, erased["needles"]) == {}
    # The routes through their stops (lines through exact addresses) are gone too.
    assert erased["routes"]
    left = cat.read(spark, "gold.routes").where(F.col("route_id").isin(sorted(erased["routes"])))
    assert left.count() == 0
    report = erased["report"]
    assert report.customers == 2 and report.orders == len(erased["orders"])
    # Every table that held them lost rows (the table counts above are an upper bound:
    # a row can hold a customer's id and an order's).
    for table in erased["before"]:
        assert report.rows.get(table, 0) > 0, table


@pytest.mark.parametrize("log", [False, True], ids=["data-files", "delta-logs"])
def test_no_file_holds_them(erased, log: bool) -> None:
    """Raw ids and order ids nowhere; pseudonyms only in the erasure log, which keeps them
    (with no raw id) so a request can be audited. The Delta logs hold no min/max of an id
    column (``catalog.NO_STATS_COLUMNS``)."""
    root = Path(erased["cfg"].paths.lakehouse)
    if log:
        assert _logged_statistics(root) & set(NO_STATS_COLUMNS) == set()
    raw = {*erased["ids"], *erased["orders"]}
    assert _files_holding(root, raw, log=log) == []
    named = erased["needles"] - raw
    outside = [
        f for f in _files_holding(root, named, log=log) if not f.startswith("ops/erasure_log/")
    ]
    assert outside == []


def test_the_erasure_is_logged_by_pseudonym_only(spark, erased) -> None:
    cfg = erased["cfg"]
    log = Catalog(cfg.paths.lakehouse).read(spark, "ops.erasure_log")
    rows = log.where(F.col("request_id") == erased["report"].request_id).toPandas()
    assert rows["rows_removed"].sum() == sum(erased["report"].rows.values())
    # The ids as stored and as asked for (the first was asked for in lower case).
    asked = [*erased["ids"], erased["ids"][0].lower()]
    assert set(rows["customer_pseudonyms"].iloc[0]) == set(
        forget.pseudonyms(asked, DEVELOPMENT_KEY)
    )
    assert not set(erased["ids"]) & set(_strings(log).toPandas()["v"])
    assert "forget: request" in erased["logged"]
    assert not any(i in erased["logged"] for i in (*erased["ids"], *erased["orders"]))


def test_the_next_ingest_does_not_bring_them_back(spark, erased) -> None:
    from shikong.stages.context import StageContext
    from shikong.stages.ingest import ingest_landing

    cfg = erased["cfg"]
    reports = ingest_landing(StageContext.create(spark, cfg))
    assert all(r.rows_in == r.rows_accepted + r.rows_rejected for r in reports)
    cat = Catalog(cfg.paths.lakehouse)
    bronze = {t for t in _holders(spark, cat, erased["needles"]) if t.startswith("bronze")}
    assert bronze == set()
