"""Training examples for the deep models: pure pandas builders, a time split, Parquet shards.

Nothing here imports torch or pyspark. The builders work on pandas frames shaped like the
lakehouse tables and are per-key (per series, per customer), so a Spark job can run them
with ``groupBy(...).applyInPandas`` and write the result with
``.repartition(n).write.parquet(dir)``: every task writes its own shard and nothing is
collected to the driver. :func:`write_shards` is the pyarrow writer for frames already in
one process (tests, small runs); :func:`read_rank_arrays` reads, on each training rank,
only the shards of that rank (shard ``i`` goes to rank ``i % world_size``) and works on
either writer's output.

Leakage rules (tested):

* Demand: an example at origin ``day0`` sees ``y`` on ``[day0 - L, day0)`` and predicts
  ``[day0, day0 + H)``; time-varying spatial features are joined as of ``day0`` (the latest
  value whose ``available_day <= day0``); :func:`time_split` puts an example in train only
  when its whole target window is ``<= train_end``, in val when it starts after
  ``train_end`` and ends ``<= val_end``, in test when it starts after ``val_end``; rows
  straddling a boundary are dropped. Histories may reach back into an earlier split, as
  they would at forecast time. Standardisation statistics are fitted on train only.
* Recommender: the history is the customer's events strictly before the cut time, and the
  split is by cut time.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shikong.encoding import EVENT_CODES, OOV
from shikong.geodesy import haversine

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


def _array_column(rows: Sequence[np.ndarray]) -> list[np.ndarray]:
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
        out[self.column] = _array_column(np.nan_to_num(x, nan=0.0))
        return out


# --------------------------------------------------------------------------- demand


@dataclass(frozen=True)
class DemandExampleConfig:
    """How demand examples are cut from daily series.

    Attributes:
        window: History length L (days); must equal the model's ``window``.
        horizon: Target length H (days); must equal the model's ``horizon``.
        stride: Days between consecutive origins of one series (the latest possible origin
            is always kept).
        value_col: Column of the series value (``y_clean`` in ``silver.sku_daily``).
        static_numeric: Numeric columns of the per-series context frame (e.g.
            ``warehouse_km``), in ``spatial_num`` order.
        dynamic_numeric: Numeric columns of the time-varying frame (e.g. ``gi_z``,
            ``nbr_demand``), appended after the static ones.
        dynamic_key: Key joining the time-varying frame (a context column, e.g. ``cell``).
        min_history_obs: Minimum finite history days for an example to be kept.
    """

    window: int = 28
    horizon: int = 7
    stride: int = 1
    value_col: str = "y_clean"
    static_numeric: tuple[str, ...] = ()
    dynamic_numeric: tuple[str, ...] = ()
    dynamic_key: str = "cell"
    min_history_obs: int = 1

    @property
    def n_spatial(self) -> int:
        """Width of ``spatial_num``."""
        return len(self.static_numeric) + len(self.dynamic_numeric)


DEMAND_ID_COLUMNS = ("sku", "category", "region", "cell")


def available_day(period: pd.Series, kind: str) -> np.ndarray:
    """Day a per-period aggregate (e.g. ``gold.hotspots.period``) may first be used.

    Args:
        period: ``yyyy-MM-dd`` week starts (``kind="week"``) or ``yyyy-MM`` months.
        kind: ``week`` (usable from start + 7 days) or ``month`` (from the next month's
            first day).

    Raises:
        ValueError: For ``all`` (one statistic over the whole history would leak the
            future into every example) or an unknown kind.
    """
    if kind == "week":
        return day_number(pd.to_datetime(period)) + 7
    if kind == "month":
        start = pd.to_datetime(period.astype(str) + "-01")
        return day_number(start + pd.offsets.MonthBegin(1))
    raise ValueError(f"period kind {kind!r}: only 'week' or 'month' can be joined without leakage")


def _series_examples(
    sid: Any, g: pd.DataFrame, cfg: DemandExampleConfig
) -> dict[str, list[Any]] | None:
    days = day_number(g["ds"])
    order = np.argsort(days, kind="stable")
    days = days[order]
    vals = g[cfg.value_col].to_numpy(dtype=np.float64)[order]
    lo, hi = int(days[0]), int(days[-1])
    full = np.full(hi - lo + 1, np.nan)
    full[days - lo] = vals
    win, hor = cfg.window, cfg.horizon
    n = len(full)
    if n < win + hor:
        return None
    starts = np.arange(n - hor, win - 1, -cfg.stride)[::-1]  # index of day0; latest kept
    hist = np.lib.stride_tricks.sliding_window_view(full, win)[starts - win]
    fut = np.lib.stride_tricks.sliding_window_view(full, hor)[starts]
    keep = (np.isfinite(hist).sum(axis=1) >= cfg.min_history_obs) & np.isfinite(fut).any(axis=1)
    if not keep.any():
        return None
    starts, hist, fut = starts[keep], hist[keep], fut[keep]
    sku = g["sku"].iloc[0] if "sku" in g.columns else sid
    return {
        "series_id": [sid] * len(starts),
        "sku_key": [sku] * len(starts),
        "day0": list(lo + starts),
        "y_hist": list(hist.astype(np.float32)),
        "y_fut": list(fut.astype(np.float32)),
    }


def demand_examples(
    series: pd.DataFrame,
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Sliding-window demand examples with calendar, id and spatial context.

    Args:
        series: ``silver.sku_daily``-shaped rows: ``series_id``, ``ds``, ``cfg.value_col``
            (optional ``sku``). Missing days become NaN.
        cfg: Window, horizon, stride and feature columns.
        context: One row per ``series_id`` with optional ``region``, ``cell``, ``category``
            and the ``cfg.static_numeric`` columns (e.g. the warehouse's state, its H3 cell,
            the SKU's category, distance to the warehouse).
        dynamic: Time-varying spatial features: ``cfg.dynamic_key``, ``available_day``
            (days since epoch, see :func:`available_day`) and ``cfg.dynamic_numeric``
            (e.g. ``gold.hotspots.gi_z``); joined as of ``day0``.

    Returns:
        Columns ``series_id``, ``day0``, ``target_end`` (``day0 + H - 1``), ``y_hist`` (L
        float32), ``y_fut`` (H float32), hashed ids ``sku``, ``category``, ``region``,
        ``cell`` (int64) and ``spatial_num`` (float32 array, NaN where unknown; standardise
        with :class:`Standardizer` fitted on train).
    """
    parts = [
        r
        for sid, g in series.groupby("series_id", sort=True)
        if (r := _series_examples(sid, g, cfg))
    ]
    return _with_context(_stack_parts(parts, cfg), cfg, context, dynamic)


