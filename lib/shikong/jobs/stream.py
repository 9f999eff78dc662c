"""Job ``stream``: incremental ingest of the landing folder (Structured Streaming).

The work is :mod:`shikong.stages.stream`; this module is its command line (README "Real
time"). Not a pipeline stage: ``shikong stream``, ``shikong-stream`` or
``jobs/stream.py`` run it on its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import (
    add_common_arguments,
    config_from_args,
    exit_on_failure,
    guarded,
    require_writable_lakehouse,
)
from shikong.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the stream job."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--once",
        action="store_true",
        help="ingest what has arrived (availableNow, one pass per source) and stop: for schedules",
    )
    how.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="continuous: a pass every SECONDS until Ctrl-C "
        "(default ingest.stream_interval_seconds)",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"once": bool(args.once), "interval": args.interval}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit and console-script entry point."""
    parser = argparse.ArgumentParser(
        prog="shikong-stream", description="ingest new landing files incrementally"
    )
    add_common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = config_from_args(args)

    def go() -> int:
        from shikong.io import lock
        from shikong.io.runlog import new_run_id
        from shikong.session import build_session
        from shikong.stages import registry
        from shikong.stages.context import StageContext
        from shikong.stages.runner import run_stage

        require_writable_lakehouse(cfg)
        run_id = new_run_id()
        with lock.locked(cfg.paths.lakehouse, run_id, "shikong-stream"):
            ctx = StageContext.create(build_session(cfg), cfg, run_id=run_id)
            run_stage(ctx, registry.STREAM, **options(args))
        return 0

    return exit_on_failure(guarded("stream", go))
