"""``shikong forget``: erase customers on request (LGPD art. 18, README "Privacy").

For each erased customer the stage removes, in one pass:

* every catalogued table's rows of the customer: by raw id where the table is restricted
  (bronze, silver working tables), by pseudonym where a published table carries one
  (``gold.customer_clusters``, ``gold.recommendations``; pseudonyms of the ids as stored,
  whatever the request's case), the rows of the customer's orders (accepted or
  quarantined) wherever a table has ``order_id``, and the routes through their stops
  (``gold.routes``: a line through exact addresses);
* quarantined raw rows whose JSON holds the customer's id or one of the customer's order
  ids (as a whole token);
* the same records from the landing files (ingest re-reads them every run: kept, they
  would bring the customer back) and the customer's rows from the training and serving
  shards;
* Spark checkpoints of earlier sessions (copies of intermediate frames; no run is using
  them while the lakehouse lock is held).

Then the tables holding customer data are purged of deletion vectors and vacuumed with
``privacy.vacuum_retention_hours``: the files of earlier versions stay readable that long
(time travel), and a later ``shikong forget --vacuum`` removes them once it has passed.
Aggregates (grid counts, forecasts) are not rewritten: they hold no customer row, and the
next run recomputes them without the customer.

The request is recorded in ``ops.erasure_log`` per table, and logged, by the customers'
pseudonyms only: the raw ids never reach a log line, a table or a query's text.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shikong.ingest.olist import LAYER as OLIST_LAYER
from shikong.io import delta, erasure, fs
from shikong.io.catalog import TABLES, TableSpec, spec, stats_columns
from shikong.privacy import pseudonym
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)

#: Columns that tie a row to a customer: the id itself, an order's id, a raw rejected row.
_PERSONAL = ("customer_id", "order_id", "raw", "route_id")


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure request removed.

    Attributes:
        request_id: Id of the request (``ops.erasure_log``).
        customers: Customers erased.
        orders: Their orders found in bronze.
        rows: Rows deleted per table, records per landing file, rows per shard file.
        files_vacuumed: Data files VACUUM removed per table.
    """

    request_id: str
    customers: int
    orders: int
    rows: dict[str, int] = field(default_factory=dict)
    files_vacuumed: dict[str, int] = field(default_factory=dict)


def pseudonyms(ids: Iterable[str], key: bytes) -> list[str]:
    """The HMAC-SHA256 pseudonyms of ``ids`` (as :func:`shikong.privacy.pseudonymise`)."""
    return sorted({pseudonym(i, key) for i in ids})


def _ids_frame(ctx: StageContext, values: Sequence[str]) -> DataFrame:
    return ctx.spark.createDataFrame([(v,) for v in values], "v string")


def _tables() -> list[TableSpec]:
    """Every catalogued table, and the bronze tables of the Olist layer too."""
    olist = [t.in_layer(OLIST_LAYER) for t in TABLES.values() if t.layer == "bronze"]
    return [*TABLES.values(), *olist]


def _personal_tables(ctx: StageContext) -> list[tuple[TableSpec, set[str]]]:
    out = []
    for t in _tables():
        if ctx.catalog.exists(ctx.spark, t):
            df = ctx.catalog.read(ctx.spark, t)
            cols = set(df.columns) & set(_PERSONAL)
            if cols:
                out.append((t, cols))
                # A table from before statistics were restricted: from now on restricted.
                stats = stats_columns(df, t.partition_by)
                if stats is not None:
                    delta.restrict_stats(ctx.spark, ctx.catalog.uri(t), stats)
    return out


@dataclass(frozen=True)
class _Linked:
    """What ties rows to the erased customers besides the ids as given."""

    spellings: list[str]  # the ids as stored (case, spaces): what the pseudonyms are of
    orders: list[str]  # their orders' ids, accepted or quarantined
    routes: list[str]  # the routes through their stops (lines through exact addresses)


def _linked(ctx: StageContext, ids: DataFrame) -> _Linked:
    spellings: set[str] = set()
    orders: set[str] = set()

    def match(df: DataFrame, col: Column) -> DataFrame:
        return df.join(ids, F.lower(F.trim(col)) == F.lower(ids["v"]), "left_semi")

    for name in ("customers", "orders", "events"):
        for t in (spec(f"bronze.{name}"), spec(f"bronze.{name}").in_layer(OLIST_LAYER)):
            df = ctx.catalog.read_if_exists(ctx.spark, t)
            if df is None:
                continue
            hits = match(df, df["customer_id"])
            spellings |= {r[0] for r in hits.select("customer_id").distinct().collect()}
            if name == "orders":
                orders |= {r[0] for r in hits.select("order_id").distinct().collect()}
    geo = ctx.catalog.read_if_exists(ctx.spark, "silver.orders_geo")
    if geo is not None:
        orders |= {r[0] for r in match(geo, geo["customer_id"]).select("order_id").collect()}
    quarantine = ctx.catalog.read_if_exists(ctx.spark, "bronze.quarantine")
    if quarantine is not None:
        rejected = match(quarantine, F.get_json_object("raw", "$.customer_id"))
        orders |= {
            r[0] for r in rejected.select(F.get_json_object("raw", "$.order_id")).collect() if r[0]
        }
    routes: set[str] = set()
    stops = ctx.catalog.read_if_exists(ctx.spark, "gold.route_stops")
    if stops is not None and orders:
        on = stops.join(_ids_frame(ctx, sorted(orders)), stops["order_id"] == F.col("v"))
        routes = {r[0] for r in on.select("route_id").distinct().collect()}
    return _Linked(sorted(spellings), sorted(orders), sorted(routes))


