"""Job ``generate``: write the seeded demo world as raw landing files (no Spark).

The work is :mod:`shikong.stages.generate`; this module is its command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from shikong.config import AppConfig
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
    parser.add_argument(
        "--drip",
        action="store_true",
        help="write daily files, one day at a time (catalogue first), for `shikong stream`",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1.0,
        metavar="DAYS_PER_S",
        help="--drip: simulated days written per second (default 1; 0: no pause)",
    )
    parser.add_argument(
        "--days", type=int, default=None, metavar="N", help="--drip: only the first N days"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line."""
    return {"scale": args.scale, "seed": args.seed, "out": args.out}


def drip_options(args: argparse.Namespace) -> dict[str, Any]:
    """``stages.generate.drip``'s keyword arguments (``--drip``)."""
    return {**options(args), "rate": args.rate, "days": args.days}


def generate(cfg: AppConfig, args: argparse.Namespace, command: str) -> Any:
    """Run ``generate`` or, with ``--drip``, ``generate --drip``.

    A full generation holds the lakehouse lock (it removes the earlier files: not under
    a run that ingests them). A drip only adds whole files, so it takes no lock: it is
    meant to run beside ``shikong stream``, which holds the lakehouse.
    """
    from shikong.io import lock
    from shikong.io.runlog import new_run_id
    from shikong.stages import generate as stage

    if args.drip:
        return stage.drip(cfg, **drip_options(args))
    with lock.locked(cfg.paths.lakehouse, new_run_id(), command):
        return stage.run(cfg, **options(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (a failure raises ``SystemExit``: :func:`exit_on_failure`)."""
    parser = argparse.ArgumentParser(
        prog="shikong-generate", description="write the seeded demo world as landing files"
    )
    add_common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = config_from_args(args)

    def go() -> int:
        generate(cfg, args, "shikong-generate")
        return 0

    return exit_on_failure(guarded("generate", go))
