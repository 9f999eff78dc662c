"""Vectorised value formatting of landing tables (written by :mod:`shikong.io.world_files`).

A landing table is a ``dict[column, np.ndarray]`` of fixed-width unicode strings where
``""`` means null. Formatting is done here once, with fixed decimals, so that the same
inputs always give the same bytes (no float repr, no locale, no pandas version effects).
"""

from __future__ import annotations

from collections.abc import Mapping

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
