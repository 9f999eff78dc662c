"""Stage ``ingest``: landing files (or the Olist files) -> bronze + quarantine + run log.

Rows in = rows accepted + rows quarantined, per file, always; the stage checks this
against an independent count of the raw files and fails loudly if it ever does not hold.
Rows in are counted from each file's own read, before any adapter join (Olist), so a join
that multiplies or drops rows cannot hide itself in the count.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shikong import schemas as S
from shikong.ingest.olist import LAYER as OLIST_LAYER
from shikong.ingest.olist import SOURCE_FILES as OLIST_SOURCE_FILES
from shikong.ingest.olist import olist_frames
from shikong.ingest.validate import (
    REASON,
    SOURCE_FILE,
    SPECS,
    accepted_rows,
    classify,
    quarantined_rows,
)
from shikong.io import catalog as C
from shikong.io import delta, world
from shikong.io.landing import landing_sources, olist_files, read_landing, read_olist
from shikong.io.reference import municipality_lookup
from shikong.io.runlog import RunLogEntry, write_run_log
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)


class ReconciliationError(RuntimeError):
    """Rows in != rows accepted + rows quarantined for some file."""


class NoLandingFilesError(RuntimeError):
    """The landing folder holds no file of any source."""


@dataclass(frozen=True)
class SourceReport:
    """Outcome of ingesting one source."""

    source: str
    rows_in: int
    rows_accepted: int
    rows_rejected: int
    rows_inserted: int
    table: str


@dataclass(frozen=True)
class RawSource:
    """One source's raw rows and its rows in, counted apart from them.

    Attributes:
        rows: All-string rows in the landing contract's columns, with ``_source_file``
            (from :func:`read_landing` or an adapter).
        rows_in: Records per source file, counted from the file's own read before any
            join (a file without records counts 0).
    """

    rows: DataFrame
    rows_in: Mapping[str, int]


def records_per_file(read: DataFrame, *, files: Iterable[str] = ()) -> dict[str, int]:
    """Records per ``_source_file`` of a raw read; ``files`` without any record count 0."""
    counts = {
        r[SOURCE_FILE]: int(r["n"])
        for r in read.groupBy(SOURCE_FILE).agg(F.count(F.lit(1)).alias("n")).collect()
    }
    return {**dict.fromkeys(files, 0), **counts}


def _table(name: str, layer: str) -> C.TableSpec:
    return C.spec(f"bronze.{name}").in_layer(layer)


def _reference_sets(ctx: StageContext, layer: str) -> dict[str, DataFrame]:
    """Known keys for referential checks, from the bronze tables written so far."""
    refs: dict[str, DataFrame] = {}
    for name, table, key in (
        ("sku", "products", "sku"),
        ("customers", "customers", "customer_id"),
        ("warehouses", "warehouses", "warehouse_id"),
    ):
        df = ctx.catalog.read_if_exists(ctx.spark, _table(table, layer))
        refs[name] = (
            df.select(key) if df is not None else ctx.spark.createDataFrame([], f"{key} string")
        )
    return refs


@dataclass(frozen=True)
class Txn:
    """An idempotent write's identity: a streaming query's id and its micro-batch id.

    Every table a batch writes records the pair; a replay of the batch writes nothing
    again (:func:`shikong.io.delta.idempotent_writes`).
    """

    app_id: str
    version: int


def ingest_source(
    ctx: StageContext,
    raw: RawSource,
    source: S.LandingSource,
    *,
    layer: str = "bronze",
    txn: Txn | None = None,
) -> tuple[SourceReport, list[RunLogEntry]]:
    """Validate one source's raw rows and write bronze, quarantine and reconciliation.

    Args:
        ctx: Stage context.
        raw: The source's raw rows and its rows in per file.
        source: Which source.
        layer: Lakehouse layer of the bronze tables (``bronze``, ``bronze_olist``...).
        txn: Make the bronze and quarantine writes idempotent for this streaming batch.

    Returns:
        The source report and one run-log entry per file.

    Raises:
        ReconciliationError: If any file's rows do not reconcile.
    """
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    spec = SPECS[source.name]
    ingest = ctx.cfg.ingest
    classified = classify(
        raw.rows,
        spec,
        refs=_reference_sets(ctx, layer),
        valid_from=ingest.valid_from,
        valid_to=ingest.valid_to,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    table = _table(source.name, layer)
    try:
        per_file = {
            r[SOURCE_FILE]: (int(r["accepted"]), int(r["rejected"]))
            for r in classified.groupBy(SOURCE_FILE)
            .agg(
                F.count(F.when(F.col(REASON).isNull(), 1)).alias("accepted"),
                F.count(F.when(F.col(REASON).isNotNull(), 1)).alias("rejected"),
            )
            .collect()
        }
        # Rows in were counted from the files themselves: nothing may vanish or appear
        # in between (an adapter join, the reader, validation).
        rows_in = dict(raw.rows_in)
        bad = {
            f: (rows_in.get(f, 0), per_file.get(f, (0, 0)))
            for f in rows_in.keys() | per_file.keys()
            if rows_in.get(f, 0) != sum(per_file.get(f, (0, 0)))
        }
        if bad:
            raise ReconciliationError(
                f"{source.name}: rows in != accepted + quarantined, "
                f"file: (rows in, (accepted, quarantined)) {dict(sorted(bad.items()))}"
            )

        with _idempotent(ctx, txn):
            written = ctx.catalog.write(
                ctx.spark, table, accepted_rows(classified, spec, run_id=ctx.run_id)
            )
            ctx.catalog.write(
                ctx.spark,
                _table("quarantine", layer),
                quarantined_rows(classified, spec, run_id=ctx.run_id),
            )
    finally:
        classified.unpersist()

    ended = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    entries = [
        RunLogEntry(
            "ingest",
            ctx.run_id,
            source.name,
            f,
            started,
            ended,
            n,
            per_file.get(f, (0, 0))[0],
            per_file.get(f, (0, 0))[1],
            "OK",
        )
        for f, n in sorted(rows_in.items())
    ]
    report = SourceReport(
        source.name,
        sum(rows_in.values()),
        sum(a for a, _ in per_file.values()),
        sum(r for _, r in per_file.values()),
        written.rows_inserted,
        ctx.catalog.uri(table),
    )
    log.info(
        "%s: %d in, %d accepted (%d new), %d quarantined",
        source.name,
        report.rows_in,
        report.rows_accepted,
        report.rows_inserted,
        report.rows_rejected,
    )
    return report, entries


def _idempotent(ctx: StageContext, txn: Txn | None) -> AbstractContextManager[None]:
    return delta.idempotent_writes(
        ctx.spark, txn.app_id if txn else None, txn.version if txn else 0
    )


def ingest_frames(
    ctx: StageContext,
    frames: Mapping[str, RawSource],
    *,
    layer: str,
    txn: Txn | None = None,
    expire: bool = True,
) -> list[SourceReport]:
    """Ingest raw sources per source name (in catalogue-first order) and log the run.

    The one code path of batch ingest and of each streaming micro-batch
    (:mod:`shikong.stages.stream`), which passes its ``txn`` (one source per batch: each
    table is written once under it) and expires the quarantine once per pass instead.
    """
    if txn is not None and len(frames) > 1:
        raise ValueError("an idempotent (streaming) batch ingests one source")
    reports: list[SourceReport] = []
    entries: list[RunLogEntry] = []
    for source in S.SOURCES:
        if source.name not in frames:
            continue
        with step(f"ingest {source.name}") as done:
            report, file_entries = ingest_source(
                ctx, frames[source.name], source, layer=layer, txn=txn
            )
            done(report.rows_in)
        reports.append(report)
        entries.extend(file_entries)
    with _idempotent(ctx, txn):
        write_run_log(ctx.spark, ctx.catalog, entries)
    if expire:
        expire_quarantine(ctx, layer=layer)
    return reports


def expire_quarantine(ctx: StageContext, *, layer: str = "bronze") -> int:
    """Erase the raw content of rows quarantined over ``privacy.quarantine_retention_days``
    ago; rows erased. The row itself (source, file, row hash, reason) stays: the counts
    still reconcile, and the same landing row read again is known and not re-quarantined.
    """
    t = _table("quarantine", layer)
    if not ctx.catalog.exists(ctx.spark, t):
        return 0
    days = ctx.cfg.privacy.quarantine_retention_days
    n = delta.clear_where(
        ctx.spark,
        ctx.catalog.uri(t),
        "raw",
        f"raw IS NOT NULL AND quarantined_at < current_timestamp() - INTERVAL {int(days)} DAYS",
    )
    if n:
        log.info("quarantine: raw content of %d rows older than %d days erased", n, days)
    return n


def landing_source(
    ctx: StageContext, source: S.LandingSource, files: Sequence[str] | None = None
) -> RawSource:
    """One source's landing files (all, or ``files``) as raw rows with their rows in."""
    read = read_landing(ctx.spark, ctx.cfg.paths.landing_dir, source, files)
    # The landing reader builds no joins: its rows are the files' records.
    return RawSource(read.rows, records_per_file(read.rows, files=read.files))


