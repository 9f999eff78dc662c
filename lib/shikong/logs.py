"""Logging set-up, done once by the CLI / job entry points."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send shikong's logs to stderr at ``level``; quiet noisy libraries."""
    root = logging.getLogger()
    if not any(getattr(h, "_shikong", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        handler._shikong = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("shikong").setLevel(level.upper())
    for noisy in ("py4j", "pyspark", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
