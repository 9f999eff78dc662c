"""Stage ``generate`` (no Spark): the seeded demo world -> raw landing files.

Not in the registry: it feeds the pipeline (``shikong run`` calls it when the landing
folder has no world yet) rather than reading any table.
"""

from __future__ import annotations

import logging
import time

from shikong.config import AppConfig
from shikong.generator import build_world
from shikong.generator.drip import daily_drops
from shikong.io.world_files import GenerationSummary, write_drops, write_world
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


def drip(
    cfg: AppConfig,
    *,
    scale: str | None = None,
    seed: int | None = None,
    out: str | None = None,
    rate: float = 1.0,
    days: int | None = None,
) -> dict[str, int]:
    """Write the demo world into the landing folder one day at a time (daily files).

    First the ground truth and the catalogue, then each simulated day's facts, ``rate``
    days per second (0: no pause), the first ``days`` days only when given
    (:mod:`shikong.generator.drip`). Files already there are kept (a drip resumes).

    Returns:
        Rows per landing file written.
    """
    if rate < 0 or (days is not None and days < 0):
        raise ValueError("generate --drip: --rate and --days must be >= 0")
    landing = out or cfg.paths.landing_dir
    t0 = time.perf_counter()
    world = build_world(
        seed=cfg.generator.seed if seed is None else seed,
        scale=scale or cfg.generator.scale,
        start_date=cfg.generator.start_date,
    )
    drops = daily_drops(world)
    chosen = drops if days is None else drops[: days + 1]
    log.info("dripping %d day(s) into %s at %.3g day(s)/s", len(chosen) - 1, landing, rate)
    rows = write_drops(chosen, landing, rate=rate)
    log.info(
        "dripped %d rows in %d files in %.1f s",
        sum(rows.values()),
        len(rows),
        time.perf_counter() - t0,
    )
    return rows