def ingest_landing(
    ctx: StageContext, *, sources: Sequence[str] | None = None
) -> list[SourceReport]:
    """Ingest the landing files of ``paths.landing`` into ``bronze``."""
    landing = ctx.cfg.paths.landing_dir
    wanted = tuple(s for s in S.SOURCES if sources is None or s.name in sources)
    present = landing_sources(landing, wanted)
    if not present:
        raise NoLandingFilesError(
            f"no landing files under {landing}: generate a world (`shikong generate`) "
            "or drop the upstream files there"
        )
    for missing in sorted({s.name for s in wanted} - {s.name for s in present}):
        log.warning("no landing folder for %s under %s; skipped", missing, landing)
    # A different generated world (or any, where the Olist data is) must not be mixed in.
    ident = world.landing_world(landing)
    world.check_landing(ctx.cfg.paths.lakehouse, ident)
    frames = {s.name: landing_source(ctx, s) for s in present}
    reports = ingest_frames(ctx, frames, layer="bronze")
    if ident is not None:
        world.record(ctx.cfg.paths.lakehouse, ident)
    return reports


def ingest_olist(ctx: StageContext, folder: str, *, layer: str = OLIST_LAYER) -> list[SourceReport]:
    """Ingest the Olist files in ``folder`` into ``layer``.

    Rows in of each source are the records of its own Olist file, counted on the file's
    read, not on the mapped frame the adapter's joins build. Into ``bronze`` (a lakehouse
    of its own, which every later stage then reads) the lakehouse records that it holds
    the Olist data, so a generated world is never mixed into it, nor it into one.
    """
    lakehouse = ctx.cfg.paths.lakehouse
    ident = world.olist(olist_files(folder))
    if layer == "bronze":
        world.check(lakehouse, ident)
    files = read_olist(ctx.spark, folder)
    mapped = olist_frames(files, lookup=municipality_lookup(ctx.spark))
    frames = {
        name: RawSource(rows, records_per_file(files[OLIST_SOURCE_FILES[name]]))
        for name, rows in mapped.items()
    }
    reports = ingest_frames(ctx, frames, layer=layer)
    if layer == "bronze":
        world.record(lakehouse, ident)
    return reports


def run(
    ctx: StageContext,
    *,
    source: str = "landing",
    path: str | None = None,
    layer: str | None = None,
) -> list[SourceReport]:
    """Validate landing files into bronze Delta tables, quarantine and run log.

    Args:
        ctx: Stage context.
        source: ``landing`` (the generated/upstream landing files) or ``olist``.
        path: Folder of the Olist CSV files (``source="olist"``).
        layer: Layer of the Olist tables: ``bronze_olist`` (default, beside a generated
            world) or ``bronze`` (a lakehouse of its own, read by the later stages).
    """
    if source == "olist":
        if not path:
            raise ValueError("ingest --source olist needs --path (the folder of the Olist CSVs)")
        return ingest_olist(ctx, path, layer=layer or OLIST_LAYER)
    if layer not in (None, "bronze"):
        raise ValueError(f"ingest --layer {layer}: the landing files go to bronze")
    return ingest_landing(ctx)
