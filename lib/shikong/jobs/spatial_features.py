"""Job ``spatial_features``: bronze -> silver/gold spatial features on Apache Sedona.

The work is :mod:`shikong.stages.spatial_features` (tables built by
:mod:`shikong.spatial.tables`); this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the spatial_features job."""
    parser.add_argument(
        "--layer", default="bronze", help="bronze layer to read (bronze, bronze_olist)"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"layer": args.layer}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("spatial_features", argv)
