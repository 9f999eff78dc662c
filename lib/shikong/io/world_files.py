"""Writing the demo world's landing files (CSV, JSON lines) and its ``_ground_truth/``.

The generator (:func:`shikong.generator.build_world`) produces the world as formatted
string tables; this module only encodes them, byte for byte, under a landing URI::

    from shikong.generator import build_world
    from shikong.io.world_files import write_world

    summary = write_world(build_world(seed=7, scale="small"), "/tmp/lake/landing")

The world and its files are described structurally (:class:`World`, :class:`WorldFile`),
so that io does not import the generator.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from shikong import schemas
from shikong.io import fs

logger = logging.getLogger(__name__)


class WorldFile(Protocol):
    """One file of a world (see :class:`shikong.generator.world.WorldFile`)."""

    @property
    def rel(self) -> str:
        """Path relative to the landing folder."""

    @property
    def fmt(self) -> str:
        """``csv``, ``jsonl`` or ``json``."""

    @property
    def columns(self) -> Sequence[str]:
        """Column (key) order of a ``csv`` / ``jsonl`` file."""

    @property
    def table(self) -> Mapping[str, np.ndarray]:
        """Column -> string array (``""`` = null) of a ``csv`` / ``jsonl`` file."""

    @property
    def numeric(self) -> frozenset[str]:
        """``jsonl`` columns written as JSON numbers."""

    @property
    def document(self) -> Mapping[str, Any] | None:
        """The document of a ``json`` file."""

    @property
    def source(self) -> str | None:
        """Landing source of the rows; ``None`` for a ground-truth file."""

    @property
    def clean_rows(self) -> int:
        """Rows before dirty rows were added."""

    @property
    def rows(self) -> int:
        """Rows of the table (clean plus dirty)."""


class WorldScale(Protocol):
    """The scale of a world (see :class:`shikong.generator.GeneratorScale`)."""

    @property
    def name(self) -> str:
        """Preset name."""


class World(Protocol):
    """A world to write (see :class:`shikong.generator.World`)."""

    @property
    def seed(self) -> int:
        """Seed used."""

    @property
    def scale(self) -> WorldScale:
        """The resolved scale."""

    @property
    def start_date(self) -> date:
        """First simulated day."""

    @property
    def end_date(self) -> date:
        """Last simulated day (inclusive)."""

    def files(self) -> Iterable[WorldFile]:
        """Every file, produced one at a time."""


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`write_world` wrote.

    Attributes:
        landing_dir: URI of the landing folder written.
        seed: Seed used.
        scale: The resolved scale.
        start_date: First simulated day.
        end_date: Last simulated day (inclusive).
        rows_per_file: Rows (clean + dirty) per landing file, path relative to landing.
        clean_rows: Clean rows per source.
        dirty_rows: Dirty rows per source.
        total_rows: All landing rows (ground truth excluded).
        total_bytes: Bytes of all landing files (ground truth excluded).
        seconds: Wall-clock seconds of writing, the simulation (run lazily by
            ``world.files()``) included; drawing the world's scenario before is not.
        rows_per_second: ``total_rows / seconds``.
    """

    landing_dir: str
    seed: int
    scale: WorldScale
    start_date: date
    end_date: date
    rows_per_file: MappingProxyType[str, int]
    clean_rows: MappingProxyType[str, int]
    dirty_rows: MappingProxyType[str, int]
    total_rows: int
    total_bytes: int
    seconds: float
    rows_per_second: float