def _stack_parts(
    parts: Sequence[Mapping[str, list[Any]]], cfg: DemandExampleConfig
) -> pd.DataFrame:
    cols = ["series_id", "sku_key", "day0", "y_hist", "y_fut"]
    ex = pd.DataFrame({c: [v for p in parts for v in p[c]] for c in cols})
    ex["day0"] = ex["day0"].astype(np.int64)
    ex["target_end"] = ex["day0"] + cfg.horizon - 1
    return ex


def _series_score_example(
    sid: Any, g: pd.DataFrame, cfg: DemandExampleConfig, day0: int | None
) -> dict[str, list[Any]] | None:
    days = day_number(g["ds"])
    last = int(days.max())
    origin = last + 1 if day0 is None else int(day0)
    lo = origin - cfg.window
    hist = np.full(cfg.window, np.nan)
    inside = (days >= lo) & (days < origin)
    hist[days[inside] - lo] = g[cfg.value_col].to_numpy(dtype=np.float64)[inside]
    if np.isfinite(hist).sum() < cfg.min_history_obs:
        return None
    sku = g["sku"].iloc[0] if "sku" in g.columns else sid
    return {
        "series_id": [sid],
        "sku_key": [sku],
        "day0": [origin],
        "y_hist": [hist.astype(np.float32)],
        "y_fut": [np.full(cfg.horizon, np.nan, dtype=np.float32)],
    }


def demand_score_examples(
    series: pd.DataFrame,
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
    day0: int | None = None,
) -> pd.DataFrame:
    """One example per series for forecasting: history ``[day0 - L, day0)``, unknown target.

    Args:
        series: As for :func:`demand_examples`.
        cfg: As for :func:`demand_examples`.
        context: As for :func:`demand_examples`.
        dynamic: As for :func:`demand_examples` (joined as of ``day0``).
        day0: First forecast day (days since epoch); ``None`` = the day after each
            series' last day.

    Returns:
        The columns of :func:`demand_examples` with ``y_fut`` all NaN.
    """
    parts = [
        r
        for sid, g in series.groupby("series_id", sort=True)
        if (r := _series_score_example(sid, g, cfg, day0))
    ]
    return _with_context(_stack_parts(parts, cfg), cfg, context, dynamic)


