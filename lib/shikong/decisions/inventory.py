"""Inventory policy per SKU x warehouse: safety stock, reorder point, order-up-to, EOQ, replay.

Everything here is plain pandas/numpy so that it runs inside one Python worker of Spark's
``groupBy("sku", "warehouse_id").applyInPandas(fn, schema)`` and in unit tests alike.

Input contract (one stacked frame per group)
--------------------------------------------
The grouped functions (:func:`make_policy_fn`, :func:`make_simulation_fn`) take ONE pandas
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
each with ``F.lit(kind).alias("kind")``. The three-frame core functions
(:func:`compute_policy`, :func:`compute_simulation`) take the frames separately for a
cogroup or for plain pandas use.

Time convention: the snapshot is taken at the end of its day; forecast days strictly after
it are the future. An order placed at the end of day t arrives at the start of day t + L.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from shikong.decisions._frames import empty_frame, frame_from_records, stable_seed

logger = logging.getLogger(__name__)

KIND_FORECAST = "forecast"
KIND_HISTORY = "history"
KIND_INVENTORY = "inventory"

#: Column contract of the stacked input frame handed to the grouped functions.
POLICY_INPUT_SCHEMA = (
    "kind string, sku string, warehouse_id string, ds date, step int, yhat double, "
    "lo80 double, hi80 double, lo95 double, hi95 double, y double, on_hand double, "
    "on_order double, lead_time_days double, unit_price double"
)

#: One row per SKU x warehouse (output of :func:`make_policy_fn`).
POLICY_SCHEMA = (
    "sku string, warehouse_id string, lead_time_days int, review_days int, "
    "service_level double, mean_daily_demand double, lead_time_demand double, "
    "safety_stock double, reorder_point double, order_up_to double, eoq double, "
    "on_hand double, on_order double, order_qty double, days_of_cover double, "
    "stockout_risk double, method string, inventory_position double, unit_price double, "
    "holding_cost_unit_year double, notes string"
)

#: Two rows per SKU x warehouse, ``policy`` in {"policy", "naive"} (:func:`make_simulation_fn`).
SIMULATION_SCHEMA = (
    "sku string, warehouse_id string, policy string, fill_rate double, stockout_days int, "
    "avg_inventory double, total_cost double, orders_placed int, sim_days int, "
    "start_date date, end_date date, total_demand double, units_served double, "
    "lost_units double, ordering_cost double, holding_cost double, penalty_cost double, "
    "start_on_hand double, units_received double, end_on_hand double, end_on_order double, "
    "balance_ok boolean"
)

#: Columns of the daily ledger returned by :func:`simulate_ledger`.
LEDGER_COLUMNS: tuple[str, ...] = (
    "day",
    "ds",
    "start_on_hand",
    "receipts",
    "demand",
    "served",
    "lost",
    "end_on_hand",
    "order_placed",
    "on_order_end",
    "position_end",
)

Method = Literal["normal", "empirical"]
SimPolicy = Literal["policy", "naive"]

# z of the two-sided central intervals: an 80% band spans +-z80 sigma, a 95% band +-z95.
_Z80 = float(norm.ppf(0.90))
_Z95 = float(norm.ppf(0.975))
_BALANCE_TOL = 1e-9


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


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the replay of recent demand.

    The naive benchmark reviews on the same days as the policy (every R days); at a review
    it orders ``ceil(m * naive_cover_days)`` units when the inventory position
    (on hand + on order) is below ``m * (L + R)``, where ``m`` is the mean actual daily
    demand of the last ``naive_window_days`` days up to and including the review day.
    That is "reorder when what you have will not last until the next delivery, and order
    two weeks' worth" - no safety stock, no forecast.

    Attributes:
        weeks: Replay the last ``weeks * 7`` days of history (fewer if history is shorter).
        naive_window_days: Trailing window of the naive mean (4 weeks).
        naive_cover_days: Days of mean demand the naive policy orders.
        lost_sale_penalty: Cost per unit of unmet demand (lost sales, no backorders).
        initial_on_hand: Opening stock of both policies; ``None`` = the policy's
            order-up-to level S (rounded up when ``round_orders``).
    """

    weeks: int = 8
    naive_window_days: int = 28
    naive_cover_days: float = 14.0
    lost_sale_penalty: float = 0.0
    initial_on_hand: float | None = None

    def __post_init__(self) -> None:
        if self.weeks < 1:
            raise ValueError(f"weeks must be >= 1, got {self.weeks}")
        if self.naive_window_days < 1:
            raise ValueError(f"naive_window_days must be >= 1, got {self.naive_window_days}")
        if self.naive_cover_days <= 0:
            raise ValueError(f"naive_cover_days must be > 0, got {self.naive_cover_days}")
        if self.lost_sale_penalty < 0:
            raise ValueError(f"lost_sale_penalty must be >= 0, got {self.lost_sale_penalty}")
        if self.initial_on_hand is not None and self.initial_on_hand < 0:
            raise ValueError(f"initial_on_hand must be >= 0, got {self.initial_on_hand}")


