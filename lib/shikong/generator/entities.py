"""Entities of the demo world: products, warehouses, customers and planted hot spots.

Everything is vectorised numpy; the only Python loops run over hot-spot candidates
(tens), never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shikong.generator.config import GeneratorScale
from shikong.generator.formatting import fmt_id
from shikong.generator.priors import (
    CATEGORIES,
    KM_PER_DEG,
    REGION_PENETRATION,
    STATE_POP_M,
    WAREHOUSE_UFS,
)
from shikong.geodesy import haversine


def offset_km(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, dist_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move points by ``dist_km`` in uniformly random directions."""
    ang = rng.uniform(0, 2 * np.pi, size=np.shape(lat))
    dlat = dist_km * np.cos(ang) / KM_PER_DEG
    dlon = dist_km * np.sin(ang) / (KM_PER_DEG * np.cos(np.radians(lat)))
    return lat + dlat, lon + dlon


@dataclass(frozen=True)
class Products:
    """The catalogue, one element per SKU."""

    ids: np.ndarray  # "SKU-00001"
    cat: np.ndarray  # category index
    price: np.ndarray
    weight: np.ndarray
    pop: np.ndarray  # relative popularity
    intermittent: np.ndarray  # bool


def make_products(cfg: GeneratorScale, rng: np.random.Generator) -> Products:
    """Draw the catalogue: category, price, weight, Zipf popularity, intermittent SKUs."""
    cats = CATEGORIES[: cfg.categories]
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
    return Products(fmt_id("SKU-", np.arange(1, n + 1), 5), cat, price, weight, pop, intermittent)


@dataclass(frozen=True)
class Warehouses:
    """Distribution centres near state capitals, in opening order."""

    ids: np.ndarray
    city: np.ndarray
    uf: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    radius_km: np.ndarray


def make_warehouses(
    cfg: GeneratorScale, muni: pd.DataFrame, rng: np.random.Generator
) -> Warehouses:
    """Place the first ``cfg.warehouses`` distribution centres of :data:`WAREHOUSE_UFS`."""
    capitals = muni[muni["capital"]].set_index("uf")
    ufs = [uf for uf, _ in WAREHOUSE_UFS[: cfg.warehouses]]
    cap = capitals.loc[ufs]
    # Distribution centres sit in the outskirts, a few km from the municipality point.
    lat, lon = offset_km(
        rng, cap["lat"].to_numpy(), cap["lon"].to_numpy(), rng.uniform(3, 12, size=len(ufs))
    )
    return Warehouses(
        ids=fmt_id("WH", np.arange(1, len(ufs) + 1), 2),
        city=cap["name"].to_numpy().astype(str),
        uf=np.array(ufs),
        lat=np.round(lat, 5),
        lon=np.round(lon, 5),
        radius_km=np.array([r for _, r in WAREHOUSE_UFS[: cfg.warehouses]]),
    )


@dataclass(frozen=True)
class Customers:
    """Customers placed around municipalities, with their two nearest warehouses."""

    muni: np.ndarray  # municipality row index
    lat: np.ndarray
    lon: np.ndarray
    activity: np.ndarray  # relative ordering propensity
    near1: np.ndarray  # nearest warehouse index
    near2: np.ndarray  # second-nearest warehouse index


def _municipality_weights(
    muni: pd.DataFrame, states: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    uf_codes = sorted(STATE_POP_M)
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
    region = states.set_index("uf").loc[uf_codes, "region"].map(REGION_PENETRATION)
    state_mass = np.array([STATE_POP_M[u] for u in uf_codes]) * region.to_numpy()
    return w * state_mass[uf_idx]


def make_customers(
    cfg: GeneratorScale,
    muni: pd.DataFrame,
    states: pd.DataFrame,
    wh: Warehouses,
    rng: np.random.Generator,
) -> Customers:
    """Place customers by population around municipalities; find their nearest warehouses."""
    w = _municipality_weights(muni, states, rng)
    cm = rng.choice(len(muni), size=cfg.customers, p=w / w.sum())
    is_cap = muni["capital"].to_numpy()[cm]
    # Metropolitan areas sprawl; small towns are compact. Some points land just abroad.
    sd_km = np.where(is_cap, 7.0, 2.5)
    lat0, lon0 = muni["lat"].to_numpy()[cm], muni["lon"].to_numpy()[cm]
    lat, lon = offset_km(rng, lat0, lon0, np.abs(rng.standard_normal(cfg.customers)) * sd_km)
    uf_codes = sorted(STATE_POP_M)
    state_eff = np.exp(0.15 * rng.standard_normal(len(uf_codes)))
    uf_idx = np.searchsorted(uf_codes, muni["uf"].to_numpy()[cm])
    activity = rng.gamma(0.6, 1 / 0.6, size=cfg.customers) * state_eff[uf_idx]
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    d = haversine(lat[:, None], lon[:, None], wh.lat[None, :], wh.lon[None, :])
    order = np.argsort(d, axis=1, kind="stable")
    near2 = order[:, 1] if d.shape[1] > 1 else order[:, 0]
    return Customers(cm, lat, lon, activity, order[:, 0], near2)


@dataclass(frozen=True)
class Hotspots:
    """Planted local demand anomalies (ground truth of the hot-spot detection)."""

    lat: np.ndarray
    lon: np.ndarray
    radius_km: np.ndarray
    start: np.ndarray  # day index, inclusive
    end: np.ndarray  # day index, inclusive
    uplift: np.ndarray
    member: np.ndarray  # (customers, hotspots) bool


def make_hotspots(
    cfg: GeneratorScale, muni: pd.DataFrame, cust: Customers, rng: np.random.Generator
) -> Hotspots:
    """Plant hot spots in busy cities (apart from each other) for a few weeks each."""
    h = cfg.hotspots
    counts = np.bincount(cust.muni, minlength=len(muni))
    mlat, mlon = muni["lat"].to_numpy(), muni["lon"].to_numpy()
    ranked = np.argsort(-counts, kind="stable")
    # Busy cities, but away from the very busiest one: a hot spot inside the biggest
    # metropolis would swamp national demand instead of being a local anomaly.
    far = haversine(mlat[ranked], mlon[ranked], mlat[ranked[0]], mlon[ranked[0]]) >= 60
    cand = ranked[far][: 4 * max(h, 1)]
    cand = cand[rng.permutation(len(cand))]
    chosen: list[int] = []
    for c in cand:  # at most ~50 candidates
        if len(chosen) == h:
            break
        if all(haversine(mlat[c], mlon[c], mlat[o], mlon[o]) >= 150 for o in chosen):
            chosen.append(int(c))
    ch = np.array(chosen, dtype=np.int64)
    lat, lon = offset_km(rng, mlat[ch], mlon[ch], rng.uniform(0, 5, size=len(ch)))
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
        haversine(cust.lat[:, None], cust.lon[:, None], lat[None, :], lon[None, :])
        <= radius[None, :]
    )
    return Hotspots(lat, lon, radius, start, end, uplift, member)
