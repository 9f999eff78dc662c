"""Job ``train_models``: shards -> trained demand and recommender models.

The work is :mod:`shikong.stages.train_models`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job

KINDS = ("demand", "recommender")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the train_models job."""
    parser.add_argument(
        "--model", choices=[*KINDS, "all"], default="all", help="which model to train"
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="this training run's id (default: a new one); rerunning a failed run's id "
        "replaces what it left",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"model": args.model}


def run_id(args: argparse.Namespace) -> str | None:
    """The run id given on the command line: the stage's run (its models, table rows and
    run-log status rows) takes it."""
    return args.run_id


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("train_models", argv)