def _delete(ctx: StageContext, t: TableSpec, cols: set[str], sources: dict[str, DataFrame]) -> int:
    uri, n = ctx.catalog.uri(t), 0
    if "customer_id" in cols:
        pseudonymised = t.protection is not None and "customer_id" in t.protection.pseudonymised
        if pseudonymised:
            n += delta.delete_matching(ctx.spark, uri, sources["pseudonyms"], "t.customer_id = s.v")
        else:
            cond = "lower(trim(t.customer_id)) = lower(s.v)"
            n += delta.delete_matching(ctx.spark, uri, sources["ids"], cond)
    if "order_id" in cols:
        n += delta.delete_matching(ctx.spark, uri, sources["orders"], "t.order_id = s.v")
    if t.qualified == "gold.routes":
        n += delta.delete_matching(ctx.spark, uri, sources["routes"], "t.route_id = s.v")
    if "raw" in cols:
        # A regex per token: the whole token, case-insensitively, anywhere in the raw JSON.
        cond = "t.raw RLIKE concat('(?i)(?<![A-Za-z0-9_-])', s.p, '(?![A-Za-z0-9_-])')"
        n += delta.delete_matching(ctx.spark, uri, sources["tokens"], cond)
    return n


def _delete_old_checkpoints(ctx: StageContext) -> None:
    """Remove the checkpoints of earlier sessions (this session's own folder stays)."""
    root = ctx.cfg.checkpoint_location
    try:
        live = ctx.spark.sparkContext.getCheckpointDir() or ""
    except Exception:  # Spark Connect: no SparkContext; its server owns a live folder too
        live = ""
    for name in fs.listdir(root):
        if not live.rstrip("/").endswith(f"/{name}"):
            fs.delete(fs.join(root, name))


def vacuum(ctx: StageContext, tables: Iterable[TableSpec] | None = None) -> dict[str, int]:
    """Purge and vacuum the tables holding customer data (all of them by default)."""
    hours = ctx.cfg.privacy.vacuum_retention_hours
    chosen = list(tables) if tables is not None else [t for t, _ in _personal_tables(ctx)]
    return {
        t.qualified: delta.purge_and_vacuum(ctx.spark, ctx.catalog.uri(t), retain_hours=hours)
        for t in chosen
    }


def run(ctx: StageContext, *, customer_ids: Sequence[str]) -> ErasureReport:
    """Erase ``customer_ids`` from the lakehouse, then vacuum (see the module docstring).

    Raises:
        ValueError: When no id is given.
    """
    ids = sorted({i.strip() for i in customer_ids if i and i.strip()})
    if not ids:
        raise ValueError("forget: no customer id given (--customer ID or --customers-file)")
    request = uuid.uuid4().hex
    ids_df = _ids_frame(ctx, ids)
    linked = _linked(ctx, ids_df)
    orders = linked.orders
    # Pseudonyms of the ids as stored: a request may spell an id in another case.
    named = pseudonyms({*ids, *linked.spellings}, ctx.pseudonym_key)
    log.info(
        "forget: request %s, %d customer(s), pseudonyms %s",
        request,
        len(ids),
        ", ".join(p[:12] for p in named[:5]) + (" ..." if len(named) > 5 else ""),
    )
    tokens = sorted({*ids, *orders})
    sources = {
        "ids": ids_df,
        "pseudonyms": _ids_frame(ctx, named),
        "orders": _ids_frame(ctx, orders),
        "routes": _ids_frame(ctx, linked.routes),
        "tokens": ctx.spark.createDataFrame([(re.escape(v),) for v in tokens], "p string"),
    }
    report = ErasureReport(request, len(ids), len(orders))
    personal = _personal_tables(ctx)
    # Files first: were the run to stop halfway, the next ingest could not restore the
    # customer from landing, and running the request again finishes it.
    with step("forget: landing files and shards") as done:
        files = {
            "landing": erasure.erase_from_files(
                ctx.cfg.paths.landing_dir, column="customer_id", ids=tokens
            ),
            "ml/training_data": erasure.erase_from_files(
                ctx.catalog.location("ml", "training_data"), column="customer_id", ids=ids
            ),
        }
        for where, per_file in files.items():
            for name, n in per_file.items():
                report.rows[f"{where}/{name}"] = n
        _delete_old_checkpoints(ctx)
        done(sum(n for per in files.values() for n in per.values()))
    with step("forget: tables") as done:
        for t, cols in personal:
            report.rows[t.qualified] = _delete(ctx, t, cols, sources)
        done(sum(report.rows[t.qualified] for t, _ in personal))
    with step("forget: vacuum") as done:
        report.files_vacuumed.update(vacuum(ctx, [t for t, _ in personal]))
        done(sum(report.files_vacuumed.values()))
    _record(ctx, report, named)
    return report


def _record(ctx: StageContext, report: ErasureReport, named: Sequence[str]) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        (
            report.request_id,
            ctx.run_id,
            where,
            int(n),
            int(report.files_vacuumed.get(where, 0)),
            report.customers,
            list(named),
            ctx.cfg.privacy.vacuum_retention_hours,
            now,
        )
        for where, n in sorted(report.rows.items())
    ]
    schema = (
        "request_id string, run_id string, table string, rows_removed long, "
        "files_vacuumed long, customers int, customer_pseudonyms array<string>, "
        "vacuum_retention_hours int, erased_at timestamp"
    )
    ctx.catalog.write(ctx.spark, "ops.erasure_log", ctx.spark.createDataFrame(rows, schema))