def _with_context(
    ex: pd.DataFrame,
    cfg: DemandExampleConfig,
    context: pd.DataFrame | None,
    dynamic: pd.DataFrame | None,
) -> pd.DataFrame:
    ctx = context.drop_duplicates("series_id") if context is not None else None
    if ctx is not None:
        keep = ["series_id", *[c for c in ctx.columns if c != "series_id"]]
        ex = ex.merge(ctx[keep], on="series_id", how="left")
    for col in ("category", "region", "cell"):
        if col not in ex.columns:
            ex[col] = None
    num_cols = list(cfg.static_numeric)
    missing = [c for c in num_cols if c not in ex.columns]
    if missing:
        raise KeyError(f"context frame lacks static_numeric columns {missing}")

    if cfg.dynamic_numeric:
        if dynamic is None:
            raise ValueError("dynamic_numeric is set but no dynamic frame was given")
        key = cfg.dynamic_key
        dyn = dynamic[[key, "available_day", *cfg.dynamic_numeric]].copy()
        dyn["available_day"] = dyn["available_day"].astype(np.int64)
        dyn = dyn.dropna(subset=[key]).sort_values("available_day")
        dyn[key] = dyn[key].astype(str)
        ex["_key"] = ex[key].astype(str)
        ex = ex.sort_values("day0", kind="stable")
        ex = pd.merge_asof(
            ex,
            dyn.rename(columns={key: "_key"}),
            left_on="day0",
            right_on="available_day",
            by="_key",
            direction="backward",
            allow_exact_matches=True,
        ).drop(columns=["_key", "available_day"])
        num_cols += list(cfg.dynamic_numeric)

    ex = ex.sort_values(["series_id", "day0"], kind="stable").reset_index(drop=True)
    if num_cols:
        num = ex[num_cols].to_numpy(dtype=np.float32)
    else:
        num = np.zeros((len(ex), 0), dtype=np.float32)
    ex["spatial_num"] = _array_column(num)
    ex["sku"] = stable_hash(ex["sku_key"])
    for col in ("category", "region", "cell"):
        ex[col] = stable_hash(ex[col])
    return ex[
        [
            "series_id",
            "day0",
            "target_end",
            "y_hist",
            "y_fut",
            "sku",
            "category",
            "region",
            "cell",
            "spatial_num",
        ]
    ]


#: Spark DDL of :func:`demand_examples` output (for ``applyInPandas``).
DEMAND_EXAMPLE_SCHEMA = (
    "series_id string, day0 bigint, target_end bigint, y_hist array<float>, "
    "y_fut array<float>, sku bigint, category bigint, region bigint, cell bigint, "
    "spatial_num array<float>"
)


