"""Shared pieces of the inventory decisions: input contract, policy settings, one group's inputs.

The policy (:mod:`shikong.decisions.inventory_policy`) and the replay
(:mod:`shikong.decisions.inventory_simulation`) both read one SKU x warehouse through
:func:`prepare_group`. Everything here is plain pandas/numpy so that it runs inside one
Python worker of Spark's ``groupBy("sku", "warehouse_id").applyInPandas(fn, schema)`` and
in unit tests alike.

Input contract (one stacked frame per group)
--------------------------------------------
The grouped functions (:func:`~shikong.decisions.inventory_policy.make_policy_fn`,
:func:`~shikong.decisions.inventory_simulation.make_simulation_fn`) take ONE pandas
frame holding every row of the group, told apart by a ``kind`` column; its full column set
is :data:`POLICY_INPUT_SCHEMA` (missing optional columns are fine):

``kind = "forecast"``  (one row per forecast day)
    sku, warehouse_id, ds (date), step (int, 1 = first forecast day), yhat, lo80, hi80,
    lo95, hi95. Optional per-row overrides: lead_time_days, unit_price.
``kind = "history"``   (one row per day with actual demand)
    sku, warehouse_id, ds, y. A day without a row counts as zero demand. Optional ``yhat``
    on history rows = an in-sample/backtest fitted value; when present, the empirical
    method bootstraps ``y - yhat`` instead of ``y - mean(y)``.
``kind = "inventory"`` (latest snapshot; the row with the greatest ``ds`` wins)
    sku, warehouse_id, ds (snapshot date), on_hand, on_order. Optional lead_time_days,
    unit_price (take precedence over the same columns on forecast rows; when several
    rows carry a value the largest is used, so row order never matters).

In Spark build it with ``unionByName(..., allowMissingColumns=True)`` of the three sources,
each with ``F.lit(kind).alias("kind")`` (:func:`shikong.decisions.spark_frames.policy_inputs`
does this for the job's tables). The three-frame core functions (``compute_policy``,
``compute_simulation``) take the frames separately for a cogroup or for plain pandas use.

Time convention: the snapshot is taken at the end of its day; forecast days strictly after
it are the future. An order placed at the end of day t arrives at the start of day t + L.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from shikong.config import DecisionSettings

KIND_FORECAST = "forecast"
KIND_HISTORY = "history"
KIND_INVENTORY = "inventory"

#: Column contract of the stacked input frame handed to the grouped functions.
POLICY_INPUT_SCHEMA = (
    "kind string, sku string, warehouse_id string, ds date, step int, yhat double, "
    "lo80 double, hi80 double, lo95 double, hi95 double, y double, on_hand double, "
    "on_order double, lead_time_days double, unit_price double"
)

Method = Literal["normal", "empirical"]

# z of the two-sided central intervals: an 80% band spans +-z80 sigma, a 95% band +-z95.
_Z80 = float(norm.ppf(0.90))
_Z95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class PolicyConfig:
    """Parameters of the inventory policy.

    Attributes:
        lead_time_days: Deterministic supplier lead time L in days (>= 1); a per-row
            ``lead_time_days`` overrides it (rounded up).
        review_days: Review period R in days (>= 1); 1 = review every day.
        service_level: Target cycle service level, P(lead-time demand <= ROP), in [0.5, 1).
        order_cost: Fixed cost K per order placed.
        holding_cost_per_unit_year: Holding cost h per unit and year; ``None`` means
            ``holding_rate * unit_price``.
        holding_rate: Yearly holding cost as a fraction of unit price.
        unit_price: Unit price used when the input has no ``unit_price``.
        method: ``normal`` (per-day sigmas from the forecast bands, independent days) or
            ``empirical`` (quantiles of bootstrapped lead-time demand: forecast + resampled
            daily errors from history).
        n_bootstrap: Bootstrap paths for ``empirical``; when the exact enumeration of all
            error combinations is no larger, it is enumerated instead (exact, no sampling).
        bootstrap_block_days: Moving-block length of the bootstrap (1 = iid days); longer
            blocks keep autocorrelation and weekday patterns of the errors.
        min_error_days: Fewer history errors than this and ``empirical`` falls back to
            ``normal`` (noted in ``notes``).
        history_days: How many most recent history days feed errors and fallbacks.
        seed: Base seed of the bootstrap; combined with a stable hash of the group key.
        round_orders: Round order quantities up to whole units.
        days_per_year: Converts daily demand into the yearly demand D of EOQ.
    """

    lead_time_days: int = 7
    review_days: int = 1
    service_level: float = 0.95
    order_cost: float = 50.0
    holding_cost_per_unit_year: float | None = None
    holding_rate: float = 0.25
    unit_price: float = 10.0
    method: Method = "normal"
    n_bootstrap: int = 5000
    bootstrap_block_days: int = 1
    min_error_days: int = 28
    history_days: int = 182
    seed: int = 0
    round_orders: bool = True
    days_per_year: float = 365.0

    def __post_init__(self) -> None:
        if int(self.lead_time_days) != self.lead_time_days or self.lead_time_days < 1:
            raise ValueError(f"lead_time_days must be an integer >= 1, got {self.lead_time_days}")
        if int(self.review_days) != self.review_days or self.review_days < 1:
            raise ValueError(f"review_days must be an integer >= 1, got {self.review_days}")
        if not 0.5 <= self.service_level < 1.0:
            raise ValueError(f"service_level must be in [0.5, 1), got {self.service_level}")
        if self.order_cost < 0:
            raise ValueError(f"order_cost must be >= 0, got {self.order_cost}")
        if self.holding_cost_per_unit_year is not None and self.holding_cost_per_unit_year <= 0:
            raise ValueError(
                f"holding_cost_per_unit_year must be > 0, got {self.holding_cost_per_unit_year}"
            )
        if self.holding_rate <= 0:
            raise ValueError(f"holding_rate must be > 0, got {self.holding_rate}")
        if self.unit_price <= 0:
            raise ValueError(f"unit_price must be > 0, got {self.unit_price}")
        if self.method not in ("normal", "empirical"):
            raise ValueError(f"method must be 'normal' or 'empirical', got {self.method!r}")
        if self.n_bootstrap < 100:
            raise ValueError(f"n_bootstrap must be >= 100, got {self.n_bootstrap}")
        if self.bootstrap_block_days < 1:
            raise ValueError(f"bootstrap_block_days must be >= 1, got {self.bootstrap_block_days}")
        if self.min_error_days < 2:
            raise ValueError(f"min_error_days must be >= 2, got {self.min_error_days}")
        if self.history_days < 1:
            raise ValueError(f"history_days must be >= 1, got {self.history_days}")
        if self.days_per_year <= 0:
            raise ValueError(f"days_per_year must be > 0, got {self.days_per_year}")


def policy_config(d: DecisionSettings) -> PolicyConfig:
    """Policy parameters from the config (unit price comes per row from the catalogue)."""
    return PolicyConfig(
        lead_time_days=d.lead_time_days,
        review_days=d.review_days,
        service_level=d.service_level,
        order_cost=d.order_cost,
        holding_rate=d.holding_rate,
        method="empirical" if d.method == "empirical" else "normal",
    )


def daily_sigma_from_bands(
    lo80: Sequence[float] | np.ndarray,
    hi80: Sequence[float] | np.ndarray,
    lo95: Sequence[float] | np.ndarray,
    hi95: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Per-day normal sigma implied by the 80% and 95% forecast intervals.

    Each band gives ``(hi - lo) / (2 z)``; the two estimates are averaged, a missing or
    degenerate (negative width) band is ignored. Days with neither band are NaN.

    Args:
        lo80: Lower 80% bounds.
        hi80: Upper 80% bounds.
        lo95: Lower 95% bounds.
        hi95: Upper 95% bounds.

    Returns:
        Array of sigmas (NaN where no band is usable).
    """
    s80 = (np.asarray(hi80, dtype=float) - np.asarray(lo80, dtype=float)) / (2.0 * _Z80)
    s95 = (np.asarray(hi95, dtype=float) - np.asarray(lo95, dtype=float)) / (2.0 * _Z95)
    both = np.vstack([s80, s95])
    both[~np.isfinite(both) | (both < 0)] = np.nan
    with np.errstate(all="ignore"):
        count = np.sum(~np.isnan(both), axis=0)
        total = np.nansum(both, axis=0)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def stack_policy_inputs(
    forecast: pd.DataFrame | None,
    history: pd.DataFrame | None,
    inventory: pd.DataFrame | None,
) -> pd.DataFrame:
    """Stack the three per-group inputs into the single ``kind``-tagged frame (pandas side).

    Args:
        forecast: Forecast rows (or None).
        history: Actual daily demand rows (or None).
        inventory: Snapshot rows (or None).

    Returns:
        A new frame with a ``kind`` column; columns absent from a source are null.
    """
    parts = []
    for kind, frame in (
        (KIND_FORECAST, forecast),
        (KIND_HISTORY, history),
        (KIND_INVENTORY, inventory),
    ):
        if frame is not None and len(frame):
            parts.append(frame.assign(kind=kind))
    if not parts:
        return pd.DataFrame(columns=["kind", "sku", "warehouse_id"])
    return pd.concat(parts, ignore_index=True, sort=False)


