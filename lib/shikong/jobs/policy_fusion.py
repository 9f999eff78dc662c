"""Job ``policy_fusion``: the fusion model's quantiles -> policy and replay (gold), beside
the SARIMA-driven ones.

The work is :mod:`shikong.stages.policy_fusion`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import run_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the policy_fusion job (all settings come from the config)."""


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit, console script and Databricks wheel-task entry point."""
    return run_job("policy_fusion", argv)