def make_demand_examples_fn(
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn(pdf)`` for ``groupBy("series_id").applyInPandas(fn, DEMAND_EXAMPLE_SCHEMA)``.

    ``context`` and ``dynamic`` are small (per series, per cell x period) and travel inside
    the closure; split the result by ``day0`` / ``target_end`` with Spark filters using the
    :class:`TimeSplit` bounds and write each split with ``.repartition(n).write.parquet``.
    """

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = demand_examples(pdf, cfg, context=context, dynamic=dynamic)
        ex["series_id"] = ex["series_id"].astype(str)
        return ex

    return fn


def make_demand_score_fn(
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
    day0: int | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn(pdf)`` for ``groupBy("series_id").applyInPandas(fn, DEMAND_EXAMPLE_SCHEMA)``
    returning :func:`demand_score_examples` (the forecasting window of each series)."""

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = demand_score_examples(pdf, cfg, context=context, dynamic=dynamic, day0=day0)
        ex["series_id"] = ex["series_id"].astype(str)
        return ex

    return fn


def seasonal_naive_quantiles(
    y_hist: np.ndarray, horizon: int, n_quantiles: int, season: int = 7
) -> np.ndarray:
    """Seasonal-naive baseline as a (N, H, Q) "quantile" forecast (the same value for every
    level): day ``day0 + h`` gets the history value one season earlier."""
    y = np.asarray(y_hist, dtype=np.float64)
    idx = y.shape[1] - season + (np.arange(horizon) % season)
    point = np.nan_to_num(y[:, idx], nan=0.0)
    return np.repeat(point[:, :, None], n_quantiles, axis=2)


# --------------------------------------------------------------------------- recommender


@dataclass(frozen=True)
class RecoExampleConfig:
    """How recommender examples are cut from ``bronze.events``.

    Attributes:
        max_len: History length K (must equal the model's ``max_len``).
        n_wh: Nearest-warehouse distances kept (model's ``n_wh``).
        n_gap_buckets: Gap buckets (model's ``n_gap_buckets``).
        cell_deg: Grid size (degrees) of the location cell when it comes from the event
            lat/lon rather than a user-context frame.
        max_targets: Distinct SKUs of a buying session kept in ``target_items`` (ranking
            metrics with several relevant items).
    """

    max_len: int = 20
    n_wh: int = 3
    n_gap_buckets: int = 24
    cell_deg: float = 0.25
    max_targets: int = 5


@dataclass(frozen=True)
class Vocab:
    """Item and category vocabularies: item index ``i + 2`` (0 pad, 1 OOV), category index
    ``j + 1`` (0 unknown)."""

    items: tuple[str, ...]
    categories: tuple[str, ...] = ()
    item_category: tuple[int, ...] = ()
    _item_pos: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._item_pos.update({s: i + 2 for i, s in enumerate(self.items)})

    @property
    def n_items(self) -> int:
        """Vocabulary size including pad and OOV."""
        return len(self.items) + 2

    @property
    def n_categories(self) -> int:
        """Category vocabulary size including unknown."""
        return len(self.categories) + 1

    def item_index(self, skus: Iterable[Any]) -> np.ndarray:
        """Item indices (OOV = 1) of SKUs."""
        return np.asarray([self._item_pos.get(str(s), OOV) for s in skus], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``meta.json``."""
        return {k: list(v) for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocab:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["items"]), tuple(data["categories"]), tuple(data["item_category"]))


def build_vocab(skus: Iterable[Any], products: pd.DataFrame | None = None) -> Vocab:
    """Vocabulary of the catalogue (pass ``bronze.products.sku``: the catalogue is dimension
    data, known in advance); categories from ``products`` (``sku``, ``category``)."""
    items = tuple(sorted({str(s) for s in skus if s is not None and s == s}))
    if products is None or "category" not in products.columns:
        return Vocab(items, (), tuple([0] * (len(items) + 2)))
    cat_of = dict(zip(products["sku"].astype(str), products["category"], strict=False))
    cats = tuple(sorted({str(c) for c in cat_of.values() if c is not None and c == c}))
    cpos = {c: j + 1 for j, c in enumerate(cats)}
    item_cat = [0, 0] + [cpos.get(str(cat_of.get(s)), 0) for s in items]
    return Vocab(items, cats, tuple(item_cat))


RECO_COLUMNS = (
    "customer_id",
    "session_id",
    "cut_s",
    "hist_last_s",
    "hist_items",
    "hist_cats",
    "hist_events",
    "hist_gaps",
    "region",
    "cell",
    "wh_km",
    "hour",
    "dow",
    "target_item",
    "buyer",
    "target_items",
)


def _context_map(
    user_context: pd.DataFrame | None,
) -> dict[Any, tuple[Any, Any, np.ndarray | None]]:
    """``customer_id -> (region, cell, wh_km or None)``; a dict, since a ``.loc`` per
    customer dominates the builders' run time on large inputs."""
    if user_context is None:
        return {}
    ctx = user_context.drop_duplicates("customer_id")
    n = len(ctx)
    region = ctx["region"].tolist() if "region" in ctx.columns else [None] * n
    cell = ctx["cell"].tolist() if "cell" in ctx.columns else [None] * n
    kms = ctx["wh_km"].tolist() if "wh_km" in ctx.columns else [None] * n
    out = {}
    for cid, r, c, k in zip(ctx["customer_id"].tolist(), region, cell, kms, strict=True):
        r = None if r is None or (isinstance(r, float) and math.isnan(r)) else r
        c = None if c is None or (isinstance(c, float) and math.isnan(c)) else c
        km = None if k is None or (isinstance(k, float) and math.isnan(k)) else np.asarray(k, float)
        out[cid] = (r, c, km)
    return out


def _coded_events(ev: pd.DataFrame, vocab: Vocab) -> pd.DataFrame:
    """Events (a private copy) with epoch seconds, item / category / event codes, sorted by
    customer and time."""
    ev["_ts"] = epoch_seconds(ev["event_ts"])
    ev["_item"] = vocab.item_index(ev["sku"])
    item_cat = np.asarray(vocab.item_category, dtype=np.int64)
    ev["_cat"] = item_cat[ev["_item"].to_numpy()] if len(item_cat) else 0
    ev["_evt"] = ev["event_type"].map(EVENT_CODES).fillna(0).astype(np.int64)
    ev = ev.sort_values(["customer_id", "_ts", "event_id"], kind="stable")
    return ev


def _reco_frame(rows: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Example rows -> frame with hashed location ids and fixed dtypes."""
    out = pd.DataFrame(rows)
    out["region"] = stable_hash(out["region"])
    out["cell"] = stable_hash(out["cell"])
    for col in ("cut_s", "hist_last_s", "hour", "dow", "target_item"):
        out[col] = out[col].astype(np.int64)
    out["buyer"] = out["buyer"].astype(np.float32)
    return out


def recommender_examples(
    events: pd.DataFrame,
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    user_context: pd.DataFrame | None = None,
    warehouses: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One example per (customer, session), cut at its prediction time.

    The cut is one second after the session's last browsing (non-purchase) event before its
    first purchase (never later than that purchase) for a buying session, whose target is
    the first purchased SKU (``buyer = 1``); one second after the last event for a
    non-buying session (``target_item = 0``, ``buyer = 0``). Both kinds are thus cut the
    same way, right after browsing, so the gap to the cut does not give the label away.
    The history is the customer's last ``max_len`` events strictly before the cut, from any
    session (earlier purchases included), left-padded.

    Args:
        events: ``bronze.events`` rows (``event_id``, ``session_id``, ``customer_id``,
            ``event_ts``, ``event_type``, ``sku``, ``lat``, ``lon``).
        vocab: Item / category vocabularies.
        cfg: Sizes.
        user_context: Optional per-customer location (``customer_id``, ``region``,
            ``cell`` and optionally ``wh_km`` as a list of nearest-warehouse km, e.g. from
            ``silver.customers_geo``). Without it the cell is the ``cell_deg`` grid cell of
            the session's first located event at or before the cut and the region unknown.
        warehouses: Optional ``lat``, ``lon`` of the warehouses, for ``wh_km`` when
            ``user_context`` does not give it.

    Returns:
        Columns :data:`RECO_COLUMNS` (``cut_s``/``hist_last_s``: epoch seconds;
        ``hist_last_s = -1`` for an empty history; ``target_items``: the session's distinct
        purchased items in purchase order, 0-padded to ``max_targets``).
    """
    k_len, n_wh = cfg.max_len, cfg.n_wh
    ev = _coded_events(events.copy(), vocab)

    ctx = _context_map(user_context)
    wh = None
    if warehouses is not None and len(warehouses):
        wh = (warehouses["lat"].to_numpy(float), warehouses["lon"].to_numpy(float))

    rows: dict[str, list[Any]] = {c: [] for c in RECO_COLUMNS}
    purchase, deg = EVENT_CODES["purchase"], cfg.cell_deg
    cust_codes, cust_names = pd.factorize(ev["customer_id"], sort=False)
    sess_codes, sess_names = pd.factorize(ev["session_id"], sort=False)
    bounds = np.flatnonzero(np.diff(cust_codes)) + 1
    all_ts, all_items = ev["_ts"].to_numpy(), ev["_item"].to_numpy()
    all_cats, all_evts = np.asarray(ev["_cat"].to_numpy(), dtype=np.int64), ev["_evt"].to_numpy()
    all_lat, all_lon = ev["lat"].to_numpy(float), ev["lon"].to_numpy(float)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(ev)], strict=True):
        cust = cust_names[cust_codes[a]]
        ts, items, cats, evts = all_ts[a:b], all_items[a:b], all_cats[a:b], all_evts[a:b]
        lat_c, lon_c, sess = all_lat[a:b], all_lon[a:b], sess_codes[a:b]
        region, ctx_cell, ctx_km = ctx.get(cust, (None, None, None))
        for code in dict.fromkeys(sess.tolist()):  # first-seen order, cheaper than pd.unique
            pos = np.flatnonzero(sess == code)
            bought = pos[evts[pos] == purchase]
            targets = np.zeros(cfg.max_targets, dtype=np.int64)
            if len(bought):
                distinct = list(dict.fromkeys(items[bought].tolist()))[: cfg.max_targets]
                targets[: len(distinct)] = distinct
                first = bought[0]
                browse = pos[(pos < first) & (evts[pos] != purchase)]
                # Just after the last browsing event, but never at or after the purchase.
                cut = int(min(ts[browse[-1]] + 1, ts[first])) if len(browse) else int(ts[first])
                target = int(items[first])
            else:
                cut = int(ts[pos[-1]]) + 1
                target = 0
            j = int(np.searchsorted(ts, cut, side="left"))
            i0 = max(0, j - k_len)
            n = j - i0
            pad = k_len - n

            def seq(a: np.ndarray, i0: int = i0, j: int = j, pad: int = pad) -> np.ndarray:
                return np.concatenate([np.zeros(pad, np.int64), a[i0:j].astype(np.int64)])

            seen = pos[(ts[pos] <= cut) & np.isfinite(lat_c[pos]) & np.isfinite(lon_c[pos])]
            lat = float(lat_c[seen[0]]) if len(seen) else math.nan
            lon = float(lon_c[seen[0]]) if len(seen) else math.nan
            cell, wkm = ctx_cell, ctx_km
            if cell is None and math.isfinite(lat):
                cell = f"g{deg}:{math.floor(lat / deg)}:{math.floor(lon / deg)}"
            if wkm is None and wh is not None and math.isfinite(lat):
                wkm = np.sort(haversine(lat, lon, wh[0], wh[1]))
            dist = np.zeros(n_wh, dtype=np.float32)
            if wkm is not None:
                k = min(n_wh, len(wkm))
                dist[:k] = np.log1p(np.asarray(wkm[:k], dtype=np.float64))
            gaps = np.zeros(k_len, dtype=np.int64)
            if n:
                gaps[pad:] = gap_bucket(cut - ts[i0:j], cfg.n_gap_buckets)
            cut_ts = EPOCH + pd.Timedelta(seconds=cut)
            values = (
                cust, sess_names[code], cut, int(ts[j - 1]) if n else -1,
                seq(items), seq(cats), seq(evts), gaps, region, cell, dist,
                cut_ts.hour, cut_ts.dayofweek, target, 1.0 if len(bought) else 0.0, targets,
            )  # fmt: skip
            for col, value in zip(RECO_COLUMNS, values, strict=True):
                rows[col].append(value)

    out = _reco_frame(rows)
    return out.sort_values(["cut_s", "customer_id"], kind="stable").reset_index(drop=True)


#: Spark DDL of :func:`recommender_examples` output (for ``applyInPandas``).
RECO_EXAMPLE_SCHEMA = (
    "customer_id string, session_id string, cut_s bigint, hist_last_s bigint, "
    "hist_items array<bigint>, hist_cats array<bigint>, hist_events array<bigint>, "
    "hist_gaps array<bigint>, region bigint, cell bigint, wh_km array<float>, hour bigint, "
    "dow bigint, target_item bigint, buyer float, target_items array<bigint>"
)


def recommender_score_examples(
    events: pd.DataFrame,
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    cut_s: int,
    user_context: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One example per customer at a common cut time, for serving recommendations.

    The history is the customer's last ``max_len`` events strictly before ``cut_s`` (as in
    :func:`recommender_examples`); the location is the user context's (``region``,
    ``cell``, ``wh_km``) or, without one, the grid cell of the customer's latest located
    event. Targets are unknown (``target_item = 0``, ``buyer = 0``).

    Args:
        events: ``bronze.events`` rows.
        vocab: Item / category vocabularies.
        cfg: Sizes.
        cut_s: Prediction time (epoch seconds).
        user_context: Optional per-customer ``region``, ``cell``, ``wh_km``.

    Returns:
        Columns :data:`RECO_COLUMNS`, one row per customer with at least one event before
        the cut.
    """
    ev = _coded_events(events.loc[epoch_seconds(events["event_ts"]) < cut_s].copy(), vocab)
    ctx = _context_map(user_context)
    k_len, deg = cfg.max_len, cfg.cell_deg
    cut_ts = EPOCH + pd.Timedelta(seconds=int(cut_s))
    rows: dict[str, list[Any]] = {c: [] for c in RECO_COLUMNS}
    codes, names = pd.factorize(ev["customer_id"], sort=False)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    all_ts, all_items = ev["_ts"].to_numpy(), ev["_item"].to_numpy(np.int64)
    all_cats = np.asarray(ev["_cat"].to_numpy(), dtype=np.int64)
    all_evts = ev["_evt"].to_numpy(np.int64)
    all_lat, all_lon = ev["lat"].to_numpy(float), ev["lon"].to_numpy(float)
    zeros = np.zeros(k_len, np.int64)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(ev)], strict=True):
        if b <= a:
            continue
        cust = names[codes[a]]
        i0 = max(a, b - k_len)
        n, pad = b - i0, k_len - (b - i0)

        def seq(arr: np.ndarray, i0: int = i0, b: int = b, pad: int = pad) -> np.ndarray:
            return np.concatenate([zeros[:pad], arr[i0:b]])

        region, cell, wkm = ctx.get(cust, (None, None, None))
        if cell is None:
            ok = np.flatnonzero(np.isfinite(all_lat[a:b]) & np.isfinite(all_lon[a:b]))
            if len(ok):
                lat, lon = float(all_lat[a + ok[-1]]), float(all_lon[a + ok[-1]])
                cell = f"g{deg}:{math.floor(lat / deg)}:{math.floor(lon / deg)}"
        dist = np.zeros(cfg.n_wh, dtype=np.float32)
        if wkm is not None:
            k = min(cfg.n_wh, len(wkm))
            dist[:k] = np.log1p(wkm[:k])
        gaps = np.zeros(k_len, dtype=np.int64)
        gaps[pad:] = gap_bucket(cut_s - all_ts[i0:b], cfg.n_gap_buckets)
        values = (
            cust, None, int(cut_s), int(all_ts[b - 1]) if n else -1,
            seq(all_items), seq(all_cats), seq(all_evts), gaps, region, cell, dist,
            cut_ts.hour, cut_ts.dayofweek, 0, 0.0, np.zeros(cfg.max_targets, dtype=np.int64),
        )  # fmt: skip
        for col, value in zip(RECO_COLUMNS, values, strict=True):
            rows[col].append(value)
    return _reco_frame(rows)


def make_recommender_examples_fn(
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    user_context: pd.DataFrame | None = None,
    warehouses: pd.DataFrame | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn(pdf)`` for ``events.groupBy("customer_id").applyInPandas(fn,
    RECO_EXAMPLE_SCHEMA)`` (a customer's whole history must be in one group)."""

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = recommender_examples(pdf, vocab, cfg, user_context=user_context, warehouses=warehouses)
        for col in ("customer_id", "session_id"):
            ex[col] = ex[col].astype(str)
        return ex

    return fn


