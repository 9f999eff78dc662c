"""Replay of recent demand per SKU x warehouse: today's policy vs a naive reorder rule.

Lost sales, deterministic lead time, review every R days; the daily ledger must balance.
Plain pandas/numpy for ``groupBy("sku", "warehouse_id").applyInPandas(
make_simulation_fn(policy_cfg, sim_cfg), SIMULATION_SCHEMA)``; the input contract is in
:mod:`shikong.decisions.inventory_common`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from shikong.decisions.inventory_common import PolicyConfig, prepare_group, split_policy_input
from shikong.decisions.inventory_policy import PolicyParams, policy_model, recommended_order
from shikong.frames import empty_frame, frame_from_records

logger = logging.getLogger(__name__)

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

SimPolicy = Literal["policy", "naive"]

_BALANCE_TOL = 1e-9


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
    g = prepare_group(frames[0], frames[1], frames[2], policy_cfg)
    if g.hist_y.empty:
        logger.debug("simulation %s/%s skipped: no history", g.sku, g.warehouse_id)
        return empty_frame(SIMULATION_SCHEMA)
    params = policy_model(g, policy_cfg)[0]
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


def simulation_summary(sim: pd.DataFrame, *, by: str = "policy") -> pd.DataFrame:
    """Per value of ``by`` (policy vs naive) over all SKU x warehouses: pairs, mean fill
    rate, and stock-out days, average inventory and cost summed."""
    return (
        sim.groupby(by)
        .agg(
            pairs=("sku", "size"),
            fill_rate=("fill_rate", "mean"),
            stockout_days=("stockout_days", "sum"),
            avg_inventory=("avg_inventory", "sum"),
            total_cost=("total_cost", "sum"),
        )
        .reset_index()
    )


def summary_lines(summary: pd.DataFrame) -> list[str]:
    """One log line per row of :func:`simulation_summary` (or ``policy_comparison``)."""
    return [
        f"simulation {r.policy:<7} pairs={int(r.pairs)} fill_rate={r.fill_rate:.3f} "
        f"stockout_days={r.stockout_days:.0f} avg_inventory={r.avg_inventory:.0f} "
        f"total_cost={r.total_cost:.0f}"
        for r in summary.itertuples()
    ]


__all__ = [
    "LEDGER_COLUMNS",
    "SIMULATION_SCHEMA",
    "SimPolicy",
    "SimulationConfig",
    "compute_simulation",
    "ledger_balances",
    "make_simulation_fn",
    "simulate_ledger",
    "simulation_summary",
    "summarize_ledger",
    "summary_lines",
]