@dataclass(frozen=True)
class PolicyParams:
    """The policy quantities of one SKU x warehouse (what :func:`compute_policy` reports)."""

    lead_time_days: int
    review_days: int
    service_level: float
    mean_daily_demand: float
    lead_time_demand: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    eoq: float
    method: str
    unit_price: float
    holding_cost_unit_year: float
    order_cost: float


# --------------------------------------------------------------------------------------
# Building blocks (public for reuse and for hand-checkable tests)
# --------------------------------------------------------------------------------------


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


def economic_order_quantity(annual_demand: float, order_cost: float, holding_cost: float) -> float:
    """EOQ = sqrt(2 D K / h).

    Args:
        annual_demand: Yearly demand D in units.
        order_cost: Fixed cost K per order.
        holding_cost: Holding cost h per unit and year (> 0).

    Returns:
        The economic order quantity; NaN when ``holding_cost`` is not positive.
    """
    if not holding_cost > 0:
        return float("nan")
    return math.sqrt(2.0 * max(annual_demand, 0.0) * max(order_cost, 0.0) / holding_cost)


def lead_time_demand_samples(
    daily_mean: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
    block_days: int = 1,
) -> np.ndarray:
    """Samples of total demand over ``len(daily_mean)`` days: sum of max(0, mean_d + e_d).

    ``e_d`` are resampled from ``errors``. When all ``len(errors) ** days`` combinations
    fit in ``n_bootstrap`` (and ``block_days == 1``) they are enumerated - every sample then
    carries equal weight and quantiles are exact; otherwise ``n_bootstrap`` paths are drawn
    from ``rng`` (moving blocks of ``block_days`` consecutive errors).

    Args:
        daily_mean: Expected demand per day of the horizon.
        errors: Daily errors in chronological order (actual minus expected).
        n_bootstrap: Sample size when not enumerating.
        rng: Seeded generator.
        block_days: Moving-block length.

    Returns:
        1-D array of equally weighted samples of the horizon total.
    """
    mean = np.asarray(daily_mean, dtype=float)
    err = np.asarray(errors, dtype=float)
    days, n = len(mean), len(err)
    if days == 0:
        return np.zeros(1)
    if n == 0:
        return np.array([float(np.maximum(mean, 0.0).sum())])
    idx = _error_indices(days, n, n_bootstrap=n_bootstrap, rng=rng, block_days=block_days)
    return np.maximum(mean[None, :] + err[idx], 0.0).sum(axis=1)