# --------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class DataPaths:
    """Shard folders of one training data set (any folder of ``*.parquet`` files).

    Attributes:
        train: Training shards.
        val: Validation shards (early stopping).
        test: Test shards (not read by the training loop).
        meta: Optional ``meta.json`` (vocabularies, standardiser, split, configs).
    """

    train: str
    val: str
    test: str | None = None
    meta: str | None = None


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    arrays, names = [], []
    for name in frame.columns:
        col = frame[name]
        first = col.iloc[0] if len(col) else None
        if isinstance(first, np.ndarray | list):
            rows = [np.asarray(v) for v in col]
            widths = {r.shape[0] for r in rows}
            width = widths.pop() if len(widths) == 1 else None
            if width:
                flat = np.concatenate(rows)
                arr: pa.Array = pa.FixedSizeListArray.from_arrays(pa.array(flat), width)
            elif width == 0:
                arr = pa.array(
                    [[] for _ in rows], type=pa.list_(pa.from_numpy_dtype(rows[0].dtype))
                )
            else:
                arr = pa.array([r.tolist() for r in rows])
        else:
            arr = pa.array(col.to_numpy() if col.dtype != object else col.tolist())
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def write_shards(
    frame: pd.DataFrame, out_dir: str | Path, num_shards: int, *, overwrite: bool = True
) -> list[str]:
    """Write a frame as ``num_shards`` Parquet files of (nearly) equal row counts.

    Row order is kept (shard ``i`` holds the ``i``-th contiguous block). Array columns
    become fixed-size list columns.

    Args:
        frame: Examples.
        out_dir: Folder; its old ``*.parquet`` files are removed when ``overwrite``.
        num_shards: Files to write (use a multiple of the largest world size).
        overwrite: Replace existing shards; otherwise fail if any exist.

    Returns:
        The shard paths, in order.
    """
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    out = Path(out_dir)
    old = sorted(out.glob("*.parquet")) if out.exists() else []
    if old and not overwrite:
        raise FileExistsError(f"{out} already holds shards")
    for p in old:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    table = _to_arrow(frame.reset_index(drop=True))  # one schema for every shard
    bounds = np.linspace(0, len(frame), num_shards + 1).round().astype(int)
    for i in range(num_shards):
        path = out / f"part-{i:05d}.parquet"
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), path)
        paths.append(str(path))
    return paths


