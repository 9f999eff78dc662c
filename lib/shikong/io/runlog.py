"""The run log (``ops.run_log``): one reconciliation row per job, run and source file."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import types as T

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
        T.StructField("rows_in", T.LongType(), False),
        T.StructField("rows_accepted", T.LongType(), False),
        T.StructField("rows_rejected", T.LongType(), False),
        T.StructField("status", T.StringType(), False),
    ]
)


@dataclass(frozen=True)
class RunLogEntry:
    """One reconciliation row of the run log (a file, or a whole stage with ``*``)."""

    job: str
    run_id: str
    source: str
    source_file: str
    started_at: dt.datetime
    ended_at: dt.datetime
    rows_in: int
    rows_accepted: int
    rows_rejected: int
    status: str


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def write_run_log(spark: SparkSession, catalog: Catalog, entries: Sequence[RunLogEntry]) -> None:
    """MERGE entries into ``ops.run_log`` (on job, run, source, file)."""
    if not entries:
        return
    rows = [tuple(getattr(e, f.name) for f in RUN_LOG_SCHEMA.fields) for e in entries]
    catalog.write(spark, RUN_LOG, spark.createDataFrame(rows, RUN_LOG_SCHEMA))
