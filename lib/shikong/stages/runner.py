"""Running a stage: its STARTED / SUCCEEDED / FAILED rows in ``ops.run_log``.

Every stage run, alone or in the pipeline, leaves one status row per job and run
(``source`` and ``source_file`` are ``*``): STARTED when it begins, replaced by SUCCEEDED
or FAILED (with the error's first line) when it ends. A run killed outright stays
STARTED, which is how a reader tells an interrupted run from a finished one, and how the
next run of the stage finds the rows such a run left in tables keyed by run id
(:func:`discard_unfinished_runs`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from shikong.io import lock
from shikong.io.catalog import TABLES
from shikong.io.runlog import (
    FAILED,
    RUN_LOG,
    STARTED,
    SUCCEEDED,
    WHOLE_JOB,
    RunLogEntry,
    unfinished_runs,
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


def discard_unfinished_runs(ctx: StageContext, stage: Stage) -> int:
    """Delete what earlier runs of this stage that never succeeded left in its tables keyed
    by run id (``gold.training_metrics``, ``gold.model_registry``); rows deleted.

    A run killed (or failed) after writing some of them, e.g. between the training metrics
    and the model registry, would otherwise leave its rows next to the rerun's: the rerun
    must leave the tables an uninterrupted run leaves. The run log keeps its rows (it is
    the record of the unfinished run), and tables keyed by business keys need nothing (the
    rerun's MERGE or overwrite replaces the same rows). Done only while this process
    holds the lakehouse lock (:mod:`shikong.io.lock`): without it a STARTED run may be
    alive elsewhere, and its rows are not ours to delete.
    """
    keyed = [t for t in stage.writes if t != RUN_LOG and t in TABLES and "run_id" in TABLES[t].keys]
    if not keyed or not lock.holds(ctx.cfg.paths.lakehouse):
        return 0
    # This run is among them (STARTED just now) but has written nothing yet: what rows its
    # id has are a failed attempt's under the same id (``train --run-id``).
    runs = unfinished_runs(ctx.spark, ctx.catalog, stage.job)
    if not runs:
        return 0
    deleted = 0
    for table in keyed:
        n = ctx.catalog.delete_runs(ctx.spark, table, runs)
        if n:
            log.warning(
                "%s: removed %d rows of unfinished %s runs %s", table, n, stage.job, ", ".join(runs)
            )
        deleted += n
    return deleted


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
        discard_unfinished_runs(ctx, stage)
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