def _error_indices(
    days: int, n: int, *, n_bootstrap: int, rng: np.random.Generator, block_days: int
) -> np.ndarray:
    if block_days == 1 and n**days <= n_bootstrap:
        return np.indices((n,) * days).reshape(days, -1).T
    block = max(1, min(block_days, n))
    if block == 1:
        return rng.integers(0, n, size=(n_bootstrap, days))
    n_blocks = -(-days // block)
    starts = rng.integers(0, n - block + 1, size=(n_bootstrap, n_blocks))
    return (starts[:, :, None] + np.arange(block)).reshape(n_bootstrap, -1)[:, :days]


def _quantile(samples: np.ndarray, q: float) -> float:
    # inverted CDF = smallest x with P(D <= x) >= q, i.e. the service-level definition.
    return float(np.quantile(samples, q, method="inverted_cdf"))


# --------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------


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
class _Group:
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


def _prepare(
    forecast: pd.DataFrame, history: pd.DataFrame, inventory: pd.DataFrame, cfg: PolicyConfig
) -> _Group:
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

    return _Group(
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


# --------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------


def _recent(s: pd.Series, days: int) -> pd.Series:
    if s.empty:
        return s
    return s.loc[s.index > s.index.max() - pd.Timedelta(days=days)]


def _errors(g: _Group, cfg: PolicyConfig) -> np.ndarray:
    y = _recent(g.hist_y, cfg.history_days)
    fit = g.hist_fit.reindex(y.index).dropna()
    if len(fit):
        return (y.loc[fit.index] - fit).to_numpy(dtype=float)
    return (y - y.mean()).to_numpy(dtype=float) if len(y) else np.zeros(0)


def _daily_model(
    g: _Group, horizon: int, cfg: PolicyConfig
) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
    """Expected demand and sigma for each of the next ``horizon`` days."""
    notes: list[str] = []
    if len(g.fc_mean):
        mean = g.fc_mean
        mean_daily = float(mean.mean())
        sigma = g.fc_sigma.copy()
        if np.isnan(sigma).all():
            err = _errors(g, cfg)
            fill = float(np.std(err, ddof=1)) if len(err) >= 2 else 0.0
            notes.append("sigma_from_history" if len(err) >= 2 else "no_sigma")
        else:
            fill = float(np.nanmedian(sigma))
        sigma = np.where(np.isnan(sigma), fill, sigma)
        if len(mean) < horizon:
            # Beyond the forecast horizon assume the horizon's average day.
            pad = horizon - len(mean)
            rms = float(np.sqrt(np.mean(sigma**2)))
            mean = np.concatenate([mean, np.full(pad, mean_daily)])
            sigma = np.concatenate([sigma, np.full(pad, rms)])
            notes.append("horizon_padded")
        return mean[:horizon], sigma[:horizon], mean_daily, notes
    recent = _recent(g.hist_y, cfg.history_days)
    if len(recent):
        mean_daily = float(recent.mean())
        sd = float(recent.std(ddof=1)) if len(recent) >= 2 else 0.0
        notes.append("history_fallback")
        return np.full(horizon, mean_daily), np.full(horizon, sd), mean_daily, notes
    notes.append("no_demand_data")
    return np.zeros(horizon), np.zeros(horizon), 0.0, notes


def _policy(
    g: _Group, cfg: PolicyConfig
) -> tuple[PolicyParams, Callable[[float], float], list[str]]:
    """Policy parameters plus a function position -> P(lead-time demand > position)."""
    lt, rv, sl = g.lead_time_days, cfg.review_days, cfg.service_level
    mean, sigma, mean_daily, notes = _daily_model(g, lt + rv, cfg)
    mu_l = float(mean[:lt].sum())
    method: str = cfg.method
    risk: Callable[[float], float]

    errors = _errors(g, cfg) if method == "empirical" else np.zeros(0)
    if method == "empirical" and len(errors) < cfg.min_error_days:
        notes.append("empirical_fallback_normal")
        method = "normal"

    if method == "normal":
        z = float(norm.ppf(sl))
        sd_l = float(np.sqrt(np.sum(sigma[:lt] ** 2)))
        sd_lr = float(np.sqrt(np.sum(sigma**2)))
        rop = mu_l + z * sd_l
        s_level = float(mean.sum()) + z * sd_lr

        def risk(position: float) -> float:
            if sd_l > 0:
                return float(norm.sf((position - mu_l) / sd_l))
            return 1.0 if mu_l > position else 0.0
    else:
        rng = np.random.default_rng([cfg.seed, stable_seed(g.sku, g.warehouse_id)])
        n_err = len(errors)
        kw = {"n_bootstrap": cfg.n_bootstrap, "block_days": cfg.bootstrap_block_days}
        exact_lr = cfg.bootstrap_block_days == 1 and n_err ** (lt + rv) <= cfg.n_bootstrap
        if exact_lr or cfg.bootstrap_block_days > 1 or n_err**lt > cfg.n_bootstrap:
            # The same paths for L and L+R keep S >= ROP path by path.
            idx = _error_indices(lt + rv, n_err, rng=rng, **kw)
            daily = np.maximum(mean[None, :] + errors[idx], 0.0)
            samples_l = daily[:, :lt].sum(axis=1)
            samples_lr = daily.sum(axis=1)
        else:
            samples_l = lead_time_demand_samples(mean[:lt], errors, rng=rng, **kw)
            samples_lr = lead_time_demand_samples(mean, errors, rng=rng, **kw)
        rop = _quantile(samples_l, sl)
        s_level = _quantile(samples_lr, sl)

        def risk(position: float) -> float:
            return float(np.mean(samples_l > position))

    s_level = max(s_level, rop)
    h = (
        cfg.holding_cost_per_unit_year
        if cfg.holding_cost_per_unit_year is not None
        else cfg.holding_rate * g.unit_price
    )
    eoq = economic_order_quantity(mean_daily * cfg.days_per_year, cfg.order_cost, h)
    params = PolicyParams(
        lead_time_days=lt,
        review_days=rv,
        service_level=sl,
        mean_daily_demand=mean_daily,
        lead_time_demand=mu_l,
        safety_stock=rop - mu_l,
        reorder_point=rop,
        order_up_to=s_level,
        eoq=eoq,
        method=method,
        unit_price=g.unit_price,
        holding_cost_unit_year=h,
        order_cost=cfg.order_cost,
    )
    return params, risk, notes


def recommended_order(params: PolicyParams, position: float, *, round_up: bool = True) -> float:
    """Order quantity at a review: max(EOQ, S - position) if position <= ROP, else 0.

    Args:
        params: Policy parameters.
        position: Inventory position (on hand + on order).
        round_up: Round up to whole units.

    Returns:
        The quantity to order now (>= 0).
    """
    if position > params.reorder_point:
        return 0.0
    gap = params.order_up_to - position
    qty = max(params.eoq, gap) if np.isfinite(params.eoq) else gap
    qty = max(qty, 0.0)
    return float(math.ceil(qty - 1e-9)) if round_up else float(qty)


def compute_policy(
    forecast: pd.DataFrame | None,
    history: pd.DataFrame | None,
    inventory: pd.DataFrame | None,
    cfg: PolicyConfig,
) -> pd.DataFrame:
    """Inventory policy of one SKU x warehouse from its three input frames.

    Args:
        forecast: Forecast rows of the group (see module docstring); may be None/empty.
        history: Actual daily demand rows; may be None/empty.
        inventory: Snapshot rows; may be None/empty (then the position-dependent outputs
            ``order_qty``, ``days_of_cover``, ``stockout_risk`` are null).
        cfg: Policy configuration.

    Returns:
        A one-row frame with :data:`POLICY_SCHEMA` columns (zero rows if no input at all).
    """
    frames = [f if f is not None else pd.DataFrame() for f in (forecast, history, inventory)]
    if not any(len(f) for f in frames):
        return empty_frame(POLICY_SCHEMA)
    g = _prepare(frames[0], frames[1], frames[2], cfg)
    params, risk, model_notes = _policy(g, cfg)
    notes = list(g.notes) + model_notes
    if not np.isfinite(params.eoq):
        notes.append("eoq_undefined")

    position = order_qty = cover = p_out = None
    if g.on_hand is not None:
        position = g.on_hand + (g.on_order or 0.0)
        order_qty = recommended_order(params, position, round_up=cfg.round_orders)
        p_out = risk(position)
        if params.mean_daily_demand > 0:
            cover = g.on_hand / params.mean_daily_demand
    if notes:
        logger.debug("policy %s/%s notes: %s", g.sku, g.warehouse_id, notes)
    record = {
        "sku": g.sku,
        "warehouse_id": g.warehouse_id,
        "lead_time_days": params.lead_time_days,
        "review_days": params.review_days,
        "service_level": params.service_level,
        "mean_daily_demand": params.mean_daily_demand,
        "lead_time_demand": params.lead_time_demand,
        "safety_stock": params.safety_stock,
        "reorder_point": params.reorder_point,
        "order_up_to": params.order_up_to,
        "eoq": params.eoq,
        "on_hand": g.on_hand,
        "on_order": g.on_order,
        "order_qty": order_qty,
        "days_of_cover": cover,
        "stockout_risk": p_out,
        "method": params.method,
        "inventory_position": position,
        "unit_price": params.unit_price,
        "holding_cost_unit_year": params.holding_cost_unit_year,
        "notes": ";".join(notes) if notes else None,
    }
    return frame_from_records([record], POLICY_SCHEMA)


def policy_params(
    forecast: pd.DataFrame | None,
    history: pd.DataFrame | None,
    inventory: pd.DataFrame | None,
    cfg: PolicyConfig,
) -> PolicyParams:
    """The :class:`PolicyParams` behind :func:`compute_policy` (for replay and tests)."""
    frames = [f if f is not None else pd.DataFrame() for f in (forecast, history, inventory)]
    return _policy(_prepare(frames[0], frames[1], frames[2], cfg), cfg)[0]


def make_policy_fn(cfg: PolicyConfig) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped-map function for ``applyInPandas(fn, POLICY_SCHEMA)``.

    Args:
        cfg: Policy configuration.

    Returns:
        ``fn(pdf) -> pdf``: takes one group's stacked ``kind``-tagged frame
        (:data:`POLICY_INPUT_SCHEMA`) and returns one :data:`POLICY_SCHEMA` row.
    """

    def policy_fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return compute_policy(*split_policy_input(pdf), cfg)

    return policy_fn


# --------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------


def simulate_ledger(
    demand: pd.Series | Sequence[float] | np.ndarray,
    params: PolicyParams,
    *,
    policy: SimPolicy,
    initial_on_hand: float,
    prior_demand: Sequence[float] | np.ndarray = (),
    sim_cfg: SimulationConfig | None = None,
    round_orders: bool = True,
) -> pd.DataFrame:
    """Replay daily demand under a policy, with lost sales and a deterministic lead time.

    Day t: receive what was ordered L days earlier, serve min(stock, demand) (the rest is
    lost), then - on review days t = 0, R, 2R, ... - decide an order from the inventory
    position at the end of the day.

    Args:
        demand: Actual daily demand, chronological (a date index is carried into ``ds``).
        params: Policy parameters (``reorder_point``, ``order_up_to``, ``eoq``, lead time,
            review period); the naive rule uses only lead time and review period.
        policy: ``"policy"`` (ROP / max(EOQ, S - position)) or ``"naive"`` (see
            :class:`SimulationConfig`).
        initial_on_hand: Opening stock; nothing on order at the start.
        prior_demand: Actual demand before the first day (feeds the naive trailing mean).
        sim_cfg: Simulation configuration (defaults if None).
        round_orders: Round orders up to whole units.

    Returns:
        The daily ledger with :data:`LEDGER_COLUMNS`.

    Raises:
        ValueError: On an unknown policy.
    """
    if policy not in ("policy", "naive"):
        raise ValueError(f"policy must be 'policy' or 'naive', got {policy!r}")
    sim = sim_cfg or SimulationConfig()
    dem = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0).clip(min=0.0)
    dates = (
        list(demand.index)
        if isinstance(demand, pd.Series) and isinstance(demand.index, pd.DatetimeIndex)
        else [None] * len(dem)
    )
    trail = list(np.nan_to_num(np.asarray(prior_demand, dtype=float), nan=0.0).clip(min=0.0))
    lt, rv = params.lead_time_days, params.review_days

    def naive_qty(t: int, position: float) -> float:
        window = (trail + list(dem[: t + 1]))[-sim.naive_window_days :]
        m = float(np.mean(window)) if window else 0.0
        if position >= m * (lt + rv):
            return 0.0
        q = m * sim.naive_cover_days
        return float(math.ceil(q - 1e-9)) if round_orders else q

    pipeline: dict[int, float] = {}
    on_hand, on_order = float(initial_on_hand), 0.0
    rows = []
    for t, d in enumerate(dem):
        start = on_hand
        receipts = pipeline.pop(t, 0.0)
        on_order -= receipts
        available = start + receipts
        served = min(available, d)
        end = available - served
        placed = 0.0
        if t % rv == 0:
            position = end + on_order
            placed = (
                recommended_order(params, position, round_up=round_orders)
                if policy == "policy"
                else naive_qty(t, position)
            )
            if placed > 0:
                pipeline[t + lt] = pipeline.get(t + lt, 0.0) + placed
                on_order += placed
        on_hand = end
        rows.append(
            (
                t,
                dates[t],
                start,
                receipts,
                d,
                served,
                d - served,
                end,
                placed,
                on_order,
                end + on_order,
            )
        )
    return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))


def ledger_balances(ledger: pd.DataFrame) -> bool:
    """True if start + receipts - served = end every day and each day opens with the last close."""
    if ledger.empty:
        return True
    scale = max(1.0, float(ledger[["start_on_hand", "receipts", "served"]].abs().max().max()))
    tol = _BALANCE_TOL * scale
    flow = ledger["start_on_hand"] + ledger["receipts"] - ledger["served"] - ledger["end_on_hand"]
    carry = ledger["start_on_hand"].iloc[1:].to_numpy() - ledger["end_on_hand"].iloc[:-1].to_numpy()
    demand = ledger["served"] + ledger["lost"] - ledger["demand"]
    return bool(
        (flow.abs() <= tol).all()
        and (np.abs(carry) <= tol).all()
        and (demand.abs() <= tol).all()
        and (ledger["end_on_hand"] >= -tol).all()
    )


def summarize_ledger(
    ledger: pd.DataFrame,
    params: PolicyParams,
    *,
    lost_sale_penalty: float = 0.0,
    days_per_year: float = 365.0,
) -> dict[str, float | int | bool | None]:
    """KPIs and costs of one replay (the numeric part of a :data:`SIMULATION_SCHEMA` row)."""
    total = float(ledger["demand"].sum())
    served = float(ledger["served"].sum())
    lost = float(ledger["lost"].sum())
    n_orders = int((ledger["order_placed"] > 0).sum())
    holding = float(ledger["end_on_hand"].sum()) * params.holding_cost_unit_year / days_per_year
    ordering = n_orders * params.order_cost
    penalty = lost * lost_sale_penalty
    n = len(ledger)
    return {
        # Nothing asked for, nothing missed: an all-zero window counts as fully served.
        "fill_rate": served / total if total > 0 else 1.0,
        "stockout_days": int((ledger["lost"] > _BALANCE_TOL).sum()),
        "avg_inventory": float(ledger["end_on_hand"].mean()) if n else None,
        "total_cost": ordering + holding + penalty,
        "orders_placed": n_orders,
        "sim_days": n,
        "total_demand": total,
        "units_served": served,
        "lost_units": lost,
        "ordering_cost": ordering,
        "holding_cost": holding,
        "penalty_cost": penalty,
        "start_on_hand": float(ledger["start_on_hand"].iloc[0]) if n else None,
        "units_received": float(ledger["receipts"].sum()),
        "end_on_hand": float(ledger["end_on_hand"].iloc[-1]) if n else None,
        "end_on_order": float(ledger["on_order_end"].iloc[-1]) if n else None,
        "balance_ok": ledger_balances(ledger),
    }


def compute_simulation(
    forecast: pd.DataFrame | None,
    history: pd.DataFrame | None,
    inventory: pd.DataFrame | None,
    policy_cfg: PolicyConfig,
    sim_cfg: SimulationConfig,
) -> pd.DataFrame:
    """Replay the last weeks of actual demand under the policy and under the naive rule.

    The policy parameters are those :func:`compute_policy` reports today, held fixed over
    the window: this scores today's parameter set against recently observed demand (an
    in-sample replay, not a walk-forward backtest). Both policies start from the same
    stock with nothing on order.

    Args:
        forecast: Forecast rows of the group.
        history: Actual daily demand rows (the replay needs at least one day).
        inventory: Snapshot rows.
        policy_cfg: Policy configuration.
        sim_cfg: Simulation configuration.

    Returns:
        Two :data:`SIMULATION_SCHEMA` rows (``policy`` then ``naive``), or zero rows when
        there is no history.
    """
    frames = [f if f is not None else pd.DataFrame() for f in (forecast, history, inventory)]
    g = _prepare(frames[0], frames[1], frames[2], policy_cfg)
    if g.hist_y.empty:
        logger.debug("simulation %s/%s skipped: no history", g.sku, g.warehouse_id)
        return empty_frame(SIMULATION_SCHEMA)
    params = _policy(g, policy_cfg)[0]
    n_days = sim_cfg.weeks * 7
    window = g.hist_y.iloc[-n_days:]
    prior = g.hist_y.iloc[: len(g.hist_y) - len(window)].to_numpy()[-sim_cfg.naive_window_days :]
    if sim_cfg.initial_on_hand is not None:
        start = float(sim_cfg.initial_on_hand)
    else:
        start = (
            float(math.ceil(params.order_up_to - 1e-9))
            if policy_cfg.round_orders
            else params.order_up_to
        )
    records = []
    for name in ("policy", "naive"):
        ledger = simulate_ledger(
            window,
            params,
            policy=name,
            initial_on_hand=start,
            prior_demand=prior,
            sim_cfg=sim_cfg,
            round_orders=policy_cfg.round_orders,
        )
        kpis = summarize_ledger(
            ledger,
            params,
            lost_sale_penalty=sim_cfg.lost_sale_penalty,
            days_per_year=policy_cfg.days_per_year,
        )
        if not kpis["balance_ok"]:
            logger.error(
                "simulation ledger of %s/%s (%s) does not balance", g.sku, g.warehouse_id, name
            )
        records.append(
            {
                "sku": g.sku,
                "warehouse_id": g.warehouse_id,
                "policy": name,
                "start_date": window.index[0],
                "end_date": window.index[-1],
                **kpis,
            }
        )
    return frame_from_records(records, SIMULATION_SCHEMA)


def make_simulation_fn(
    policy_cfg: PolicyConfig, sim_cfg: SimulationConfig
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped-map function for ``applyInPandas(fn, SIMULATION_SCHEMA)``.

    Args:
        policy_cfg: Policy configuration (the same one used for :func:`make_policy_fn`).
        sim_cfg: Simulation configuration.

    Returns:
        ``fn(pdf) -> pdf`` over one group's stacked frame (:data:`POLICY_INPUT_SCHEMA`).
    """

    def simulation_fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return compute_simulation(*split_policy_input(pdf), policy_cfg, sim_cfg)

    return simulation_fn


__all__ = [
    "KIND_FORECAST",
    "KIND_HISTORY",
    "KIND_INVENTORY",
    "LEDGER_COLUMNS",
    "POLICY_INPUT_SCHEMA",
    "POLICY_SCHEMA",
    "SIMULATION_SCHEMA",
    "PolicyConfig",
    "PolicyParams",
    "SimulationConfig",
    "compute_policy",
    "compute_simulation",
    "daily_sigma_from_bands",
    "economic_order_quantity",
    "lead_time_demand_samples",
    "ledger_balances",
    "make_policy_fn",
    "make_simulation_fn",
    "policy_params",
    "recommended_order",
    "simulate_ledger",
    "split_policy_input",
    "stack_policy_inputs",
    "summarize_ledger",
]