def shard_files(folder: str | Path) -> list[str]:
    """Every ``*.parquet`` under a folder (Spark part files included; ``_``/``.`` names and
    folders skipped), sorted so every rank sees the same order."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no shard folder {root}")
    files = [
        p
        for p in root.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    ]
    return sorted(str(p) for p in files)


def rank_shards(folder: str | Path, rank: int, world_size: int) -> list[str]:
    """The shards of one rank: shard ``i`` belongs to rank ``i % world_size``.

    Raises:
        ValueError: When there are fewer shards than ranks (a rank would have no data).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    files = shard_files(folder)
    if len(files) < world_size:
        raise ValueError(
            f"{folder}: {len(files)} shards for {world_size} ranks; write at least one per rank"
        )
    return files[rank::world_size]


def _column_to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks()
    if (
        pa.types.is_fixed_size_list(arr.type)
        or pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
    ):
        n = len(arr)
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        if n == 0:
            return flat.reshape(0, 0)
        if flat.size % n:
            raise ValueError("array column with rows of different lengths")
        return flat.reshape(n, flat.size // n)
    return arr.to_numpy(zero_copy_only=False)


def read_arrays(
    files: Sequence[str], columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read shards into one numpy array per column (array columns -> 2-D)."""
    tables = [pq.read_table(f, columns=list(columns) if columns else None) for f in files]
    tables = [t for t in tables if t.num_rows] or tables[:1]
    if not tables:
        return {c: np.zeros(0) for c in columns or ()}
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return {name: _column_to_numpy(table.column(name)) for name in table.column_names}


def read_rank_arrays(
    folder: str | Path, rank: int, world_size: int, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Arrays of only this rank's shards (see :func:`rank_shards`)."""
    return read_arrays(rank_shards(folder, rank, world_size), columns)


def read_rank_frame(
    folder: str | Path, rank: int, world_size: int, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """This rank's shards as a pandas frame (array columns as arrays per row)."""
    arrays = read_rank_arrays(folder, rank, world_size, columns)
    return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in arrays.items()})


def frame_to_arrays(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The in-memory twin of :func:`read_arrays` for a frame (array columns stacked)."""
    out = {}
    for c in columns:
        col = frame[c]
        first = col.iloc[0] if len(col) else None
        out[c] = np.stack(col.to_list()) if isinstance(first, np.ndarray | list) else col.to_numpy()
    return out


def write_split_shards(
    splits: Mapping[str, pd.DataFrame],
    out_dir: str | Path,
    num_shards: int,
    meta: Mapping[str, Any] | None = None,
) -> DataPaths:
    """Write ``train``/``val``/``test`` splits as shard folders plus ``meta.json``."""
    root = Path(out_dir)
    folders = {}
    for name in ("train", "val", "test"):
        if name in splits:
            write_shards(splits[name], root / name, num_shards)
            folders[name] = str(root / name)
    meta_path = None
    if meta is not None:
        meta_path = root / "meta.json"
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
    return DataPaths(
        train=folders["train"],
        val=folders["val"],
        test=folders.get("test"),
        meta=str(meta_path) if meta_path else None,
    )


def prepare_demand_data(
    series: pd.DataFrame,
    cfg: DemandExampleConfig,
    split: TimeSplit,
    out_dir: str | Path,
    num_shards: int,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
) -> DataPaths:
    """Examples -> time split -> standardiser fitted on train -> shards + meta."""
    ex = demand_examples(series, cfg, context=context, dynamic=dynamic)
    splits = time_split(ex, split, start_col="day0", end_col="target_end")
    std = Standardizer.fit(splits["train"], "spatial_num")
    splits = {k: std.apply(v) for k, v in splits.items()}
    meta = {
        "kind": "demand",
        "examples": asdict(cfg),
        "split": asdict(split),
        "standardizer": asdict(std),
        "rows": {k: len(v) for k, v in splits.items()},
    }
    return write_split_shards(splits, out_dir, num_shards, meta)
