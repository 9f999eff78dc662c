"""Seeded demo-world generator (pure numpy/pandas, no Spark).

Example::

    from pathlib import Path
    from shikong.generator import generate_world, resolve_scale

    summary = generate_world(Path("/tmp/lake"), seed=7, scale="small")
    summary = generate_world(Path("/tmp/lake"), seed=7, scale=resolve_scale("default", days=365))
"""

from shikong.generator.config import SCALES, GeneratorScale, resolve_scale
from shikong.generator.world import GROUND_TRUTH_DIR, GenerationSummary, generate_world

__all__ = [
    "GROUND_TRUTH_DIR",
    "SCALES",
    "GenerationSummary",
    "GeneratorScale",
    "generate_world",
    "resolve_scale",
]
