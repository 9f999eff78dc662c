"""Job ``delivery_routes``: each warehouse x delivery day's orders -> CVRP routes (gold).

The work is :mod:`shikong.stages.delivery_routes`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the delivery_routes job."""
    parser.add_argument(
        "--days", type=int, default=None, help="route the last N delivery days (default: config)"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"days": args.days}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("delivery_routes", argv)
