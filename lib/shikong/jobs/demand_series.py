"""Job ``demand_series``: bronze order lines + inventory -> cleaned daily series (silver).

The work is :mod:`shikong.stages.demand_series`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.config import SERIES_LEVELS
from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the demand_series job."""
    parser.add_argument(
        "--level",
        choices=SERIES_LEVELS,
        default=None,
        help="series level (default: timeseries.level from the config)",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"level": args.level}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("demand_series", argv)
