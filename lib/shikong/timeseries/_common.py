"""Shared helpers of the per-series time-series functions (internal).

Everything here is plain pandas/numpy so that the grouped functions can run inside a Spark
``applyInPandas`` worker without touching the JVM.
"""

from __future__ import annotations

import datetime as _dt
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from shikong.frames import for_each_group

logger = logging.getLogger(__name__)


def for_each_series(
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    fields: Sequence[tuple[str, str]],
    *,
    key: str = "series_id",
    drop: Sequence[str] = (),
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Lift a one-series function to a frame holding several whole series
    (:func:`shikong.frames.for_each_group` keyed by ``key``)."""
    return for_each_group(fn, list(fields), keys=(key,), drop=drop)


def to_timestamps(values: pd.Series | Sequence[object]) -> pd.DatetimeIndex:
    """Parse dates (``datetime.date``, strings or datetimes) to midnight timestamps."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(values), errors="coerce"))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.normalize()


def to_date_objects(idx: pd.DatetimeIndex) -> np.ndarray:
    """Timestamps -> ``datetime.date`` objects, the form Spark hands a ``date`` column to pandas."""
    return np.array([ts.date() for ts in idx], dtype=object)


def as_timestamp(value: _dt.date | str | pd.Timestamp | None) -> pd.Timestamp | None:
    """Normalise an optional configured date to a midnight ``Timestamp``."""
    if value is None:
        return None
    return pd.Timestamp(value).normalize()


def first_series_id(df: pd.DataFrame, column: str = "series_id") -> str | None:
    """The key of a grouped frame (all rows share it); ``None`` when it cannot be told."""
    if column not in df.columns or df.empty:
        return None
    ids = df[column].dropna()
    return None if ids.empty else str(ids.iloc[0])


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a clear error when the wiring passes a frame without the needed columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: input is missing column(s) {missing}; got {list(df.columns)}")


@contextmanager
def quiet() -> Iterator[None]:
    """Silence numerical warnings of statsmodels/numpy for one fit.

    Convergence and start-parameter warnings are expected on thousands of small series and
    are reported through result flags instead; letting them through would flood executor
    logs.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def fill_linear(y: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs by position, nearest value held at the edges.

    Returns an all-NaN array when there is no finite value at all.
    """
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y.copy()
    pos = np.arange(y.size)
    out = y.copy()
    out[~ok] = np.interp(pos[~ok], pos[ok], y[ok])
    return out


def daily_frame(
    df: pd.DataFrame,
    value_col: str,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Aggregate one series to one row per calendar day and complete the calendar.

    Duplicate days are summed over their usable rows (a day is observed when at least one of
    its rows is available and has a value), since the input is units sold per day.

    Args:
        df: One series with ``ds``, ``value_col`` and optionally ``available``.
        value_col: The value column to aggregate.
        start: First day of the calendar; defaults to the first date of the series.
        end: Last day of the calendar; defaults to the last date of the series.

    Returns:
        A frame indexed by a complete daily ``DatetimeIndex`` named ``ds`` with columns
        ``value`` (float, NaN when not observed), ``present`` (a row existed),
        ``unavailable`` (all rows flagged ``available == False``), ``null_value`` (rows
        existed and were available but had no value) and ``recorded`` (sum of the recorded
        values regardless of availability, NaN when none).
    """
    ds = to_timestamps(df["ds"])
    val = pd.to_numeric(df[value_col], errors="coerce").to_numpy(dtype=float)
    if "available" in df.columns:
        avail_raw = df["available"]
        # null availability means "not reported": trust the value in that case
        unavailable_row = avail_raw.eq(False).fillna(False).to_numpy(dtype=bool)
    else:
        unavailable_row = np.zeros(len(df), dtype=bool)
    rows = pd.DataFrame(
        {
            "ds": ds,
            "recorded": val,
            "usable": np.where(unavailable_row | ~np.isfinite(val), np.nan, val),
            "avail_row": ~unavailable_row,
        }
    )
    rows = rows.loc[rows["ds"].notna()]
    n_dupes = int(rows["ds"].duplicated().sum())
    if n_dupes:
        logger.warning("%d duplicate day row(s) summed", n_dupes)
    g = rows.groupby("ds", sort=True)
    day = pd.DataFrame(
        {
            "value": g["usable"].sum(min_count=1),
            "recorded": g["recorded"].sum(min_count=1),
            "any_avail": g["avail_row"].any(),
        }
    )
    if day.empty and (start is None or end is None):
        out = pd.DataFrame(
            columns=["value", "present", "unavailable", "null_value", "recorded"],
            index=pd.DatetimeIndex([], name="ds"),
        )
        return out.astype(
            {
                "value": float,
                "present": bool,
                "unavailable": bool,
                "null_value": bool,
                "recorded": float,
            }
        )
    lo = start if start is not None else day.index.min()
    hi = end if end is not None else day.index.max()
    cal = pd.date_range(lo, hi, freq="D", name="ds")
    day = day.reindex(cal)
    present = day["any_avail"].notna().to_numpy(dtype=bool)
    any_avail = day["any_avail"].eq(True).to_numpy(dtype=bool)
    value = day["value"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "value": value,
            "present": present,
            "unavailable": present & ~any_avail,
            "null_value": present & any_avail & ~np.isfinite(value),
            "recorded": day["recorded"].to_numpy(dtype=float),
        },
        index=cal,
    )
