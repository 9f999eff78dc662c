"""Demand and stock plan of the demo world, fixed before the first simulated day.

Daily expected orders (trend x week x year x calendar events x promotions x hot spots),
per-category multipliers and discounts, regional taste, the (warehouse, SKU) pairs whose
stock is tracked and the planted stock-out windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from shikong.generator.calendar import calendar_effects
from shikong.generator.config import GeneratorScale
from shikong.generator.entities import Customers, Hotspots, Products
from shikong.generator.priors import (
    CATEGORIES,
    EPOCH,
    LINES_PER_ORDER_P,
    WAREHOUSE_MISMATCH,
    WEEKLY,
    stream_rng,
)


@dataclass(frozen=True)
class Promotions:
    """Planted promotions per category (sorted by category, start)."""

    cat: np.ndarray
    start: np.ndarray
    end: np.ndarray
    discount: np.ndarray
    uplift: np.ndarray


@dataclass(frozen=True)
class Demand:
    """Daily demand of the whole horizon."""

    expected_orders: np.ndarray  # (days,)
    cat_mult: np.ndarray  # (days, categories): seasonality x events x promotions
    discount: np.ndarray  # (days, categories)
    combo: np.ndarray  # (days,) index into combo_weight
    combo_cum: np.ndarray  # (combos, customers) running sums of customer weights
    aff: np.ndarray  # (warehouses, skus) regional taste
    promotions: Promotions


def make_demand(
    cfg: GeneratorScale,
    start: date,
    prod: Products,
    cust: Customers,
    hs: Hotspots,
    n_wh: int,
    seed: int,
) -> Demand:
    """Expected daily orders and per-category multipliers of the whole horizon."""
    days, cats = cfg.days, CATEGORIES[: cfg.categories]
    rng = stream_rng(seed, "calendar")
    t = np.arange(days)
    epoch_day = (start - EPOCH).days + t
    dates = epoch_day.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(int) + 1
    cal = calendar_effects(start, days, tuple(c.name for c in cats))
    weekly = WEEKLY[(epoch_day + 3) % 7]  # 1970-01-01 was a Thursday
    yearly = 1 + 0.05 * np.cos(2 * np.pi * (doy - 340) / 365.25)
    trend = 1.25 ** (t / 365.0)
    noise = np.exp(0.05 * rng.standard_normal(days) - 0.00125)
    lam = trend * weekly * yearly * cal.overall * noise

    amp = np.array([c.amp for c in cats])
    peak = np.array([c.peak_doy for c in cats])
    season = 1 + amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - peak[None, :]) / 365.25)

    prng = stream_rng(seed, "promotions")
    n_promo = max(1, int(round(3 * days / 365)))
    p_cat = np.repeat(np.arange(len(cats)), n_promo)
    p_len = prng.integers(4, 11, size=len(p_cat))
    p_start = prng.integers(0, np.maximum(1, days - p_len + 1))
    p_end = np.minimum(p_start + p_len - 1, days - 1)
    p_disc = np.round(prng.uniform(0.10, 0.30, size=len(p_cat)), 2)
    p_uplift = np.round(1 + p_disc * prng.uniform(4, 8, size=len(p_cat)), 2)
    promo_mult = np.ones((days, len(cats)))
    discount = np.zeros((days, len(cats)))
    for c, a, b, dsc, up in zip(p_cat, p_start, p_end, p_disc, p_uplift, strict=True):
        # Overlapping promotions of a category: the stronger one wins.
        promo_mult[a : b + 1, c] = np.maximum(promo_mult[a : b + 1, c], up)
        discount[a : b + 1, c] = np.maximum(discount[a : b + 1, c], dsc)
    order = np.lexsort((p_start, p_cat))
    promos = Promotions(p_cat[order], p_start[order], p_end[order], p_disc[order], p_uplift[order])
    cat_mult = season * cal.category * promo_mult

    # Promotions and events add demand (not just shift it between SKUs).
    cat_mass = np.bincount(prod.cat, weights=prod.pop, minlength=len(cats))
    attract = cat_mult @ cat_mass / cat_mass.sum()

    # Hot spots: customers inside an active one order `uplift` times as often.
    active = (t[:, None] >= hs.start[None, :]) & (t[:, None] <= hs.end[None, :])
    combos, combo = np.unique(active, axis=0, return_inverse=True)
    combo = combo.reshape(-1)
    weights = np.empty((len(combos), len(cust.activity)))
    for k, act in enumerate(combos):  # a few distinct sets of active hot spots
        mult = np.prod(np.where(hs.member & act[None, :], hs.uplift[None, :], 1.0), axis=1)
        weights[k] = cust.activity * mult
    boost = weights.sum(axis=1) / cust.activity.sum()

    lines_per_order = float(np.dot(np.arange(1, 5), LINES_PER_ORDER_P))
    base = lam * attract * boost[combo]
    expected_orders = base * (cfg.order_lines / lines_per_order) / base.sum()

    arng = stream_rng(seed, "affinity")
    aff_cat = np.exp(0.25 * arng.standard_normal((n_wh, len(cats))))
    aff = aff_cat[:, prod.cat] * np.exp(0.3 * arng.standard_normal((n_wh, cfg.skus)))
    return Demand(
        expected_orders, cat_mult, discount, combo, np.cumsum(weights, axis=1), aff, promos
    )


@dataclass(frozen=True)
class Stock:
    """Tracked (warehouse, SKU) pairs and the planted stock-out windows."""

    pair_of: np.ndarray  # (warehouses, skus) -> tracked pair index or -1
    pair_w: np.ndarray  # tracked pairs, sorted by (sku, warehouse)
    pair_s: np.ndarray
    pair_daily: np.ndarray  # expected units per day
    so_w: np.ndarray  # stock-out windows
    so_s: np.ndarray
    so_start: np.ndarray
    so_end: np.ndarray


def make_stock(
    cfg: GeneratorScale, prod: Products, cust: Customers, dem: Demand, n_wh: int, seed: int
) -> Stock:
    """Choose the tracked (warehouse, SKU) pairs and plant stock-out windows among them."""
    rng = stream_rng(seed, "stockouts")
    a = cust.activity
    p1, p2 = WAREHOUSE_MISMATCH
    share = (
        p1 * np.bincount(cust.near1, weights=a, minlength=n_wh)
        + (p2 - p1) * np.bincount(cust.near2, weights=a, minlength=n_wh)
        + (1 - p2) * a.sum() / n_wh
    ) / a.sum()
    taste = prod.pop[None, :] * dem.aff
    expected = cfg.order_lines * share[:, None] * taste / taste.sum(axis=1, keepdims=True)
    tracked = expected >= 2.0  # expected to sell at least twice over the horizon
    if cfg.inventory_skus_per_warehouse is not None:
        rank = np.argsort(np.argsort(-expected, axis=1, kind="stable"), axis=1, kind="stable")
        tracked &= rank < cfg.inventory_skus_per_warehouse
    pair_s, pair_w = np.nonzero(tracked.T)  # sorted by sku, then warehouse
    pair_of = np.full((n_wh, cfg.skus), -1, dtype=np.int64)
    pair_of[pair_w, pair_s] = np.arange(len(pair_s))
    e = expected[pair_w, pair_s]
    # Stock-outs hit well-selling pairs, where missing sales are visible.
    cand = np.argsort(-e, kind="stable")[: max(1, len(e) // 2)] if len(e) else np.array([], int)
    n_so = min(len(cand), max(1, int(round(cfg.stockout_pair_share * len(e)))))
    if cfg.stockout_pair_share == 0:
        n_so = 0
    pick = np.sort(rng.choice(cand, size=n_so, replace=False)) if n_so else cand[:0]
    length = rng.integers(3, max(4, min(22, cfg.days // 4 + 1)), size=n_so)
    so_start = rng.integers(0, cfg.days - length + 1)
    return Stock(
        pair_of,
        pair_w,
        pair_s,
        e * 1.3 / cfg.days,  # ~1.3 units per line
        pair_w[pick],
        pair_s[pick],
        so_start,
        so_start + length - 1,
    )
