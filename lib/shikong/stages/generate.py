"""Stage ``generate`` (no Spark): the seeded demo world -> raw landing files.

Not in the registry: it feeds the pipeline (``shikong run`` calls it when the landing
folder has no world yet) rather than reading any table.
"""

from __future__ import annotations

import logging

from shikong.config import AppConfig
from shikong.generator import build_world
from shikong.io.world_files import GenerationSummary, write_world
from shikong.stages.context import step

log = logging.getLogger(__name__)


def run(
    cfg: AppConfig, *, scale: str | None = None, seed: int | None = None, out: str | None = None
) -> GenerationSummary:
    """Generate the demo world into the landing folder (a path or URI: local, ``s3a://``...).

    Args:
        cfg: Configuration (``generator`` settings, ``paths.landing``).
        scale: ``small`` or ``default`` (default: ``generator.scale``).
        seed: Random seed (default: ``generator.seed``).
        out: Landing folder (default: ``paths.landing``).
    """
    landing = out or cfg.paths.landing_dir
    with step("generate") as done:
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
