"""Job ``ingest``: landing files -> validated bronze Delta tables + quarantine + run log.

The work is :mod:`shikong.stages.ingest`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ingest job."""
    parser.add_argument(
        "--source",
        choices=("landing", "olist"),
        default="landing",
        help="landing: the generated/upstream landing files; olist: the real Olist files",
    )
    parser.add_argument(
        "--path", default=None, help="folder of the Olist CSV files (--source olist)"
    )
    parser.add_argument(
        "--layer",
        choices=("bronze", "bronze_olist"),
        default=None,
        help="bronze layer of the Olist tables (default bronze_olist, beside a generated "
        "world; bronze in a lakehouse of its own, which the later stages then read)",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"source": args.source, "path": args.path, "layer": args.layer}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("ingest", argv)
