"""Job ``batch_inference``: the chosen models -> ``gold.demand_predictions`` and
``gold.recommendations``.

The work is :mod:`shikong.stages.batch_inference`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job

KINDS = ("demand", "recommender")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the batch_inference job."""
    parser.add_argument(
        "--model", choices=[*KINDS, "all"], default="all", help="which model to score"
    )
    parser.add_argument("--run-id", default=None, help="model run id (default: the latest)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"model": args.model, "run_id": args.run_id}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("batch_inference", argv)
