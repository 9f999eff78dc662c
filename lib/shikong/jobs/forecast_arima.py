"""Job ``forecast_arima``: cleaned series (silver) -> SARIMA forecasts and backtests (gold).

The work is :mod:`shikong.stages.forecast_arima`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the forecast_arima job."""
    parser.add_argument(
        "--search",
        choices=("pruned", "full"),
        default=None,
        help="SARIMA search space (default: timeseries.search)",
    )
    parser.add_argument(
        "--engine",
        choices=("statsmodels", "statsforecast"),
        default=None,
        help="forecasting engine (default: timeseries.engine)",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"search": args.search, "engine": args.engine}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("forecast_arima", argv)
