"""Job ``stream``: incremental ingest of the landing folder (Structured Streaming).

The work is :mod:`shikong.stages.stream`; this module is its command line (README "Real
time"). Not a pipeline stage: ``shikong stream``, ``shikong-stream`` or
``jobs/stream.py`` run it on its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


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
    return run_job("stream", argv)
