"""Job ``ingest``: landing files -> validated bronze Delta tables + quarantine + run log.

Rows in = rows accepted + rows quarantined, per file, always; the job checks this against
an independent count of the raw files and fails loudly if it ever does not hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong import schemas as S
from shikong.config import AppConfig
from shikong.ingest.landing import landing_sources, read_landing
from shikong.ingest.validate import (
    REASON,
    SOURCE_FILE,
    SPECS,
    accepted_rows,
    classify,
    quarantined_rows,
)
from shikong.io.delta import merge_into, table_exists
from shikong.jobs.common import RunLogEntry, job_main, new_run_id, stage, write_run_log

log = logging.getLogger(__name__)

QUARANTINE_KEYS = ("source", "source_file", "row_hash", "occurrence")


class ReconciliationError(RuntimeError):
    """Rows in != rows accepted + rows quarantined for some file."""


@dataclass(frozen=True)
class SourceReport:
    """Outcome of ingesting one source."""

    source: str
    rows_in: int
    rows_accepted: int
    rows_rejected: int
    rows_inserted: int
    table: str


def _reference_sets(spark: SparkSession, cfg: AppConfig, layer: str) -> dict[str, DataFrame]:
    """Known keys for referential checks, from the bronze tables written so far."""
    refs: dict[str, DataFrame] = {}
    for name, table, key in (
        ("sku", "products", "sku"),
        ("customers", "customers", "customer_id"),
        ("warehouses", "warehouses", "warehouse_id"),
    ):
        path = cfg.paths.table(layer, table)
        if table_exists(spark, path):
            refs[name] = spark.read.format("delta").load(path).select(key)
        else:
            refs[name] = spark.createDataFrame([], f"{key} string")
    return refs


def ingest_source(
    spark: SparkSession,
    cfg: AppConfig,
    raw: DataFrame,
    source: S.LandingSource,
    *,
    run_id: str,
    layer: str = "bronze",
) -> tuple[SourceReport, list[RunLogEntry]]:
    """Validate one source's raw rows and write bronze, quarantine and reconciliation.

    Args:
        spark: Session.
        cfg: Configuration.
        raw: All-string rows with ``_source_file`` (from :func:`read_landing` or an adapter).
        source: Which source.
        run_id: This run's id.
        layer: Lakehouse layer of the bronze tables (``bronze``, ``bronze_olist``...).

    Returns:
        The source report and one run-log entry per file.

    Raises:
        ReconciliationError: If any file's rows do not reconcile.
    """
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    spec = SPECS[source.name]
    classified = classify(
        raw,
        spec,
        refs=_reference_sets(spark, cfg, layer),
        valid_from=cfg.ingest.valid_from,
        valid_to=cfg.ingest.valid_to,
    ).persist(StorageLevel.MEMORY_AND_DISK)
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
        # Independent count straight from the raw input: nothing may vanish in between.
        rows_in = {
            r[SOURCE_FILE]: int(r["n"])
            for r in raw.groupBy(SOURCE_FILE).agg(F.count(F.lit(1)).alias("n")).collect()
        }
        bad = {
            f: (n, per_file.get(f, (0, 0)))
            for f, n in rows_in.items()
            if n != sum(per_file.get(f, (0, 0)))
        }
        if bad or set(per_file) - set(rows_in):
            raise ReconciliationError(f"{source.name}: rows in != accepted + quarantined for {bad}")

        table = cfg.paths.table(layer, source.name)
        written = merge_into(
            spark,
            accepted_rows(classified, spec, run_id=run_id),
            table,
            keys=source.keys,
            partition_by=spec.partition_by,
            update_matched=False,
        )
        merge_into(
            spark,
            quarantined_rows(classified, spec, run_id=run_id),
            cfg.paths.table(layer, "quarantine"),
            keys=QUARANTINE_KEYS,
            partition_by=("source",),
            update_matched=False,
        )
    finally:
        classified.unpersist()

    ended = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    entries = [
        RunLogEntry(
            "ingest",
            run_id,
            source.name,
            f,
            started,
            ended,
            n,
            per_file[f][0],
            per_file[f][1],
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
        table,
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


def ingest_frames(
    spark: SparkSession,
    cfg: AppConfig,
    frames: Mapping[str, DataFrame],
    *,
    run_id: str,
    layer: str,
) -> list[SourceReport]:
    """Ingest raw frames per source name (in catalogue-first order) and log the run."""
    reports: list[SourceReport] = []
    entries: list[RunLogEntry] = []
    for source in S.SOURCES:
        if source.name not in frames:
            continue
        with stage(f"ingest {source.name}") as done:
            report, file_entries = ingest_source(
                spark, cfg, frames[source.name], source, run_id=run_id, layer=layer
            )
            done(report.rows_in)
        reports.append(report)
        entries.extend(file_entries)
    write_run_log(spark, cfg, entries)
    return reports


def run_ingest(
    spark: SparkSession,
    cfg: AppConfig,
    *,
    sources: Sequence[str] | None = None,
    run_id: str | None = None,
) -> list[SourceReport]:
    """Ingest the generated landing files of ``cfg.paths.landing_dir`` into ``bronze``."""
    run_id = run_id or new_run_id()
    wanted = [s for s in S.SOURCES if sources is None or s.name in sources]
    present = landing_sources(spark, cfg.paths.landing_dir, tuple(wanted))
    for missing in sorted({s.name for s in wanted} - {s.name for s in present}):
        log.warning("no landing folder for %s under %s; skipped", missing, cfg.paths.landing_dir)
    wanted = present
    frames = {s.name: read_landing(spark, cfg.paths.landing_dir, s) for s in wanted}
    return ingest_frames(spark, cfg, frames, run_id=run_id, layer="bronze")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ingest job."""
    parser.add_argument(
        "--source",
        choices=("landing", "olist"),
        default="landing",
        help="landing: the generated/upstream landing files; olist: the real Olist files",
    )
    parser.add_argument(
        "--path", default=None, help="folder of the Olist CSV files (--source olist)"
    )
    parser.add_argument(
        "--municipalities",
        default=None,
        help="municipalities CSV used to place Olist cities (default: packaged resource)",
    )


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> list[SourceReport]:
    """Validate landing files into bronze Delta tables, quarantine and run log."""
    if args.source == "olist":
        from shikong.ingest.olist import run_olist_ingest

        if not args.path:
            raise SystemExit("shikong ingest: --path is required with --source olist")
        return run_olist_ingest(spark, cfg, args.path)
    return run_ingest(spark, cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("ingest", add_arguments, run, argv)
