"""What the example builders share: day and second numbers, stable id hashes, gap
buckets, the leakage-free time split and the train-only standardiser.

Pure pandas / numpy (no torch, no pyspark, no storage).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

EPOCH = pd.Timestamp("1970-01-01")
SECONDS_PER_DAY = 86_400

# --------------------------------------------------------------------------- helpers


def day_number(values: Any) -> np.ndarray:
    """Days since 1970-01-01 (int64) of dates, timestamps or date strings."""
    ts = pd.to_datetime(pd.Series(values), utc=False)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((ts.dt.normalize() - EPOCH) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)


def epoch_seconds(values: Any) -> np.ndarray:
    """Seconds since 1970-01-01 UTC (int64); naive timestamps are taken as UTC."""
    ts = pd.to_datetime(pd.Series(values))
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((ts - EPOCH) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def stable_hash(values: Iterable[Any]) -> np.ndarray:
    """Process-independent id hash: ``1 + crc32(str(v))`` (int64), 0 for null / empty.

    Python's ``hash`` is salted per process; crc32 gives the same id on every executor and
    rank. Models fold the ids into their own bucket counts.
    """
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v == "":
            out.append(0)
        else:
            out.append(1 + zlib.crc32(str(v).encode("utf-8")))
    return np.asarray(out, dtype=np.int64)


def gap_bucket(seconds: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of a non-negative time gap: ``1 + floor(log2(1 + s))`` capped at
    ``n_buckets - 1`` (0 is padding)."""
    s = np.maximum(np.asarray(seconds, dtype=np.float64), 0.0)
    return np.minimum(1 + np.floor(np.log2(1.0 + s)).astype(np.int64), n_buckets - 1)


def array_column(rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    return list(rows)


# --------------------------------------------------------------------------- time split


@dataclass(frozen=True)
class TimeSplit:
    """Boundaries of a train / val / test split, in the unit of the split columns.

    Attributes:
        train_end: Last time a training target may fall on (inclusive).
        val_end: Last time a validation target may fall on (inclusive); test starts after.
    """

    train_end: int
    val_end: int

    def __post_init__(self) -> None:
        if self.val_end <= self.train_end:
            raise ValueError(f"val_end ({self.val_end}) must be after train_end ({self.train_end})")

    @classmethod
    def last_days(cls, max_day: int, val_days: int, test_days: int) -> TimeSplit:
        """Hold out the last ``test_days`` for test and the ``val_days`` before for val."""
        return cls(train_end=max_day - test_days - val_days, val_end=max_day - test_days)


def time_split(
    examples: pd.DataFrame, split: TimeSplit, *, start_col: str, end_col: str
) -> dict[str, pd.DataFrame]:
    """Split examples by time with no target overlap between train, val and test.

    Args:
        examples: One row per example.
        split: Boundaries.
        start_col: First target time of the example.
        end_col: Last target time of the example.

    Returns:
        ``{"train", "val", "test"}`` frames (index reset); rows whose target window crosses a
        boundary are in none of them.
    """
    start, end = examples[start_col], examples[end_col]
    masks = {
        "train": end <= split.train_end,
        "val": (start > split.train_end) & (end <= split.val_end),
        "test": start > split.val_end,
    }
    return {k: examples.loc[m].reset_index(drop=True) for k, m in masks.items()}


@dataclass(frozen=True)
class Standardizer:
    """Per-component mean / std of an array column, fitted on the training split only."""

    column: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, column: str) -> Standardizer:
        """Fit on ``frame[column]`` (rows of equal-length arrays); NaNs are ignored."""
        x = np.stack(frame[column].to_list()).astype(np.float64) if len(frame) else np.zeros((0, 0))
        if x.shape[1] == 0:
            return cls(column, (), ())
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(x, axis=0), nan=0.0)
            std = np.nan_to_num(np.nanstd(x, axis=0), nan=1.0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(column, tuple(map(float, mean)), tuple(map(float, std)))

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy with the column standardised and NaN set to 0 (the training mean)."""
        if not self.mean or frame.empty:
            return frame.copy()
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        x = (np.stack(frame[self.column].to_list()).astype(np.float32) - mean) / std
        out = frame.copy()
        out[self.column] = array_column(np.nan_to_num(x, nan=0.0))
        return out


def frame_to_arrays(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The in-memory twin of :func:`read_arrays` for a frame (array columns stacked)."""
    out = {}
    for c in columns:
        col = frame[c]
        first = col.iloc[0] if len(col) else None
        out[c] = np.stack(col.to_list()) if isinstance(first, np.ndarray | list) else col.to_numpy()
    return out
