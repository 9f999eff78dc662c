"""The demo world one day at a time, for watching a stream (``shikong generate --drip``).

:meth:`World.files` yields a month of each fact source per file. A drip splits them into
daily files of the same landing contract (``orders/orders-2023-01-05.jsonl``,
``order_lines/order_lines-2023-01-05.csv``...: the source's folder, its name pattern and
format, the same columns and encoding), grouped into drops: first the ground truth and the
catalogue (products, warehouses, customers), which the facts refer to, then one drop per
simulated day. Batch ingest reads the daily files exactly as the monthly ones.

A row goes to the day of its own date column; a dirty row whose date is not a day of its
month (``not-a-date``, a year 1900) goes to the day of the row before it in the month file
(the first day with data for the month's first rows), so every row of the world is written
exactly once and a ``DUPLICATE`` copy lands in its original's file. ``_ground_truth/`` is
the world's as generated: its ``dirty_rows.csv`` counts per month file.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from shikong import schemas
from shikong.generator.world import World, WorldFile

_SOURCE = {s.name: s for s in schemas.SOURCES}


@dataclass(frozen=True)
class Drop:
    """Files that land together.

    Attributes:
        day: The simulated day of the facts; ``None`` for the first drop (ground truth and
            catalogue).
        files: The files, ground truth and catalogue first.
    """

    day: date | None
    files: tuple[WorldFile, ...]


def _split_by_day(f: WorldFile, column: str, days: np.ndarray) -> dict[str, WorldFile]:
    """One month file -> its rows per day (``YYYY-MM-DD`` -> file), no row lost."""
    stem, ext = posixpath.splitext(posixpath.basename(f.rel))
    month = stem[-7:]
    month_days = days[np.strings.startswith(days, month)]
    value = np.strings.slice(f.table[column].astype(str), 0, 10)
    n = len(value)
    ok = np.isin(value, month_days)
    last_ok = np.maximum.accumulate(np.where(ok, np.arange(n), -1)) if n else np.array([], int)
    first = value[ok][0] if ok.any() else month_days[0]
    day = np.where(last_ok >= 0, value[np.maximum(last_ok, 0)], first)
    folder = posixpath.dirname(f.rel)
    out: dict[str, WorldFile] = {}
    for d in np.unique(day):
        mask = day == d
        table = {c: v[mask] for c, v in f.table.items()}
        rel = f"{folder}/{stem[: -len(month)]}{d}{ext}"
        out[str(d)] = dataclasses.replace(f, rel=rel, table=table, clean_rows=0)
    return out


def daily_drops(world: World) -> list[Drop]:
    """The world's landing files as drops: ground truth + catalogue, then day by day.

    Holds the whole world in memory (the days of a month arrive with the month's file, the
    inventory of every month after all orders, the customers last).
    """
    n_days = (world.end_date - world.start_date).days + 1
    calendar = [world.start_date + timedelta(days=i) for i in range(n_days)]
    days = np.array([d.isoformat() for d in calendar])
    truth: list[WorldFile] = []
    catalogue: list[WorldFile] = []
    per_day: dict[str, list[WorldFile]] = defaultdict(list)
    for f in world.files():
        source = _SOURCE.get(f.source) if f.source else None
        if source is None:
            truth.append(f)
        elif source.date_column is None:
            catalogue.append(f)
        else:
            for d, part in _split_by_day(f, source.date_column, days).items():
                per_day[d].append(part)
    order = {s.name: i for i, s in enumerate(schemas.SOURCES)}
    catalogue.sort(key=lambda f: order[str(f.source)])
    return [Drop(None, (*truth, *catalogue))] + [
        Drop(d, tuple(sorted(per_day.get(d.isoformat(), []), key=lambda f: order[str(f.source)])))
        for d in calendar
    ]