def write_world(world: World, landing_uri: str) -> GenerationSummary:
    """Write every file of ``world`` under the landing folder ``landing_uri``.

    Files a generator wrote before into the same landing folder (landing files of the
    sources in :data:`shikong.schemas.SOURCES` and everything in ``_ground_truth/``) are
    removed first; other files there are left alone.

    Args:
        world: The world (:func:`shikong.generator.build_world`).
        landing_uri: Landing folder, a path or URI (see :mod:`shikong.io.fs`).

    Returns:
        Row counts, sizes and timing.
    """
    t0 = time.perf_counter()
    fs.makedirs(landing_uri)
    _remove_previous(landing_uri)
    logger.info(
        "writing %s world (seed %d) %s..%s into %s",
        world.scale.name,
        world.seed,
        world.start_date,
        world.end_date,
        landing_uri,
    )
    rows: dict[str, int] = {}
    clean = {s.name: 0 for s in schemas.SOURCES}
    dirty = {s.name: 0 for s in schemas.SOURCES}
    total_bytes = 0
    for f in world.files():
        n_bytes = _write_file(fs.join(landing_uri, f.rel), f)
        if f.source is not None:  # not ground truth
            rows[f.rel] = f.rows
            clean[f.source] += f.clean_rows
            dirty[f.source] += f.rows - f.clean_rows
            total_bytes += n_bytes
        del f  # free the table before the next file is simulated
    seconds = time.perf_counter() - t0
    total_rows = sum(rows.values())
    logger.info(
        "wrote %d rows, %.1f MB in %.1f s (%.0f rows/s)",
        total_rows,
        total_bytes / 1e6,
        seconds,
        total_rows / seconds,
    )
    return GenerationSummary(
        landing_dir=landing_uri,
        seed=world.seed,
        scale=world.scale,
        start_date=world.start_date,
        end_date=world.end_date,
        rows_per_file=MappingProxyType(rows),
        clean_rows=MappingProxyType(clean),
        dirty_rows=MappingProxyType(dirty),
        total_rows=total_rows,
        total_bytes=total_bytes,
        seconds=seconds,
        rows_per_second=total_rows / seconds if seconds > 0 else float("inf"),
    )


def _remove_previous(landing_uri: str) -> None:
    """Delete files a previous generation left (only names a generator writes)."""
    folders = [
        (s.folder, f"{s.folder}*.{'jsonl' if s.fmt == 'json' else 'csv'}") for s in schemas.SOURCES
    ] + [(schemas.GROUND_TRUTH_DIR, "*")]
    for folder, pattern in folders:
        base = fs.join(landing_uri, folder)
        for name in fs.listdir(base):
            uri = fs.join(base, name)
            if fnmatch.fnmatchcase(name, pattern) and fs.is_file(uri):
                fs.delete(uri)


def _write_file(uri: str, f: WorldFile) -> int:
    """Write one world file; returns its size in bytes."""
    # One temporary at a time (lines, then text, then bytes): month files are large.
    if f.fmt == "csv":
        text = "\n".join(csv_lines(f.columns, f.table).tolist())
    elif f.fmt == "jsonl":
        text = "\n".join(jsonl_lines(f.columns, f.table, f.numeric).tolist())
    elif f.fmt == "json" and f.document is not None:
        text = json.dumps(f.document, indent=2)
    else:
        raise ValueError(f"{f.rel}: cannot write format {f.fmt!r}")
    data = text.encode("utf-8")
    del text
    with fs.open_output(uri) as out:
        if data:  # an empty JSON-lines file has no newline either
            out.write(data)
            out.write(b"\n")
    return len(data) + 1 if data else 0


def _n_rows(table: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(table.values()))) if table else 0


def _csv_field(v: np.ndarray) -> np.ndarray:
    needs = (
        (np.strings.find(v, ",") >= 0)
        | (np.strings.find(v, '"') >= 0)
        | (np.strings.find(v, "\n") >= 0)
    )
    if not needs.any():
        return v
    quoted = np.strings.add(np.strings.add('"', np.strings.replace(v, '"', '""')), '"')
    return np.where(needs, quoted, v)


def _json_string(v: np.ndarray) -> np.ndarray:
    if ((np.strings.find(v, "\\") >= 0) | (np.strings.find(v, '"') >= 0)).any():
        v = np.strings.replace(np.strings.replace(v, "\\", "\\\\"), '"', '\\"')
    return np.where(v == "", "null", np.strings.add(np.strings.add('"', v), '"'))


