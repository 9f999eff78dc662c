"""Running a stage: its STARTED / SUCCEEDED / FAILED rows in ``ops.run_log``.

Every stage run, alone or in the pipeline, leaves one status row per job and run
(``source`` and ``source_file`` are ``*``): STARTED when it begins, replaced by SUCCEEDED
or FAILED (with the error's first line) when it ends. A run killed outright stays
STARTED, which is how a reader tells an interrupted run from a finished one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from shikong.io.runlog import (
    FAILED,
    STARTED,
    SUCCEEDED,
    WHOLE_JOB,
    RunLogEntry,
    utc_now,
    write_run_log,
)
from shikong.stages.context import StageContext
from shikong.stages.registry import Stage

log = logging.getLogger(__name__)


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (Spark's messages run over many lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _status(
    ctx: StageContext, job: str, started: dt.datetime, status: str, error: str | None = None
) -> RunLogEntry:
    return RunLogEntry(
        job, ctx.run_id, WHOLE_JOB, WHOLE_JOB, started, utc_now(), None, None, None, status, error
    )


def run_stage(ctx: StageContext, stage: Stage, **options: Any) -> Any:
    """Run one stage with its status rows in the run log.

    Returns:
        What the stage returns.

    Raises:
        Whatever the stage raises, after its FAILED row is written (a failure to write
        that row is logged, never raised over the stage's own error).
    """
    started = utc_now()
    write_run_log(ctx.spark, ctx.catalog, [_status(ctx, stage.job, started, STARTED)])
    try:
        out = stage.module().run(ctx, **options)
    except Exception as exc:
        try:
            entry = _status(ctx, stage.job, started, FAILED, first_line(exc)[:1000])
            write_run_log(ctx.spark, ctx.catalog, [entry])
        except Exception as log_exc:  # noqa: BLE001 - the stage's error is the one to raise
            log.warning("could not record FAILED for %s: %s", stage.job, first_line(log_exc))
        raise
    write_run_log(ctx.spark, ctx.catalog, [_status(ctx, stage.job, started, SUCCEEDED)])
    return out
