"""Job ``generate``: write the seeded demo world as raw landing files."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from shikong.config import AppConfig
from shikong.jobs.common import job_main, stage

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
):  # noqa: ANN201 - GenerationSummary, imported lazily
    """Generate the demo world into the landing folder (local filesystem only)."""
    from shikong.generator import generate_world

    target = Path(out or cfg.paths.landing_dir)
    # The generator writes <root>/landing; point it at the parent of the landing folder.
    target = target.parent if target.name == "landing" else target
    with stage("generate") as done:
        summary = generate_world(
            target,
            seed=cfg.generator.seed if seed is None else seed,
            scale=scale or cfg.generator.scale,
            start_date=cfg.generator.start_date,
        )
        done(summary.total_rows)
    log.info(
        "generated %d rows (%.0f rows/s) into %s",
        summary.total_rows,
        summary.rows_per_second,
        target,
    )
    return summary


def run(spark: object, cfg: AppConfig, args: argparse.Namespace) -> object:
    """Generate the seeded demo world (CSV + JSON lines) into the landing folder."""
    return generate(cfg, scale=args.scale, seed=args.seed, out=args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Console / spark-submit entry point."""
    return job_main("generate", add_arguments, run, argv, needs_spark=False)
