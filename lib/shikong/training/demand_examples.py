"""Demand examples: sliding windows of daily series with calendar, id and spatial context.

Pure pandas builders, per series, so a Spark job runs them with
``groupBy("series_id").applyInPandas`` (:func:`make_demand_examples_fn`) and every task
writes its own shard. Leakage rules (tested): an example at origin ``day0`` sees ``y`` on
``[day0 - L, day0)`` and predicts ``[day0, day0 + H)``; time-varying spatial features are
joined as of ``day0`` (the latest value whose ``available_day <= day0``); the split
(:func:`shikong.training.common.time_split`) puts an example in train only when its whole
target window is ``<= train_end``, in val when it starts after ``train_end`` and ends
``<= val_end``, in test when it starts after ``val_end``; rows straddling a boundary are
dropped. Histories may reach back into an earlier split, as they would at forecast time.
Standardisation statistics are fitted on train only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from shikong.training.common import (
    Standardizer,
    TimeSplit,
    array_column,
    day_number,
    stable_hash,
    time_split,
)


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
    ex["spatial_num"] = array_column(num)
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


def prepare_demand_splits(
    series: pd.DataFrame,
    cfg: DemandExampleConfig,
    split: TimeSplit,
    *,
    context: pd.DataFrame | None = None,
    dynamic: pd.DataFrame | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Examples -> time split -> standardiser fitted on train, ready to be written.

    Write the result with :func:`shikong.io.shards.write_split_shards`
    (``write_split_shards(splits, out_dir, num_shards, meta)``).

    Returns:
        ``(splits, meta)``: the ``train``/``val``/``test`` frames (standardised) and the
        plain-data ``meta.json`` content (example config, split, standardiser, row counts).
    """
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
    return splits, meta
