"""What every stage gets (session, config, catalogue, run id) and how it reports progress."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from pyspark.sql import DataFrame, SparkSession

from shikong.config import AppConfig
from shikong.io.catalog import Catalog
from shikong.io.runlog import new_run_id
from shikong.secrets import PseudonymKey, pseudonym_key

progress_log = logging.getLogger("shikong.progress")


@dataclass(frozen=True)
class StageContext:
    """One run of one or more stages.

    Attributes:
        spark: The session (``None`` for stages that need no Spark, e.g. ``generate``).
        cfg: The validated configuration.
        catalog: The table catalogue bound to ``cfg.paths.lakehouse``.
        run_id: Id of this run, shared by every stage it runs (run log, gold tables).
        key: The pseudonym key (:mod:`shikong.secrets`), resolved by the command line
            before Spark starts; ``None``: resolved from ``cfg`` on first use.
    """

    spark: SparkSession
    cfg: AppConfig
    catalog: Catalog
    run_id: str
    key: PseudonymKey | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        spark: SparkSession | None,
        cfg: AppConfig,
        *,
        run_id: str | None = None,
        key: PseudonymKey | None = None,
    ) -> StageContext:
        """A context on ``cfg``'s lakehouse with a new run id unless one is given."""
        return cls(
            spark=cast(SparkSession, spark),
            cfg=cfg,
            catalog=Catalog(cfg.paths.lakehouse),
            run_id=run_id or new_run_id(),
            key=key,
        )

    @property
    def pseudonym_key(self) -> bytes:
        """The HMAC key of published customer pseudonyms (never logged or written)."""
        return (self.key or pseudonym_key(self.cfg)).value

    def read(self, table: str) -> DataFrame:
        """A catalogue table (``layer.name``) through the catalogue."""
        return self.catalog.read(self.spark, table)


@contextmanager
def step(name: str) -> Iterator[Callable[[int], None]]:
    """Report a step on stderr: start, then rows and seconds when done.

    Yields:
        A callback to record the number of rows the step produced.
    """
    rows: list[int] = []
    progress_log.info("[%s] started", name)
    t0 = time.perf_counter()
    yield rows.append
    secs = time.perf_counter() - t0
    count = f"{sum(rows):,} rows, " if rows else ""
    progress_log.info("[%s] done: %s%.1f s", name, count, secs)
