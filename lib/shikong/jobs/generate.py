"""Job ``generate``: write the seeded demo world as raw landing files."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shikong.config import AppConfig
from shikong.jobs.common import job_main, stage

if TYPE_CHECKING:
    from shikong.io.world_files import GenerationSummary

log = logging.getLogger(__name__)


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


def generate(
    cfg: AppConfig, *, scale: str | None = None, seed: int | None = None, out: str | None = None
) -> GenerationSummary:
    """Generate the demo world into the landing folder (a local path or ``file:`` URI)."""
    from shikong.generator import build_world
    from shikong.io.fs import StorageError, is_local
    from shikong.io.world_files import write_world

    landing = out or cfg.paths.landing_dir
    if not is_local(landing):
        raise StorageError(f"{landing}: generate writes local landing folders only")
    with stage("generate") as done:
        world = build_world(
            seed=cfg.generator.seed if seed is None else seed,
            scale=scale or cfg.generator.scale,
            start_date=cfg.generator.start_date,
        )
        summary = write_world(world, landing)
        done(summary.total_rows)
    log.info(
        "generated %d rows (%.0f rows/s) into %s",
        summary.total_rows,
        summary.rows_per_second,
        landing,
    )
    return summary


def run(spark: object, cfg: AppConfig, args: argparse.Namespace) -> object:
    """Generate the seeded demo world (CSV + JSON lines) into the landing folder."""
    return generate(cfg, scale=args.scale, seed=args.seed, out=args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Console / spark-submit entry point."""
    return job_main("generate", add_arguments, run, argv, needs_spark=False)
