"""Vectorised value formatting and landing-file writers.

A landing table is a ``dict[column, np.ndarray]`` of fixed-width unicode strings where
``""`` means null. Formatting is done here once, with fixed decimals, so that the same
inputs always give the same bytes (no float repr, no locale, no pandas version effects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Table = dict[str, np.ndarray]


def fmt_int(a: np.ndarray) -> np.ndarray:
    """Integers as decimal strings."""
    return np.asarray(a, dtype=np.int64).astype(str)


def fmt_id(prefix: str, a: np.ndarray, width: int) -> np.ndarray:
    """Ids like ``O00000042``: prefix plus zero-padded integer."""
    if np.size(a) == 0:  # np.strings.zfill cannot size an empty result
        return np.array([], dtype=str)
    return np.strings.add(prefix, np.strings.zfill(fmt_int(a), width))


def fmt_fixed(x: np.ndarray, decimals: int) -> np.ndarray:
    """Fixed-point decimal strings, e.g. ``-23.55052`` (exact, via integer arithmetic)."""
    if np.size(x) == 0:
        return np.array([], dtype=str)
    scale = 10**decimals
    v = np.rint(np.asarray(x, dtype=np.float64) * scale).astype(np.int64)
    a = np.abs(v)
    s = (a // scale).astype(str)
    if decimals:
        s = np.strings.add(
            np.strings.add(s, "."), np.strings.zfill((a % scale).astype(str), decimals)
        )
    return np.where(v < 0, np.strings.add("-", s), s)


def fmt_ts(epoch_s: np.ndarray) -> np.ndarray:
    """Epoch seconds as ISO-8601 local timestamps without zone, ``2024-03-01T14:05:09``."""
    return np.datetime_as_string(
        np.asarray(epoch_s, dtype=np.int64).astype("datetime64[s]"), unit="s"
    )


def fmt_date(epoch_days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as ``YYYY-MM-DD``."""
    return np.datetime_as_string(
        np.asarray(epoch_days, dtype=np.int64).astype("datetime64[D]"), unit="D"
    )


def table_len(table: Mapping[str, np.ndarray]) -> int:
    """Number of rows of a table (all columns have the same length)."""
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


def _write_lines(path: Path, lines: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        if len(lines):
            fh.write("\n".join(lines.tolist()))
            fh.write("\n")


def write_csv(path: Path, columns: Sequence[str], table: Mapping[str, np.ndarray]) -> int:
    """Write a CSV file with a header row; ``""`` cells are written as empty fields.

    Args:
        path: Output file (parents are created).
        columns: Column order.
        table: Column name -> string array.

    Returns:
        Number of data rows written.
    """
    n = table_len(table)
    if n:
        line = _csv_field(table[columns[0]])
        for c in columns[1:]:
            line = np.strings.add(np.strings.add(line, ","), _csv_field(table[c]))
    else:
        line = np.array([], dtype=str)
    _write_lines(path, np.concatenate([np.array([",".join(columns)]), line]))
    return n


def write_jsonl(
    path: Path,
    columns: Sequence[str],
    table: Mapping[str, np.ndarray],
    numeric: frozenset[str] = frozenset(),
) -> int:
    """Write JSON lines, one compact object per row, keys in column order.

    Args:
        path: Output file (parents are created).
        columns: Key order.
        table: Column name -> string array.
        numeric: Columns written as JSON numbers (their strings must be valid numbers);
            all other columns are JSON strings. ``""`` becomes ``null`` either way.

    Returns:
        Number of rows written.
    """
    n = table_len(table)
    line = np.full(n, "{", dtype="U1")
    for i, c in enumerate(columns):
        v = table[c]
        v = np.where(v == "", "null", v) if c in numeric else _json_string(v)
        line = np.strings.add(np.strings.add(line, f'{"," if i else ""}"{c}":'), v)
    _write_lines(path, np.strings.add(line, "}"))
    return n
