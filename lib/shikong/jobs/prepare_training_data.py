"""Job ``prepare_training_data``: lakehouse tables -> time-split Parquet shards per model.

The work is :mod:`shikong.stages.prepare_training_data`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job

KINDS = ("demand", "recommender")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the prepare_training_data job."""
    parser.add_argument(
        "--model", choices=[*KINDS, "all"], default="all", help="which data set to build"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"model": args.model}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("prepare_training_data", argv)
