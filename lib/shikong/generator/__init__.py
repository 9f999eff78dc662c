"""Seeded demo-world generator (pure numpy/pandas, no Spark, no file writing).

Example::

    from shikong.generator import build_world, resolve_scale
    from shikong.io.world_files import write_world

    world = build_world(seed=7, scale="small")
    summary = write_world(world, "/tmp/lake/landing")
    world = build_world(seed=7, scale=resolve_scale("default", days=365))
    for f in world.files():  # the same files, in memory, one at a time
        print(f.rel, f.rows)
"""

from shikong.generator.config import SCALES, GeneratorScale, resolve_scale
from shikong.generator.world import GROUND_TRUTH_DIR, World, WorldFile, build_world

__all__ = [
    "GROUND_TRUTH_DIR",
    "SCALES",
    "GeneratorScale",
    "World",
    "WorldFile",
    "build_world",
    "resolve_scale",
]
