"""Priors of the demo world: category, price and calendar shapes, geography weights, knobs.

Constants only (plus the seeded random streams): changing one of these changes the world,
so they are kept apart from the code that draws from them.

Each random stream is ``np.random.default_rng([seed, stream, ...])``, so a part of the
world (say the catalogue) does not change when an unrelated knob (say ``dirty_share``)
does, and the same seed gives byte-identical files.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np

EPOCH = date(1970, 1, 1)
KM_PER_DEG = 111.32

#: Ids of the random streams (append only: renumbering one changes every world).
STREAMS = {
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


class Category(NamedTuple):
    """Prior of one product category."""

    name: str
    price: float  # median unit price, BRL
    price_sigma: float  # lognormal sigma of the price
    weight: float  # median weight, kg
    weight_sigma: float
    share: float  # share of the catalogue
    amp: float  # yearly seasonality amplitude
    peak_doy: int  # day of year of the seasonal peak (southern hemisphere)


CATEGORIES: tuple[Category, ...] = (
    Category("bed_bath_table", 80, 0.6, 1.5, 0.7, 0.10, 0.15, 180),  # blankets in winter
    Category("health_beauty", 60, 0.7, 0.4, 0.6, 0.10, 0.05, 120),
    Category("sports_leisure", 90, 0.8, 1.0, 0.9, 0.08, 0.20, 15),  # summer
    Category("furniture_decor", 120, 0.8, 3.0, 0.9, 0.08, 0.10, 330),
    Category("computers_accessories", 110, 0.9, 0.6, 0.8, 0.08, 0.12, 40),  # back to school
    Category("housewares", 70, 0.7, 1.2, 0.8, 0.08, 0.05, 300),
    Category("watches_gifts", 150, 0.8, 0.3, 0.5, 0.06, 0.05, 350),
    Category("telephony", 70, 1.0, 0.3, 0.6, 0.05, 0.05, 320),
    Category("garden_tools", 100, 0.8, 2.0, 0.9, 0.05, 0.25, 280),  # spring
    Category("auto", 90, 0.9, 1.5, 1.0, 0.05, 0.05, 10),
    Category("toys", 70, 0.8, 0.8, 0.8, 0.06, 0.05, 350),
    Category("cool_stuff", 130, 0.8, 1.5, 0.9, 0.05, 0.10, 350),
    Category("perfumery", 90, 0.6, 0.4, 0.5, 0.05, 0.05, 130),
    Category("baby", 80, 0.7, 1.2, 0.8, 0.05, 0.03, 200),
    Category("electronics", 150, 1.0, 0.8, 0.9, 0.06, 0.10, 325),
)

# Warehouse state capitals in opening order, with a service radius in km.
WAREHOUSE_UFS: tuple[tuple[str, int], ...] = (
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
STATE_POP_M = {
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
REGION_PENETRATION = {
    "Sudeste": 1.15,
    "Sul": 1.1,
    "Centro-Oeste": 1.0,
    "Nordeste": 0.8,
    "Norte": 0.7,
}

LINES_PER_ORDER_P = np.array([0.60, 0.22, 0.11, 0.07])  # 1..4 lines per order
HOURLY_WEIGHT = np.array(
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
WEEKLY = np.array([1.06, 1.08, 1.05, 1.0, 0.95, 0.84, 0.90])  # Monday .. Sunday
INTERMITTENT_ACTIVE_P = 0.2  # share of days an intermittent SKU can sell at all
CANCEL_P = 0.03
WAREHOUSE_MISMATCH = (0.90, 0.97)  # P(nearest), P(nearest or 2nd nearest)


def stream_rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """The random stream ``stream`` of the world ``seed`` (``extra``: e.g. a month index)."""
    return np.random.default_rng([seed, STREAMS[stream], *extra])
