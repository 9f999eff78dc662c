"""Seeded demo world: a Brazilian e-commerce business written as landing files.

Everything is vectorised numpy; the only Python loops run over months, categories,
promotions, hot spots or warehouses (tens to hundreds of iterations), never over rows.
Each random stream is ``np.random.default_rng([seed, stream, ...])``, so a part of the
world (say the catalogue) does not change when an unrelated knob (say ``dirty_share``)
does, and the same seed gives byte-identical files.

Output layout: ``<out_dir>/landing/`` as described in :mod:`shikong.schemas`, plus
``landing/_ground_truth/`` (dirty_rows.csv, hotspots.csv, stockouts.csv, promotions.csv,
world.json).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pandas as pd

from shikong import schemas
from shikong.generator.calendar import calendar_effects
from shikong.generator.config import GeneratorScale, resolve_scale
from shikong.generator.dirty import FRESH_KEY_BASE, DirtyContext, inject_dirty
from shikong.generator.formatting import (
    Table,
    fmt_date,
    fmt_fixed,
    fmt_id,
    fmt_int,
    fmt_ts,
    table_len,
    write_csv,
    write_jsonl,
)
from shikong.geo_resources import load_municipalities, load_states

logger = logging.getLogger(__name__)

GROUND_TRUTH_DIR = "_ground_truth"
_EPOCH = date(1970, 1, 1)
_EARTH_RADIUS_KM = 6371.0088
_KM_PER_DEG = 111.32

_STREAMS = {
    name: i
    for i, name in enumerate(
        (
            "products",
            "warehouses",
            "customers",
            "hotspots",
            "calendar",
            "promotions",
            "affinity",
            "stockouts",
            "month",
            "inventory",
            "signup",
            "dirty",
        ),
        start=1,
    )
}
_SOURCE_IDS = {s.name: i for i, s in enumerate(schemas.SOURCES)}
_SOURCE = {s.name: s for s in schemas.SOURCES}
_JSON_NUMERIC = frozenset({"lat", "lon"})


class _Category(NamedTuple):
    name: str
    price: float  # median unit price, BRL
    price_sigma: float  # lognormal sigma of the price
    weight: float  # median weight, kg
    weight_sigma: float
    share: float  # share of the catalogue
    amp: float  # yearly seasonality amplitude
    peak_doy: int  # day of year of the seasonal peak (southern hemisphere)


_CATEGORIES: tuple[_Category, ...] = (
    _Category("bed_bath_table", 80, 0.6, 1.5, 0.7, 0.10, 0.15, 180),  # blankets in winter
    _Category("health_beauty", 60, 0.7, 0.4, 0.6, 0.10, 0.05, 120),
    _Category("sports_leisure", 90, 0.8, 1.0, 0.9, 0.08, 0.20, 15),  # summer
    _Category("furniture_decor", 120, 0.8, 3.0, 0.9, 0.08, 0.10, 330),
    _Category("computers_accessories", 110, 0.9, 0.6, 0.8, 0.08, 0.12, 40),  # back to school
    _Category("housewares", 70, 0.7, 1.2, 0.8, 0.08, 0.05, 300),
    _Category("watches_gifts", 150, 0.8, 0.3, 0.5, 0.06, 0.05, 350),
    _Category("telephony", 70, 1.0, 0.3, 0.6, 0.05, 0.05, 320),
    _Category("garden_tools", 100, 0.8, 2.0, 0.9, 0.05, 0.25, 280),  # spring
    _Category("auto", 90, 0.9, 1.5, 1.0, 0.05, 0.05, 10),
    _Category("toys", 70, 0.8, 0.8, 0.8, 0.06, 0.05, 350),
    _Category("cool_stuff", 130, 0.8, 1.5, 0.9, 0.05, 0.10, 350),
    _Category("perfumery", 90, 0.6, 0.4, 0.5, 0.05, 0.05, 130),
    _Category("baby", 80, 0.7, 1.2, 0.8, 0.05, 0.03, 200),
    _Category("electronics", 150, 1.0, 0.8, 0.9, 0.06, 0.10, 325),
)

# Warehouse state capitals in opening order, with a service radius in km.
_WAREHOUSE_UFS: tuple[tuple[str, int], ...] = (
    ("SP", 450),
    ("RJ", 400),
    ("MG", 450),
    ("PR", 400),
    ("RS", 450),
    ("PE", 450),
    ("BA", 550),
    ("CE", 500),
    ("DF", 600),
    ("GO", 500),
    ("AM", 1200),
    ("PA", 900),
    ("SC", 350),
    ("ES", 350),
    ("MT", 800),
    ("MS", 600),
    ("MA", 600),
    ("PI", 500),
    ("RN", 350),
    ("PB", 300),
    ("AL", 250),
    ("SE", 250),
    ("TO", 600),
    ("RO", 700),
    ("AC", 600),
    ("AP", 500),
    ("RR", 600),
)

# 2022 census population, millions: municipalities carry no population, so customers are
# spread over states by these and within a state by a capital share + skewed random weight.
_STATE_POP_M = {
    "SP": 44.41,
    "MG": 20.54,
    "RJ": 16.05,
    "BA": 14.14,
    "PR": 11.44,
    "RS": 10.88,
    "PE": 9.06,
    "CE": 8.79,
    "PA": 8.12,
    "SC": 7.61,
    "GO": 7.06,
    "MA": 6.78,
    "PB": 3.97,
    "AM": 3.94,
    "ES": 3.83,
    "MT": 3.66,
    "RN": 3.30,
    "PI": 3.27,
    "AL": 3.13,
    "DF": 2.82,
    "MS": 2.76,
    "SE": 2.21,
    "RO": 1.58,
    "TO": 1.51,
    "AC": 0.83,
    "AP": 0.73,
    "RR": 0.64,
}
# Online-shopping propensity per region (relative).
_REGION_PENETRATION = {
    "Sudeste": 1.15,
    "Sul": 1.1,
    "Centro-Oeste": 1.0,
    "Nordeste": 0.8,
    "Norte": 0.7,
}

_LINES_PER_ORDER_P = np.array([0.60, 0.22, 0.11, 0.07])  # 1..4 lines per order
_HOURLY_WEIGHT = np.array(
    [
        0.9,
        0.5,
        0.3,
        0.2,
        0.15,
        0.2,
        0.4,
        0.8,
        1.3,
        1.8,
        2.1,
        2.2,
        2.1,
        2.1,
        2.2,
        2.2,
        2.2,
        2.2,
        2.2,
        2.3,
        2.5,
        2.6,
        2.3,
        1.6,
    ]
)
_WEEKLY = np.array([1.06, 1.08, 1.05, 1.0, 0.95, 0.84, 0.90])  # Monday .. Sunday
_INTERMITTENT_ACTIVE_P = 0.2  # share of days an intermittent SKU can sell at all
_CANCEL_P = 0.03
_WAREHOUSE_MISMATCH = (0.90, 0.97)  # P(nearest), P(nearest or 2nd nearest)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate_world` wrote.

    Attributes:
        landing_dir: The ``landing`` folder written.
        seed: Seed used.
        scale: The resolved scale.
        start_date: First simulated day.
        end_date: Last simulated day (inclusive).
        rows_per_file: Rows (clean + dirty) per landing file, path relative to landing.
        clean_rows: Clean rows per source.
        dirty_rows: Dirty rows per source.
        total_rows: All landing rows (ground truth excluded).
        total_bytes: Bytes of all landing files (ground truth excluded).
        seconds: Wall-clock seconds of the generation.
        rows_per_second: ``total_rows / seconds``.
    """

    landing_dir: Path
    seed: int
    scale: GeneratorScale
    start_date: date
    end_date: date
    rows_per_file: MappingProxyType[str, int]
    clean_rows: MappingProxyType[str, int]
    dirty_rows: MappingProxyType[str, int]
    total_rows: int
    total_bytes: int
    seconds: float
    rows_per_second: float


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *extra])


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km (numpy broadcasting).

    Args:
        lat1: Latitudes of the first points, degrees.
        lon1: Longitudes of the first points, degrees.
        lat2: Latitudes of the second points, degrees.
        lon2: Longitudes of the second points, degrees.

    Returns:
        Distances in km, broadcast shape of the inputs.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _offset_km(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, dist_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move points by ``dist_km`` in uniformly random directions."""
    ang = rng.uniform(0, 2 * np.pi, size=np.shape(lat))
    dlat = dist_km * np.cos(ang) / _KM_PER_DEG
    dlon = dist_km * np.sin(ang) / (_KM_PER_DEG * np.cos(np.radians(lat)))
    return lat + dlat, lon + dlon


def _draw_weighted(
    rng: np.random.Generator, cum: np.ndarray, row_start: np.ndarray, row_end: np.ndarray
) -> np.ndarray:
    """Inverse-CDF draws from many discrete distributions laid out in one cumulative array.

    ``cum`` is a global running sum of non-negative weights; draw ``i`` is taken from the
    slice whose running sums run from ``row_start[i]`` (exclusive) to ``row_end[i]``. A
    zero-weight element is never returned, which is what keeps stock-outs exact.
    """
    x = row_start + rng.random(len(row_start)) * (row_end - row_start)
    x = np.minimum(x, np.nextafter(row_end, -np.inf))
    return np.searchsorted(cum, x, side="right")


def _draw_time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight from a diurnal profile, never before 00:15 (see events)."""
    hour = rng.choice(24, size=n, p=_HOURLY_WEIGHT / _HOURLY_WEIGHT.sum())
    within = np.where(hour == 0, 900 + rng.integers(0, 2700, size=n), rng.integers(0, 3600, size=n))
    return hour * 3600 + within


def _group_cumcount(sorted_groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal (sorted) group values."""
    return np.arange(len(sorted_groups)) - np.searchsorted(sorted_groups, sorted_groups, "left")


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class _Products:
    ids: np.ndarray  # "SKU-00001"
    cat: np.ndarray  # category index
    price: np.ndarray
    weight: np.ndarray
    pop: np.ndarray  # relative popularity
    intermittent: np.ndarray  # bool


def _make_products(cfg: GeneratorScale, rng: np.random.Generator) -> _Products:
    cats = _CATEGORIES[: cfg.categories]
    n = cfg.skus
    share = np.array([c.share for c in cats])
    cat = rng.choice(len(cats), size=n, p=share / share.sum())
    field = {
        f: np.array([getattr(c, f) for c in cats])[cat]
        for f in ("price", "price_sigma", "weight", "weight_sigma")
    }
    price = np.round(
        np.maximum(field["price"] * np.exp(field["price_sigma"] * rng.standard_normal(n)), 4.9), 2
    )
    weight = np.round(
        np.maximum(field["weight"] * np.exp(field["weight_sigma"] * rng.standard_normal(n)), 0.05),
        3,
    )
    # Shifted Zipf: a flat-ish head and a long, thin tail.
    rank = rng.permutation(n)
    pop = (rank + 1 + 0.02 * n) ** -1.1 * np.exp(0.2 * rng.standard_normal(n))
    n_int = int(round(cfg.intermittent_share * n))
    intermittent = np.zeros(n, dtype=bool)
    intermittent[np.argsort(pop, kind="stable")[:n_int]] = True
    # Intermittent items are niche: thinner still than the Zipf tail.
    pop = np.where(intermittent, pop * 0.5, pop)
    return _Products(fmt_id("SKU-", np.arange(1, n + 1), 5), cat, price, weight, pop, intermittent)


@dataclass(frozen=True)
class _Warehouses:
    ids: np.ndarray
    city: np.ndarray
    uf: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    radius_km: np.ndarray


def _make_warehouses(
    cfg: GeneratorScale, muni: pd.DataFrame, rng: np.random.Generator
) -> _Warehouses:
    capitals = muni[muni["capital"]].set_index("uf")
    ufs = [uf for uf, _ in _WAREHOUSE_UFS[: cfg.warehouses]]
    cap = capitals.loc[ufs]
    # Distribution centres sit in the outskirts, a few km from the municipality point.
    lat, lon = _offset_km(
        rng, cap["lat"].to_numpy(), cap["lon"].to_numpy(), rng.uniform(3, 12, size=len(ufs))
    )
    return _Warehouses(
        ids=fmt_id("WH", np.arange(1, len(ufs) + 1), 2),
        city=cap["name"].to_numpy().astype(str),
        uf=np.array(ufs),
        lat=np.round(lat, 5),
        lon=np.round(lon, 5),
        radius_km=np.array([r for _, r in _WAREHOUSE_UFS[: cfg.warehouses]]),
    )


@dataclass(frozen=True)
class _Customers:
    muni: np.ndarray  # municipality row index
    lat: np.ndarray
    lon: np.ndarray
    activity: np.ndarray  # relative ordering propensity
    near1: np.ndarray  # nearest warehouse index
    near2: np.ndarray  # second-nearest warehouse index


def _municipality_weights(
    muni: pd.DataFrame, states: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    uf_codes = sorted(_STATE_POP_M)
    uf_idx = np.searchsorted(uf_codes, muni["uf"].to_numpy())
    is_cap = muni["capital"].to_numpy()
    w = np.exp(1.2 * rng.standard_normal(len(muni)))
    w = np.where(is_cap, 0.0, w)
    others = np.bincount(uf_idx, weights=w, minlength=len(uf_codes))
    w = w / np.where(others > 0, others, 1.0)[uf_idx]
    # The capital takes ~30 % of its state (10..60 %), the rest spreads over the others;
    # the Federal District is a single municipality, so all of it.
    cap_share = np.clip(0.3 * np.exp(0.35 * rng.standard_normal(len(uf_codes))), 0.1, 0.6)
    cap_share = np.where(others > 0, cap_share, 1.0)
    w = np.where(is_cap, cap_share[uf_idx], w * (1 - cap_share[uf_idx]))
    region = states.set_index("uf").loc[uf_codes, "region"].map(_REGION_PENETRATION)
    state_mass = np.array([_STATE_POP_M[u] for u in uf_codes]) * region.to_numpy()
    return w * state_mass[uf_idx]


def _make_customers(
    cfg: GeneratorScale,
    muni: pd.DataFrame,
    states: pd.DataFrame,
    wh: _Warehouses,
    rng: np.random.Generator,
) -> _Customers:
    w = _municipality_weights(muni, states, rng)
    cm = rng.choice(len(muni), size=cfg.customers, p=w / w.sum())
    is_cap = muni["capital"].to_numpy()[cm]
    # Metropolitan areas sprawl; small towns are compact. Some points land just abroad.
    sd_km = np.where(is_cap, 7.0, 2.5)
    lat0, lon0 = muni["lat"].to_numpy()[cm], muni["lon"].to_numpy()[cm]
    lat, lon = _offset_km(rng, lat0, lon0, np.abs(rng.standard_normal(cfg.customers)) * sd_km)
    uf_codes = sorted(_STATE_POP_M)
    state_eff = np.exp(0.15 * rng.standard_normal(len(uf_codes)))
    uf_idx = np.searchsorted(uf_codes, muni["uf"].to_numpy()[cm])
    activity = rng.gamma(0.6, 1 / 0.6, size=cfg.customers) * state_eff[uf_idx]
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    d = haversine_km(lat[:, None], lon[:, None], wh.lat[None, :], wh.lon[None, :])
    order = np.argsort(d, axis=1, kind="stable")
    near2 = order[:, 1] if d.shape[1] > 1 else order[:, 0]
    return _Customers(cm, lat, lon, activity, order[:, 0], near2)


@dataclass(frozen=True)
class _Hotspots:
    lat: np.ndarray
    lon: np.ndarray
    radius_km: np.ndarray
    start: np.ndarray  # day index, inclusive
    end: np.ndarray  # day index, inclusive
    uplift: np.ndarray
    member: np.ndarray  # (customers, hotspots) bool


def _make_hotspots(
    cfg: GeneratorScale, muni: pd.DataFrame, cust: _Customers, rng: np.random.Generator
) -> _Hotspots:
    h = cfg.hotspots
    counts = np.bincount(cust.muni, minlength=len(muni))
    mlat, mlon = muni["lat"].to_numpy(), muni["lon"].to_numpy()
    ranked = np.argsort(-counts, kind="stable")
    # Busy cities, but away from the very busiest one: a hot spot inside the biggest
    # metropolis would swamp national demand instead of being a local anomaly.
    far = haversine_km(mlat[ranked], mlon[ranked], mlat[ranked[0]], mlon[ranked[0]]) >= 60
    cand = ranked[far][: 4 * max(h, 1)]
    cand = cand[rng.permutation(len(cand))]
    chosen: list[int] = []
    for c in cand:  # at most ~50 candidates
        if len(chosen) == h:
            break
        if all(haversine_km(mlat[c], mlon[c], mlat[o], mlon[o]) >= 150 for o in chosen):
            chosen.append(int(c))
    ch = np.array(chosen, dtype=np.int64)
    lat, lon = _offset_km(rng, mlat[ch], mlon[ch], rng.uniform(0, 5, size=len(ch)))
    radius = np.round(rng.uniform(12, 35, size=len(ch)), 1)
    # A few weeks: local anomalies, not regime changes (horizon capped at a year).
    span = min(cfg.days, 365)
    length = np.maximum(7, np.round(rng.uniform(0.08, 0.2, size=len(ch)) * span)).astype(int)
    lo = int(round(0.1 * cfg.days))
    hi = np.maximum(lo + 1, cfg.days - length - int(round(0.05 * cfg.days)) + 1)
    start = rng.integers(lo, hi)
    end = np.minimum(start + length - 1, cfg.days - 1)
    uplift = np.round(rng.uniform(2.0, 4.0, size=len(ch)), 2)
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    member = (
        haversine_km(cust.lat[:, None], cust.lon[:, None], lat[None, :], lon[None, :])
        <= radius[None, :]
    )
    return _Hotspots(lat, lon, radius, start, end, uplift, member)


# ----------------------------------------------------------------------------- demand


@dataclass(frozen=True)
class _Promotions:
    cat: np.ndarray
    start: np.ndarray
    end: np.ndarray
    discount: np.ndarray
    uplift: np.ndarray


@dataclass(frozen=True)
class _Demand:
    expected_orders: np.ndarray  # (days,)
    cat_mult: np.ndarray  # (days, categories): seasonality x events x promotions
    discount: np.ndarray  # (days, categories)
    combo: np.ndarray  # (days,) index into combo_weight
    combo_cum: np.ndarray  # (combos, customers) running sums of customer weights
    aff: np.ndarray  # (warehouses, skus) regional taste
    promotions: _Promotions


def _make_demand(
    cfg: GeneratorScale,
    start: date,
    prod: _Products,
    cust: _Customers,
    hs: _Hotspots,
    n_wh: int,
    seed: int,
) -> _Demand:
    days, cats = cfg.days, _CATEGORIES[: cfg.categories]
    rng = _rng(seed, "calendar")
    t = np.arange(days)
    epoch_day = (start - _EPOCH).days + t
    dates = epoch_day.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(int) + 1
    cal = calendar_effects(start, days, tuple(c.name for c in cats))
    weekly = _WEEKLY[(epoch_day + 3) % 7]  # 1970-01-01 was a Thursday
    yearly = 1 + 0.05 * np.cos(2 * np.pi * (doy - 340) / 365.25)
    trend = 1.25 ** (t / 365.0)
    noise = np.exp(0.05 * rng.standard_normal(days) - 0.00125)
    lam = trend * weekly * yearly * cal.overall * noise

    amp = np.array([c.amp for c in cats])
    peak = np.array([c.peak_doy for c in cats])
    season = 1 + amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - peak[None, :]) / 365.25)

    prng = _rng(seed, "promotions")
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
    promos = _Promotions(p_cat[order], p_start[order], p_end[order], p_disc[order], p_uplift[order])
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

    lines_per_order = float(np.dot(np.arange(1, 5), _LINES_PER_ORDER_P))
    base = lam * attract * boost[combo]
    expected_orders = base * (cfg.order_lines / lines_per_order) / base.sum()

    arng = _rng(seed, "affinity")
    aff_cat = np.exp(0.25 * arng.standard_normal((n_wh, len(cats))))
    aff = aff_cat[:, prod.cat] * np.exp(0.3 * arng.standard_normal((n_wh, cfg.skus)))
    return _Demand(
        expected_orders, cat_mult, discount, combo, np.cumsum(weights, axis=1), aff, promos
    )


@dataclass(frozen=True)
class _Stock:
    pair_of: np.ndarray  # (warehouses, skus) -> tracked pair index or -1
    pair_w: np.ndarray  # tracked pairs, sorted by (sku, warehouse)
    pair_s: np.ndarray
    pair_daily: np.ndarray  # expected units per day
    so_w: np.ndarray  # stock-out windows
    so_s: np.ndarray
    so_start: np.ndarray
    so_end: np.ndarray


def _make_stock(
    cfg: GeneratorScale, prod: _Products, cust: _Customers, dem: _Demand, n_wh: int, seed: int
) -> _Stock:
    rng = _rng(seed, "stockouts")
    a = cust.activity
    p1, p2 = _WAREHOUSE_MISMATCH
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
    return _Stock(
        pair_of,
        pair_w,
        pair_s,
        e * 1.3 / cfg.days,  # ~1.3 units per line
        pair_w[pick],
        pair_s[pick],
        so_start,
        so_start + length - 1,
    )


# ------------------------------------------------------------------------------ months


def _month_spans(start: date, days: int) -> list[tuple[int, int, str]]:
    """(first day index, end day index exclusive, 'YYYY-MM') per calendar month."""
    spans: list[tuple[int, int, str]] = []
    d = 0
    while d < days:
        cur = start + timedelta(days=d)
        nxt = date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
        e = min(days, d + (nxt - cur).days)
        spans.append((d, e, f"{cur.year:04d}-{cur.month:02d}"))
        d = e
    return spans


@dataclass
class _MonthResult:
    orders: Table
    lines: Table
    events: Table


class _Generator:
    """Holds the world's entities and the running state of the month-by-month pass."""

    def __init__(self, cfg: GeneratorScale, seed: int, start: date) -> None:
        self.cfg, self.seed, self.start = cfg, seed, start
        self.start_day = (start - _EPOCH).days
        muni, states = load_municipalities(), load_states()
        self.muni = muni
        self.prod = _make_products(cfg, _rng(seed, "products"))
        self.wh = _make_warehouses(cfg, muni, _rng(seed, "warehouses"))
        self.cust = _make_customers(cfg, muni, states, self.wh, _rng(seed, "customers"))
        self.hs = _make_hotspots(cfg, muni, self.cust, _rng(seed, "hotspots"))
        self.dem = _make_demand(cfg, start, self.prod, self.cust, self.hs, len(self.wh.ids), seed)
        self.stock = _make_stock(cfg, self.prod, self.cust, self.dem, len(self.wh.ids), seed)
        self.sales = np.zeros((cfg.days, len(self.stock.pair_s)), dtype=np.int64)
        self.first_day = np.full(cfg.customers, np.iinfo(np.int64).max, dtype=np.int64)
        self.next_order = 1
        self.next_session = 1
        self.next_event = 1
        self.cust_ids = fmt_id("C", np.arange(1, cfg.customers + 1), 7)
        self.cust_lat5 = fmt_fixed(self.cust.lat, 5)
        self.cust_lon5 = fmt_fixed(self.cust.lon, 5)

    # -- SKU sampler -----------------------------------------------------------------

    def _sku_sampler(self, d0: int, d1: int, rng: np.random.Generator) -> np.ndarray:
        """Global running sum of SKU weights, one row per (day, warehouse) of the month."""
        nd, nw, ns = d1 - d0, len(self.wh.ids), self.cfg.skus
        base = self.dem.cat_mult[d0:d1][:, self.prod.cat] * self.prod.pop[None, :]
        inter = np.flatnonzero(self.prod.intermittent)
        if len(inter):
            gate = rng.random((nd, len(inter))) < _INTERMITTENT_ACTIVE_P
            base[:, inter] *= gate / _INTERMITTENT_ACTIVE_P
        w = base[:, None, :] * self.dem.aff[None, :, :]
        st = self.stock
        lo = np.clip(st.so_start - d0, 0, nd)
        hi = np.clip(st.so_end + 1 - d0, 0, nd)
        live = lo < hi
        if live.any():
            diff = np.zeros((nd + 1, nw, ns), dtype=np.int16)
            np.add.at(diff, (lo[live], st.so_w[live], st.so_s[live]), 1)
            np.add.at(diff, (hi[live], st.so_w[live], st.so_s[live]), -1)
            w[np.cumsum(diff, axis=0)[:nd] > 0] = 0.0
        cum = np.cumsum(w.reshape(-1))
        # Every (day, warehouse) row must keep some sellable SKU.
        if (w.reshape(nd * nw, ns).sum(axis=1) <= 0).any():
            raise RuntimeError("a (day, warehouse) has no sellable SKU")
        return cum

    def _draw_skus(self, cum: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ns = self.cfg.skus
        prev = np.where(row > 0, cum[np.maximum(row * ns - 1, 0)], 0.0)
        idx = _draw_weighted(rng, cum, prev, cum[row * ns + ns - 1])
        return idx - row * ns

    # -- customers ----------------------------------------------------------------------

    def _draw_customers(
        self, day_local: np.ndarray, d0: int, rng: np.random.Generator
    ) -> np.ndarray:
        combo = self.dem.combo[d0 + day_local]
        out = np.empty(len(day_local), dtype=np.int64)
        for k in np.unique(combo):  # a few hot-spot combinations per month
            sel = np.flatnonzero(combo == k)
            cum = self.dem.combo_cum[k]
            out[sel] = _draw_weighted(rng, cum, np.zeros(len(sel)), np.full(len(sel), cum[-1]))
        return out

    # -- one month ----------------------------------------------------------------------

    def month(self, m: int, d0: int, d1: int) -> _MonthResult:
        """Generate orders, order lines and events of the days ``[d0, d1)``."""
        cfg, rng = self.cfg, _rng(self.seed, "month", m)
        nd, nw = d1 - d0, len(self.wh.ids)
        exp_orders = self.dem.expected_orders[d0:d1]
        n_ord = rng.poisson(exp_orders)
        n_brw = rng.poisson(exp_orders * cfg.browse_sessions_per_order)
        tot = n_ord + n_brw
        day = np.repeat(np.arange(nd), tot)
        who = self._draw_customers(day, d0, rng)
        is_order = _group_cumcount(day) < np.repeat(n_ord, tot)
        sku_cum = self._sku_sampler(d0, d1, rng)

        # Orders.
        o_day, o_cust = day[is_order], who[is_order]
        o_tod = _draw_time_of_day(rng, len(o_day))
        o_ts = (self.start_day + d0 + o_day) * 86400 + o_tod
        srt = np.argsort(o_ts, kind="stable")
        o_day, o_cust, o_tod, o_ts = o_day[srt], o_cust[srt], o_tod[srt], o_ts[srt]
        n = len(o_day)
        u = rng.random(n)
        p1, p2 = _WAREHOUSE_MISMATCH
        o_wh = np.where(
            u < p1,
            self.cust.near1[o_cust],
            np.where(u < p2, self.cust.near2[o_cust], rng.integers(0, nw, size=n)),
        )
        age = cfg.days - 1 - (d0 + o_day)
        canceled = rng.random(n) < _CANCEL_P
        shipped = rng.random(n) < np.exp(-age / 4.0)
        status = np.where(canceled, "canceled", np.where(shipped, "shipped", "delivered"))
        o_num = self.next_order + np.arange(n)
        self.next_order += n
        if self.next_order >= FRESH_KEY_BASE["orders"]:
            raise ValueError("too many orders for the order id range")
        o_ids = fmt_id("O", o_num, 8)
        o_ts_s = fmt_ts(o_ts)

        # Order lines: SKUs by popularity x season x promo x regional taste, in stock only.
        k = rng.choice(4, size=n, p=_LINES_PER_ORDER_P) + 1
        l_ord = np.repeat(np.arange(n), k)
        l_sku = self._draw_skus(sku_cum, o_day[l_ord] * nw + o_wh[l_ord], rng)
        _, first = np.unique(l_ord * cfg.skus + l_sku, return_index=True)
        keep = np.zeros(len(l_ord), dtype=bool)
        keep[first] = True  # one line per SKU within an order
        l_ord, l_sku = l_ord[keep], l_sku[keep]
        nl = len(l_ord)
        line_no = _group_cumcount(l_ord) + 1
        qty = np.minimum(rng.geometric(0.78, size=nl), 12)
        qty = np.where(self.prod.weight[l_sku] > 8.0, 1, qty)  # nobody buys 5 sofas
        disc = self.dem.discount[d0 + o_day[l_ord], self.prod.cat[l_sku]]
        unit_price = np.round(self.prod.price[l_sku] * (1 - disc), 2)
        pair = self.stock.pair_of[o_wh[l_ord], l_sku]
        sold = (pair >= 0) & ~canceled[l_ord]
        np.add.at(self.sales, (d0 + o_day[l_ord][sold], pair[sold]), qty[sold])

        # Buying sessions: [view] -> [cart] -> purchase per line, ending just before order_ts.
        dur = rng.integers(120, np.minimum(2400, o_tod - 60) + 1)
        s_start = o_ts - dur
        lv = rng.random(nl) < cfg.view_prob
        lc = rng.random(nl) < cfg.cart_prob
        t_view = s_start[l_ord] + np.floor(rng.random(nl) * 0.45 * dur[l_ord]).astype(np.int64)
        t_cart = s_start[l_ord] + np.floor((0.5 + 0.35 * rng.random(nl)) * dur[l_ord]).astype(
            np.int64
        )
        t_buy = o_ts[l_ord] - rng.integers(1, 10, size=nl)

        # Browsing sessions: 1-6 views, some carts, no purchase.
        b_day, b_cust = day[~is_order], who[~is_order]
        nb = len(b_day)
        b_start = (self.start_day + d0 + b_day) * 86400 + np.minimum(
            _draw_time_of_day(rng, nb), 86400 - 900
        )
        nv = np.minimum(rng.geometric(0.5, size=nb), 6)
        v_sess = np.repeat(np.arange(nb), nv)
        step = rng.integers(20, 121, size=len(v_sess))
        csum = np.cumsum(step)
        v_t = (
            b_start[v_sess]
            + csum
            - np.repeat(csum[np.cumsum(nv) - nv] - step[np.cumsum(nv) - nv], nv)
        )
        v_sku = self._draw_skus(sku_cum, b_day[v_sess] * nw + self.cust.near1[b_cust][v_sess], rng)
        vc = rng.random(len(v_sess)) < 0.2
        c_t = v_t[vc] + rng.integers(5, 61, size=int(vc.sum()))

        # Sessions numbered by start time; buying sessions first on ties.
        sess_start = np.concatenate([s_start, b_start])
        sess_cust = np.concatenate([o_cust, b_cust])
        s_order = np.argsort(sess_start, kind="stable")
        s_num = np.empty(len(s_order), dtype=np.int64)
        s_num[s_order] = self.next_session + np.arange(len(s_order))
        self.next_session += len(s_order)
        jlat, jlon = _offset_km(
            rng,
            self.cust.lat[sess_cust],
            self.cust.lon[sess_cust],
            np.abs(rng.standard_normal(len(sess_cust))) * 0.15,
        )
        e_sess = np.concatenate([l_ord[lv], l_ord[lc], l_ord, n + v_sess, n + v_sess[vc]])
        e_t = np.concatenate([t_view[lv], t_cart[lc], t_buy, v_t, c_t])
        e_type = np.concatenate(
            [
                np.zeros(int(lv.sum()), np.int8),
                np.ones(int(lc.sum()), np.int8),
                np.full(nl, 2, np.int8),
                np.zeros(len(v_t), np.int8),
                np.ones(len(c_t), np.int8),
            ]
        )
        e_sku = np.concatenate([l_sku[lv], l_sku[lc], l_sku, v_sku, v_sku[vc]])
        e_ord = np.lexsort((e_type, s_num[e_sess], e_t))
        e_sess, e_t, e_type, e_sku = e_sess[e_ord], e_t[e_ord], e_type[e_ord], e_sku[e_ord]
        ne = len(e_t)
        e_num = self.next_event + np.arange(ne)
        self.next_event += ne
        if self.next_event >= FRESH_KEY_BASE["events"]:
            raise ValueError("too many events for the event id range")

        np.minimum.at(
            self.first_day, sess_cust, self.start_day + d0 + np.concatenate([o_day, b_day])
        )

        orders = {
            "order_id": o_ids,
            "customer_id": self.cust_ids[o_cust],
            "order_ts": o_ts_s,
            "warehouse_id": self.wh.ids[o_wh],
            "lat": self.cust_lat5[o_cust],
            "lon": self.cust_lon5[o_cust],
            "status": status,
        }
        lines = {
            "order_id": o_ids[l_ord],
            "line_no": fmt_int(line_no),
            "order_ts": o_ts_s[l_ord],
            "sku": self.prod.ids[l_sku],
            "quantity": fmt_int(qty),
            "unit_price": fmt_fixed(unit_price, 2),
        }
        events = {
            "event_id": fmt_id("E", e_num, 9),
            "session_id": fmt_id("S", s_num[e_sess], 9),
            "customer_id": self.cust_ids[sess_cust[e_sess]],
            "event_ts": fmt_ts(e_t),
            "event_type": np.asarray(schemas.EVENT_TYPES)[e_type],
            "sku": self.prod.ids[e_sku],
            "lat": fmt_fixed(jlat[e_sess], 4),
            "lon": fmt_fixed(jlon[e_sess], 4),
        }
        return _MonthResult(orders, lines, events)

    # -- inventory ----------------------------------------------------------------------

    def inventory(self) -> tuple[np.ndarray, np.ndarray]:
        """End-of-day (on_hand, on_order), shape (days, tracked pairs).

        Periodic review: every R days (per pair) the stock is topped up to the cycle's
        sales plus a safety stock, so on_hand never hits 0 except inside the planted
        stock-out windows, where it is exactly 0 (and those pairs sold nothing).
        """
        cfg, st, rng = self.cfg, self.stock, _rng(self.seed, "inventory")
        n_p, days = len(st.pair_s), cfg.days
        review = rng.integers(5, 15, size=n_p)
        phase = rng.integers(0, review)
        lead = rng.integers(1, 4, size=n_p)
        safety = np.ceil(st.pair_daily * rng.uniform(1, 3, size=n_p)).astype(
            np.int64
        ) + rng.integers(1, 6, size=n_p)
        reorder = np.ceil(st.pair_daily * review).astype(np.int64) + safety
        d = np.arange(days)[:, None]
        c_start = d - (d + phase[None, :]) % review[None, :]
        c_end = np.minimum(c_start + review[None, :] - 1, days - 1)
        cs = np.vstack([np.zeros((1, n_p), dtype=np.int64), np.cumsum(self.sales, axis=0)])
        remaining = np.take_along_axis(cs, c_end + 1, axis=0) - np.take_along_axis(
            cs, np.broadcast_to(d + 1, c_end.shape), axis=0
        )
        on_hand = safety[None, :] + remaining
        on_order = np.where(c_end - d < lead[None, :], reorder[None, :], 0)
        out = np.zeros((days + 1, n_p), dtype=np.int16)
        if len(st.so_s):
            p = st.pair_of[st.so_w, st.so_s]
            np.add.at(out, (st.so_start, p), 1)
            np.add.at(out, (st.so_end + 1, p), -1)
        is_out = np.cumsum(out, axis=0)[:days] > 0
        on_hand = np.where(is_out, 0, on_hand)
        on_order = np.where(is_out, reorder[None, :], on_order)
        return on_hand, on_order


# ------------------------------------------------------------------------------ writing


class _Writer:
    """Writes landing files with dirty rows and keeps the bookkeeping."""

    def __init__(self, landing: Path, seed: int, ctx: DirtyContext) -> None:
        self.landing, self.seed, self.ctx = landing, seed, ctx
        self.rows: dict[str, int] = {}
        self.clean: dict[str, int] = {s.name: 0 for s in schemas.SOURCES}
        self.dirty: dict[str, int] = {s.name: 0 for s in schemas.SOURCES}
        self.truth: list[tuple[str, str, str, int]] = []

    def write(self, source: str, table: Table, suffix: str = "", part: int = 0) -> None:
        src = _SOURCE[source]
        name = f"{src.folder}-{suffix}" if suffix else src.folder
        ext = "jsonl" if src.fmt == "json" else "csv"
        rel = f"{src.folder}/{name}.{ext}"
        rng = _rng(self.seed, "dirty", _SOURCE_IDS[source], part)
        n_clean = table_len(table)
        out, counts = inject_dirty(source, table, rng, self.ctx)
        path = self.landing / rel
        if src.fmt == "json":
            n = write_jsonl(path, src.columns, out, _JSON_NUMERIC)
        else:
            n = write_csv(path, src.columns, out)
        self.rows[rel] = n
        self.clean[source] += n_clean
        self.dirty[source] += n - n_clean
        for reason, c in counts.items():
            self.truth.append((rel, source, reason, c))


def _remove_previous(landing: Path) -> None:
    """Delete files a previous generation left (only names this generator writes)."""
    patterns = [
        f"{s.folder}/{s.folder}*.{'jsonl' if s.fmt == 'json' else 'csv'}" for s in schemas.SOURCES
    ] + [f"{GROUND_TRUTH_DIR}/*"]
    for pat in patterns:
        for p in sorted(landing.glob(pat)):
            if p.is_file():
                p.unlink()


def generate_world(
    out_dir: Path, *, seed: int, scale: str | GeneratorScale, start_date: date = date(2023, 1, 1)
) -> GenerationSummary:
    """Generate a seeded demo world as landing files under ``out_dir/landing``.

    Files this generator wrote before into the same landing folder are replaced; other
    files there are left alone.

    Args:
        out_dir: Lakehouse root; files go to ``out_dir/landing/``.
        seed: Non-negative seed; the same seed (and scale, start date) gives
            byte-identical files.
        scale: ``"small"``, ``"default"`` or a :class:`GeneratorScale` (e.g.
            ``resolve_scale("default", days=365)``).
        start_date: First simulated day.

    Returns:
        Row counts, sizes and timing.

    Raises:
        ValueError: Negative seed, unknown scale or invalid scale fields.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    t0 = time.perf_counter()
    cfg = resolve_scale(scale)
    landing = Path(out_dir) / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    _remove_previous(landing)
    end_date = start_date + timedelta(days=cfg.days - 1)
    logger.info(
        "generating %s world (seed %d) %s..%s into %s",
        cfg.name,
        seed,
        start_date,
        end_date,
        landing,
    )

    g = _Generator(cfg, seed, start_date)
    st = g.stock
    spare_w, spare_s = np.nonzero(g.stock.pair_of < 0)
    ctx = DirtyContext(
        share=cfg.dirty_share,
        spare_inventory_pairs=(g.prod.ids[spare_s], g.wh.ids[spare_w]),
        fallback_day=g.start_day - 1,
    )
    w = _Writer(landing, seed, ctx)

    w.write(
        "products",
        {
            "sku": g.prod.ids,
            "category": np.array([c.name for c in _CATEGORIES])[g.prod.cat],
            "unit_price": fmt_fixed(g.prod.price, 2),
            "weight_kg": fmt_fixed(g.prod.weight, 3),
        },
    )
    w.write(
        "warehouses",
        {
            "warehouse_id": g.wh.ids,
            "city": g.wh.city,
            "state": g.wh.uf,
            "lat": fmt_fixed(g.wh.lat, 5),
            "lon": fmt_fixed(g.wh.lon, 5),
            "service_radius_km": fmt_int(g.wh.radius_km),
        },
    )

    spans = _month_spans(start_date, cfg.days)
    for m, (d0, d1, ym) in enumerate(spans):
        res = g.month(m, d0, d1)
        w.write("orders", res.orders, ym, m)
        w.write("order_lines", res.lines, ym, m)
        w.write("events", res.events, ym, m)
        logger.info(
            "month %s: %d orders, %d lines, %d events",
            ym,
            table_len(res.orders),
            table_len(res.lines),
            table_len(res.events),
        )

    on_hand, on_order = g.inventory()
    n_p = len(st.pair_s)
    for m, (d0, d1, ym) in enumerate(spans):
        nd = d1 - d0
        w.write(
            "inventory",
            {
                "snapshot_date": np.repeat(fmt_date(g.start_day + np.arange(d0, d1)), n_p),
                "sku": np.tile(g.prod.ids[st.pair_s], nd),
                "warehouse_id": np.tile(g.wh.ids[st.pair_w], nd),
                "on_hand": fmt_int(on_hand[d0:d1].reshape(-1)),
                "on_order": fmt_int(on_order[d0:d1].reshape(-1)),
            },
            ym,
            m,
        )

    # Signed up some time before the world starts, or at the latest on the first visit.
    srng = _rng(seed, "signup")
    signup = np.minimum(
        srng.integers(g.start_day - 1095, g.start_day + cfg.days, size=cfg.customers), g.first_day
    )
    muni_name = g.muni["name"].to_numpy().astype(str)
    muni_uf = g.muni["uf"].to_numpy().astype(str)
    w.write(
        "customers",
        {
            "customer_id": g.cust_ids,
            "city": muni_name[g.cust.muni],
            "state": muni_uf[g.cust.muni],
            "lat": g.cust_lat5,
            "lon": g.cust_lon5,
            "signup_date": fmt_date(signup),
        },
    )

    _write_ground_truth(landing, g, w, seed, cfg, start_date, end_date)
    seconds = time.perf_counter() - t0
    total_rows = sum(w.rows.values())
    total_bytes = sum((landing / rel).stat().st_size for rel in w.rows)
    logger.info(
        "wrote %d rows, %.1f MB in %.1f s (%.0f rows/s)",
        total_rows,
        total_bytes / 1e6,
        seconds,
        total_rows / seconds,
    )
    return GenerationSummary(
        landing_dir=landing,
        seed=seed,
        scale=cfg,
        start_date=start_date,
        end_date=end_date,
        rows_per_file=MappingProxyType(dict(w.rows)),
        clean_rows=MappingProxyType(dict(w.clean)),
        dirty_rows=MappingProxyType(dict(w.dirty)),
        total_rows=total_rows,
        total_bytes=total_bytes,
        seconds=seconds,
        rows_per_second=total_rows / seconds if seconds > 0 else float("inf"),
    )


def _write_ground_truth(
    landing: Path,
    g: _Generator,
    w: _Writer,
    seed: int,
    cfg: GeneratorScale,
    start_date: date,
    end_date: date,
) -> None:
    gt = landing / GROUND_TRUTH_DIR
    rank = {r: i for i, r in enumerate(schemas.REASON_ORDER)}
    truth = sorted(w.truth, key=lambda r: (r[0], rank[r[2]]))
    write_csv(
        gt / "dirty_rows.csv",
        ("file", "source", "reason", "count"),
        {
            "file": np.array([r[0] for r in truth], dtype=str),
            "source": np.array([r[1] for r in truth], dtype=str),
            "reason": np.array([r[2] for r in truth], dtype=str),
            "count": np.array([str(r[3]) for r in truth], dtype=str),
        },
    )
    hs = g.hs
    write_csv(
        gt / "hotspots.csv",
        ("id", "lat", "lon", "radius_km", "start_date", "end_date", "uplift"),
        {
            "id": fmt_id("HS", np.arange(1, len(hs.lat) + 1), 2),
            "lat": fmt_fixed(hs.lat, 5),
            "lon": fmt_fixed(hs.lon, 5),
            "radius_km": fmt_fixed(hs.radius_km, 1),
            "start_date": fmt_date(g.start_day + hs.start),
            "end_date": fmt_date(g.start_day + hs.end),
            "uplift": fmt_fixed(hs.uplift, 2),
        },
    )
    st = g.stock
    so = np.lexsort((st.so_start, st.so_w, st.so_s))
    write_csv(
        gt / "stockouts.csv",
        ("sku", "warehouse_id", "start_date", "end_date"),
        {
            "sku": g.prod.ids[st.so_s[so]],
            "warehouse_id": g.wh.ids[st.so_w[so]],
            "start_date": fmt_date(g.start_day + st.so_start[so]),
            "end_date": fmt_date(g.start_day + st.so_end[so]),
        },
    )
    pr = g.dem.promotions
    cat_names = np.array([c.name for c in _CATEGORIES])
    write_csv(
        gt / "promotions.csv",
        ("category", "start_date", "end_date", "discount", "uplift"),
        {
            "category": cat_names[pr.cat],
            "start_date": fmt_date(g.start_day + pr.start),
            "end_date": fmt_date(g.start_day + pr.end),
            "discount": fmt_fixed(pr.discount, 2),
            "uplift": fmt_fixed(pr.uplift, 2),
        },
    )
    world = {
        "seed": seed,
        "scale": cfg.to_dict(),
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "counts": {
            s.name: {
                "clean": w.clean[s.name],
                "dirty": w.dirty[s.name],
                "total": w.clean[s.name] + w.dirty[s.name],
            }
            for s in schemas.SOURCES
        },
        "files": dict(sorted(w.rows.items())),
        "intermittent_skus": g.prod.ids[g.prod.intermittent].tolist(),
        "categories": [c.name for c in _CATEGORIES[: cfg.categories]],
        "valid_ts_window": ["2000-01-01", "2035-12-31"],
    }
    gt.mkdir(parents=True, exist_ok=True)
    with open(gt / "world.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(world, fh, indent=2, sort_keys=False)
        fh.write("\n")
