"""The run log (``ops.run_log``): one reconciliation row per job, run and source file."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from shikong.io import fs
from shikong.io.catalog import Catalog

RUN_LOG = "ops.run_log"

RUN_LOG_SCHEMA = T.StructType(
    [
        T.StructField("job", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("ended_at", T.TimestampType(), False),
        # Null on a job's own status row (source and file "*"): it reconciles no file.
        T.StructField("rows_in", T.LongType(), True),
        T.StructField("rows_accepted", T.LongType(), True),
        T.StructField("rows_rejected", T.LongType(), True),
        T.StructField("status", T.StringType(), False),
        T.StructField("error", T.StringType(), True),
    ]
)

#: Status of a job's own row: STARTED when it begins, then SUCCEEDED or FAILED.
STARTED, SUCCEEDED, FAILED = "STARTED", "SUCCEEDED", "FAILED"
#: ``source`` and ``source_file`` of a job's own status row.
WHOLE_JOB = "*"


@dataclass(frozen=True)
class RunLogEntry:
    """One row of the run log: a file's reconciliation, or a job's status (``*``, ``*``)."""

    job: str
    run_id: str
    source: str
    source_file: str
    started_at: dt.datetime
    ended_at: dt.datetime
    rows_in: int | None
    rows_accepted: int | None
    rows_rejected: int | None
    status: str
    error: str | None = None


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def write_run_log(spark: SparkSession, catalog: Catalog, entries: Sequence[RunLogEntry]) -> None:
    """MERGE entries into ``ops.run_log`` (on job, run, source, file)."""
    if not entries:
        return
    existing = catalog.read_if_exists(spark, RUN_LOG)
    if existing is not None and "error" not in existing.columns:
        # Lakehouses from before job status rows: add the column in place.
        uri = fs.spark_uri(catalog.uri(RUN_LOG))
        spark.sql(f"ALTER TABLE delta.`{uri}` ADD COLUMNS (error STRING)")
    rows = [tuple(getattr(e, f.name) for f in RUN_LOG_SCHEMA.fields) for e in entries]
    catalog.write(spark, RUN_LOG, spark.createDataFrame(rows, RUN_LOG_SCHEMA))


def unfinished_runs(spark: SparkSession, catalog: Catalog, job: str) -> list[str]:
    """Run ids of ``job`` that never succeeded: killed (still STARTED) or FAILED."""
    from pyspark.sql import functions as F

    runs = catalog.read_if_exists(spark, RUN_LOG)
    if runs is None:
        return []
    rows = (
        runs.where(
            (F.col("job") == job) & (F.col("source") == WHOLE_JOB) & (F.col("status") != SUCCEEDED)
        )
        .select("run_id")
        .distinct()
        .collect()
    )
    return sorted(r["run_id"] for r in rows)


def utc_now() -> dt.datetime:
    """Now in UTC, naive (the run log's timestamps are UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
