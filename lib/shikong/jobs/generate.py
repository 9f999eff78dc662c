"""Job ``generate``: write the seeded demo world as raw landing files (no Spark).

The work is :mod:`shikong.stages.generate`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.jobs.common import (
    add_common_arguments,
    config_from_args,
    exit_on_failure,
    guarded,
)
from shikong.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the generate job."""
    parser.add_argument(
        "--scale",
        choices=("small", "default"),
        default=None,
        help="world size (default: generator.scale from the config)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from config)")
    parser.add_argument("--out", default=None, help="landing folder (default: paths.landing)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"scale": args.scale, "seed": args.seed, "out": args.out}


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (a failure raises ``SystemExit``: :func:`exit_on_failure`)."""
    from shikong.io import lock
    from shikong.io.runlog import new_run_id
    from shikong.stages.generate import run

    parser = argparse.ArgumentParser(
        prog="shikong-generate", description="write the seeded demo world as landing files"
    )
    add_common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = config_from_args(args)

    def go() -> int:
        # The landing folder is the lakehouse's: not rewritten under a run that ingests it.
        with lock.locked(cfg.paths.lakehouse, new_run_id(), "shikong-generate"):
            run(cfg, **options(args))
        return 0

    return exit_on_failure(guarded("generate", go))