def split_policy_input(pdf: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split a stacked frame into (forecast, history, inventory) frames by ``kind``.

    Raises:
        ValueError: If the frame has no ``kind`` column or an unknown kind.
    """
    if "kind" not in pdf.columns:
        raise ValueError("stacked policy input needs a 'kind' column")
    kinds = set(pdf["kind"].dropna().unique()) - {KIND_FORECAST, KIND_HISTORY, KIND_INVENTORY}
    if kinds:
        raise ValueError(f"unknown kind values {sorted(kinds)}")
    return (
        pdf.loc[pdf["kind"] == KIND_FORECAST],
        pdf.loc[pdf["kind"] == KIND_HISTORY],
        pdf.loc[pdf["kind"] == KIND_INVENTORY],
    )


@dataclass(frozen=True)
class PreparedGroup:
    """One SKU x warehouse's inputs, cleaned: what the policy and the replay read."""

    sku: str | None
    warehouse_id: str | None
    fc_mean: np.ndarray  # forecast yhat per future day, clipped at 0
    fc_sigma: np.ndarray  # band sigma per future day (NaN if unknown)
    hist_y: pd.Series  # daily actuals, contiguous dates, missing days = 0
    hist_fit: pd.Series  # fitted values on history days (may be empty)
    on_hand: float | None
    on_order: float | None
    lead_time_days: int
    unit_price: float
    notes: tuple[str, ...]


def _first_key(frames: Sequence[pd.DataFrame], col: str) -> str | None:
    for f in frames:
        if col in f.columns:
            vals = f[col].dropna()
            if len(vals):
                return str(vals.iloc[0])
    return None


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def _num(f: pd.DataFrame, col: str) -> pd.Series:
    if col not in f.columns:
        return pd.Series(np.nan, index=f.index, dtype=float)
    return pd.to_numeric(f[col], errors="coerce").astype(float)


def _override(frames: Sequence[pd.DataFrame], col: str) -> float | None:
    for f in frames:
        vals = _num(f, col)
        vals = vals[np.isfinite(vals)]
        if len(vals):
            # Rows of a group may disagree; the largest value is the cautious, order-free pick.
            return float(vals.max())
    return None


def prepare_group(
    forecast: pd.DataFrame, history: pd.DataFrame, inventory: pd.DataFrame, cfg: PolicyConfig
) -> PreparedGroup:
    """Clean one group's three frames into a :class:`PreparedGroup`.

    Row order never matters (Spark does not guarantee it): ties are broken by value.

    Args:
        forecast: Forecast rows (may be empty).
        history: Actual daily demand rows (may be empty).
        inventory: Snapshot rows (may be empty).
        cfg: Policy configuration (defaults for lead time and unit price).

    Returns:
        The prepared group; data problems are listed in ``notes``.
    """
    notes: list[str] = []
    sku = _first_key((inventory, forecast, history), "sku")
    wh = _first_key((inventory, forecast, history), "warehouse_id")

    # Latest snapshot; ties on the date are broken by the values so that row order (which
    # Spark does not guarantee) cannot change the answer.
    inv = pd.DataFrame(
        {
            "ds": _dates(inventory["ds"]) if "ds" in inventory.columns else pd.NaT,
            "on_hand": _num(inventory, "on_hand"),
            "on_order": _num(inventory, "on_order"),
        }
    )
    inv = inv.dropna(subset=["on_hand"]).sort_values(
        ["ds", "on_hand", "on_order"], na_position="first", kind="mergesort"
    )
    snapshot_date = None
    on_hand: float | None = None
    on_order: float | None = None
    if len(inv):
        last = inv.iloc[-1]
        on_hand = float(last["on_hand"])
        on_order = float(last["on_order"]) if np.isfinite(last["on_order"]) else 0.0
        snapshot_date = last["ds"] if pd.notna(last["ds"]) else None
    else:
        notes.append("no_snapshot")
    inv_rows = inventory.loc[inv.index[-1:]] if len(inv) else inventory.iloc[0:0]

    fc = pd.DataFrame(
        {
            "ds": _dates(forecast["ds"]) if "ds" in forecast.columns else pd.NaT,
            "step": _num(forecast, "step"),
            "yhat": _num(forecast, "yhat"),
            "sigma": daily_sigma_from_bands(
                _num(forecast, "lo80"),
                _num(forecast, "hi80"),
                _num(forecast, "lo95"),
                _num(forecast, "hi95"),
            ),
        }
    )
    fc = fc.loc[np.isfinite(fc["yhat"])]
    if snapshot_date is not None and fc["ds"].notna().any():
        future = fc.loc[fc["ds"] > snapshot_date]
        if len(future) < len(fc):
            if len(future):
                fc = future
            else:
                notes.append("forecast_not_after_snapshot")
    # One value per date; the smallest step is the most recent forecast origin.
    fc = fc.sort_values(["ds", "step"], na_position="last", kind="mergesort")
    if fc["ds"].notna().all():
        fc = fc.drop_duplicates(subset=["ds"], keep="first")
    fc_mean = np.maximum(fc["yhat"].to_numpy(dtype=float), 0.0)
    fc_sigma = fc["sigma"].to_numpy(dtype=float)

    hist = pd.DataFrame(
        {
            "ds": _dates(history["ds"]) if "ds" in history.columns else pd.NaT,
            "y": _num(history, "y"),
            "fit": _num(history, "yhat"),
        }
    ).dropna(subset=["ds"])
    if len(hist):
        if (hist["y"] < 0).any():
            notes.append("negative_history_clipped")
        by_day = hist.groupby("ds").agg(y=("y", "sum"), fit=("fit", "sum"), fit_n=("fit", "count"))
        days = pd.date_range(by_day.index.min(), by_day.index.max(), freq="D")
        hist_y = by_day["y"].clip(lower=0.0).reindex(days, fill_value=0.0).astype(float)
        hist_fit = by_day.loc[by_day["fit_n"] > 0, "fit"].astype(float)
    else:
        hist_y = pd.Series(dtype=float, index=pd.DatetimeIndex([]))
        hist_fit = pd.Series(dtype=float, index=pd.DatetimeIndex([]))

    lt = _override((inv_rows, forecast), "lead_time_days")
    lead_time = cfg.lead_time_days
    if lt is not None:
        if lt > 0:
            lead_time = max(1, math.ceil(lt - 1e-9))
        else:
            notes.append("bad_row_lead_time_ignored")
    price = _override((inv_rows, forecast), "unit_price")
    unit_price = cfg.unit_price
    if price is not None:
        if price > 0:
            unit_price = price
        else:
            notes.append("bad_row_unit_price_ignored")

    return PreparedGroup(
        sku,
        wh,
        fc_mean,
        fc_sigma,
        hist_y,
        hist_fit,
        on_hand,
        on_order,
        lead_time,
        unit_price,
        tuple(notes),
    )


__all__ = [
    "KIND_FORECAST",
    "KIND_HISTORY",
    "KIND_INVENTORY",
    "POLICY_INPUT_SCHEMA",
    "Method",
    "PolicyConfig",
    "PreparedGroup",
    "daily_sigma_from_bands",
    "policy_config",
    "prepare_group",
    "split_policy_input",
    "stack_policy_inputs",
]