def csv_lines(columns: Sequence[str], table: Mapping[str, np.ndarray]) -> np.ndarray:
    """CSV lines, header first; ``""`` cells become empty fields (no trailing newline).

    Args:
        columns: Column order.
        table: Column name -> string array.
    """
    if _n_rows(table):
        line = _csv_field(table[columns[0]])
        for c in columns[1:]:
            line = np.strings.add(np.strings.add(line, ","), _csv_field(table[c]))
    else:
        line = np.array([], dtype=str)
    return np.concatenate([np.array([",".join(columns)]), line])


def jsonl_lines(
    columns: Sequence[str],
    table: Mapping[str, np.ndarray],
    numeric: frozenset[str] = frozenset(),
) -> np.ndarray:
    """JSON lines, one compact object per row, keys in column order.

    Args:
        columns: Key order.
        table: Column name -> string array.
        numeric: Columns written as JSON numbers (their strings must be valid numbers);
            all other columns are JSON strings. ``""`` becomes ``null`` either way.
    """
    line = np.full(_n_rows(table), "{", dtype="U1")
    for i, c in enumerate(columns):
        v = table[c]
        v = np.where(v == "", "null", v) if c in numeric else _json_string(v)
        line = np.strings.add(np.strings.add(line, f'{"," if i else ""}"{c}":'), v)
    return np.strings.add(line, "}")


class Drop(Protocol):
    """Files that land together (see :class:`shikong.generator.drip.Drop`)."""

    @property
    def day(self) -> date | None:
        """The simulated day; ``None`` for ground truth and catalogue."""

    @property
    def files(self) -> Sequence[WorldFile]:
        """The drop's files."""


class LandingNotEmptyError(RuntimeError):
    """The landing folder holds generated files that a drip would not write."""


def write_drops(
    drops: Sequence[Drop],
    landing_uri: str,
    *,
    rate: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Write drops into the landing folder, ``rate`` drops per second (0: no pause).

    Nothing is removed and a file already there is left as it is (a drip of the same world
    resumes where an earlier one stopped; each file is written whole, under its name only
    when complete, so a stream never reads half a file). A landing folder that holds other
    generated landing files (the month files of ``shikong generate``, another world's) is
    refused: mixed, they would enter bronze twice.

    Returns:
        Rows per file written, path relative to landing.

    Raises:
        LandingNotEmptyError: Naming a file in the way and the fix.
    """
    planned = {f.rel for d in drops for f in d.files}
    for f in (f for d in drops for f in d.files if f.document is not None):
        uri = fs.join(landing_uri, f.rel)
        if fs.is_file(uri) and json.loads(fs.read_text(uri)) != json.loads(json.dumps(f.document)):
            raise LandingNotEmptyError(
                f"{uri}: the landing folder holds another generated world; drip into an "
                "empty landing folder (`shikong run --fresh` or `make clean` removes it)"
            )
    for s in schemas.SOURCES:
        folder = fs.join(landing_uri, s.folder)
        ext = "jsonl" if s.fmt == "json" else "csv"
        for name in fs.listdir(folder):
            rel = f"{s.folder}/{name}"
            if fnmatch.fnmatchcase(name, f"{s.folder}*.{ext}") and rel not in planned:
                raise LandingNotEmptyError(
                    f"{fs.join(landing_uri, rel)}: the landing folder holds files a drip "
                    "does not write; drip into an empty landing folder (`shikong run --fresh` "
                    "or `make clean` removes the lakehouse)"
                )
    rows: dict[str, int] = {}
    for i, drop in enumerate(drops):
        if i and rate > 0:
            sleep(1.0 / rate)
        for f in drop.files:
            uri = fs.join(landing_uri, f.rel)
            if f.source is not None and fs.is_file(uri):
                continue
            _write_file(uri, f)
            if f.source is not None:
                rows[f.rel] = f.rows
        logger.info(
            "drop %s: %d files", drop.day.isoformat() if drop.day else "catalogue", len(drop.files)
        )
    return rows
