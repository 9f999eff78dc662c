"""Inventory policy per SKU x warehouse: safety stock, reorder point, order-up-to, EOQ, order.

From the forecast distribution over the lead time (``normal``: per-day sigmas from the
forecast bands; ``empirical``: bootstrapped forecast errors) to today's recommendation.
Plain pandas/numpy for ``groupBy("sku", "warehouse_id").applyInPandas(make_policy_fn(cfg),
POLICY_SCHEMA)``; the input contract is in :mod:`shikong.decisions.inventory_common`.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from shikong.decisions.inventory_common import (
    PolicyConfig,
    PreparedGroup,
    prepare_group,
    split_policy_input,
)
from shikong.frames import empty_frame, frame_from_records

logger = logging.getLogger(__name__)

#: One row per SKU x warehouse (output of :func:`make_policy_fn`).
POLICY_SCHEMA = (
    "sku string, warehouse_id string, lead_time_days int, review_days int, "
    "service_level double, mean_daily_demand double, lead_time_demand double, "
    "safety_stock double, reorder_point double, order_up_to double, eoq double, "
    "on_hand double, on_order double, order_qty double, days_of_cover double, "
    "stockout_risk double, method string, inventory_position double, unit_price double, "
    "holding_cost_unit_year double, notes string"
)


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


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (``hash()`` of a str is salted per process)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


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


def _recent(s: pd.Series, days: int) -> pd.Series:
    if s.empty:
        return s
    return s.loc[s.index > s.index.max() - pd.Timedelta(days=days)]


def _errors(g: PreparedGroup, cfg: PolicyConfig) -> np.ndarray:
    y = _recent(g.hist_y, cfg.history_days)
    fit = g.hist_fit.reindex(y.index).dropna()
    if len(fit):
        return (y.loc[fit.index] - fit).to_numpy(dtype=float)
    return (y - y.mean()).to_numpy(dtype=float) if len(y) else np.zeros(0)


def _daily_model(
    g: PreparedGroup, horizon: int, cfg: PolicyConfig
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


def policy_model(
    g: PreparedGroup, cfg: PolicyConfig
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
    g = prepare_group(frames[0], frames[1], frames[2], cfg)
    params, risk, model_notes = policy_model(g, cfg)
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
    return policy_model(prepare_group(frames[0], frames[1], frames[2], cfg), cfg)[0]


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


__all__ = [
    "POLICY_SCHEMA",
    "PolicyParams",
    "compute_policy",
    "economic_order_quantity",
    "lead_time_demand_samples",
    "make_policy_fn",
    "policy_model",
    "policy_params",
    "recommended_order",
]
