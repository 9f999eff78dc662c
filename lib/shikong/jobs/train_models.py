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
    parser.add_argument("--run-id", default=None, help="run id (default: a new one)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"model": args.model, "run_id": args.run_id}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return run_job("train_models", argv)
