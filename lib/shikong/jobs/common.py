"""What every job entry point shares: common arguments, config loading, running a stage."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import pandas as pd
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import types as T

from shikong.config import AppConfig, ConfigError, load_config
from shikong.io.delta import merge_into
from shikong.logs import configure_logging

progress_log = logging.getLogger("shikong.progress")

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


def write_run_log(spark: SparkSession, cfg: AppConfig, entries: Sequence[RunLogEntry]) -> None:
    """Append entries to the ``ops.run_log`` Delta table (MERGE on job, run, source, file)."""
    if not entries:
        return
    rows = [tuple(getattr(e, f.name) for f in RUN_LOG_SCHEMA.fields) for e in entries]
    df = spark.createDataFrame(rows, RUN_LOG_SCHEMA)
    merge_into(
        spark,
        df,
        cfg.paths.table("ops", "run_log"),
        keys=("job", "run_id", "source", "source_file"),
    )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every job and CLI subcommand accepts."""
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config file or profile name in conf/ (default: conf/local.yaml)",
    )
    parser.add_argument("--log-level", default="INFO", help="shikong log level (default INFO)")


def load_config_or_exit(path: str | None) -> AppConfig:
    """Load the config; on a problem print one line naming the key and exit with code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"shikong: config error: {exc}\n")
        raise SystemExit(2) from None


@contextmanager
def stage(name: str) -> Iterator[Callable[[int], None]]:
    """Report a pipeline stage on stderr: start, then rows and seconds when done.

    Yields:
        A callback to record the number of rows the stage produced.
    """
    rows: list[int] = []
    progress_log.info("[%s] started", name)
    t0 = time.perf_counter()
    yield rows.append
    secs = time.perf_counter() - t0
    count = f"{sum(rows):,} rows, " if rows else ""
    progress_log.info("[%s] done: %s%.1f s", name, count, secs)


def run_job(job: str, argv: Sequence[str] | None) -> int:
    """``main`` of a job: parse args, load config once, build the session once, run the stage.

    Args:
        job: Job name (module under ``shikong.jobs`` with ``add_arguments`` and ``options``).
        argv: Command-line arguments (``None``: ``sys.argv``).
    """
    import importlib

    from shikong.stages import registry
    from shikong.stages.context import StageContext

    face = importlib.import_module(f"shikong.jobs.{job}")
    stage_def = registry.get(job)
    parser = argparse.ArgumentParser(prog=stage_def.console_script, description=stage_def.summary)
    add_common_arguments(parser)
    face.add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = load_config_or_exit(args.config)
    from shikong.session import build_session

    ctx = StageContext.create(build_session(cfg), cfg)
    stage_def.module().run(ctx, **face.options(args))
    return 0


def job_main(
    name: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[SparkSession, AppConfig, argparse.Namespace], object],
    argv: Sequence[str] | None,
    *,
    needs_spark: bool = True,
) -> int:
    """Shared ``main`` of a job: parse args, load config once, build session once, run."""
    parser = argparse.ArgumentParser(prog=f"shikong-{name}", description=run.__doc__)
    add_common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = load_config_or_exit(args.config)
    spark = None
    if needs_spark:
        from shikong.session import build_session

        spark = build_session(cfg)
    run(spark, cfg, args)  # type: ignore[arg-type]
    return 0


def first_row(df: DataFrame) -> Row:
    """The first row of a DataFrame that must have one (aggregates always do)."""
    row = df.first()
    if row is None:
        raise ValueError("expected at least one row")
    return row


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small DataFrame (summaries, per-group tables) to pandas."""
    return cast(pd.DataFrame, df.toPandas())
