"""Job ``evaluate_models``: the chosen models vs baselines on the time-split test data.

The work is :mod:`shikong.stages.evaluate_models`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job

KINDS = ("demand", "recommender")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the evaluate_models job."""
    parser.add_argument(
        "--model", choices=[*KINDS, "all"], default="all", help="which model to evaluate"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"model": args.model}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("evaluate_models", argv)
