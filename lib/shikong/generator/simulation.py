"""The month-by-month simulation of the demo world: orders, lines, events, inventory.

A :class:`Scenario` is everything fixed before the first simulated day (entities, demand,
stock plan); a :class:`Simulation` walks it one calendar month at a time, so memory stays
at one month of rows. Everything is vectorised numpy; the only Python loops run over
months, promotions, hot-spot combinations or warehouses, never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from shikong import schemas
from shikong.generator.config import GeneratorScale
from shikong.generator.demand import Demand, Stock, make_demand, make_stock
from shikong.generator.dirty import FRESH_KEY_BASE
from shikong.generator.entities import (
    Customers,
    Hotspots,
    Products,
    Warehouses,
    make_customers,
    make_hotspots,
    make_products,
    make_warehouses,
    offset_km,
)
from shikong.generator.formatting import Table, fmt_fixed, fmt_id, fmt_int, fmt_ts
from shikong.generator.priors import (
    CANCEL_P,
    EPOCH,
    HOURLY_WEIGHT,
    INTERMITTENT_ACTIVE_P,
    LINES_PER_ORDER_P,
    WAREHOUSE_MISMATCH,
    stream_rng,
)
from shikong.geo_resources import load_municipalities, load_states


@dataclass(frozen=True)
class Scenario:
    """Everything fixed before the first simulated day.

    Attributes:
        cfg: The resolved scale.
        seed: World seed.
        start_day: First simulated day, days since 1970-01-01.
        muni: The packaged municipalities (customers and warehouses refer to its rows).
        prod: Catalogue.
        wh: Warehouses.
        cust: Customers.
        hs: Planted hot spots.
        dem: Daily demand, promotions and regional taste.
        stock: Tracked (warehouse, SKU) pairs and planted stock-out windows.
    """

    cfg: GeneratorScale
    seed: int
    start_day: int
    muni: pd.DataFrame
    prod: Products
    wh: Warehouses
    cust: Customers
    hs: Hotspots
    dem: Demand
    stock: Stock


def make_scenario(cfg: GeneratorScale, seed: int, start: date) -> Scenario:
    """Draw the entities, demand and stock plan of a world (each from its own stream)."""
    muni, states = load_municipalities(), load_states()
    prod = make_products(cfg, stream_rng(seed, "products"))
    wh = make_warehouses(cfg, muni, stream_rng(seed, "warehouses"))
    cust = make_customers(cfg, muni, states, wh, stream_rng(seed, "customers"))
    hs = make_hotspots(cfg, muni, cust, stream_rng(seed, "hotspots"))
    dem = make_demand(cfg, start, prod, cust, hs, len(wh.ids), seed)
    stock = make_stock(cfg, prod, cust, dem, len(wh.ids), seed)
    return Scenario(cfg, seed, (start - EPOCH).days, muni, prod, wh, cust, hs, dem, stock)


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
    hour = rng.choice(24, size=n, p=HOURLY_WEIGHT / HOURLY_WEIGHT.sum())
    within = np.where(hour == 0, 900 + rng.integers(0, 2700, size=n), rng.integers(0, 3600, size=n))
    return hour * 3600 + within


def _group_cumcount(sorted_groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal (sorted) group values."""
    return np.arange(len(sorted_groups)) - np.searchsorted(sorted_groups, sorted_groups, "left")


def month_spans(start: date, days: int) -> list[tuple[int, int, str]]:
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


@dataclass(frozen=True)
class MonthResult:
    """Clean landing tables of one month."""

    orders: Table
    lines: Table
    events: Table


class Simulation:
    """The running state of one month-by-month pass over a scenario.

    Call :meth:`month` for every span of :func:`month_spans` in order, then
    :meth:`inventory` and :meth:`signup_days` (they depend on all months' sales and visits).
    """

    def __init__(self, sc: Scenario) -> None:
        self.cfg, self.seed, self.start_day = sc.cfg, sc.seed, sc.start_day
        self.prod, self.wh, self.cust = sc.prod, sc.wh, sc.cust
        self.dem, self.stock = sc.dem, sc.stock
        cfg = sc.cfg
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
            gate = rng.random((nd, len(inter))) < INTERMITTENT_ACTIVE_P
            base[:, inter] *= gate / INTERMITTENT_ACTIVE_P
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

    def month(self, m: int, d0: int, d1: int) -> MonthResult:
        """Generate orders, order lines and events of the days ``[d0, d1)``."""
        cfg, rng = self.cfg, stream_rng(self.seed, "month", m)
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
        p1, p2 = WAREHOUSE_MISMATCH
        o_wh = np.where(
            u < p1,
            self.cust.near1[o_cust],
            np.where(u < p2, self.cust.near2[o_cust], rng.integers(0, nw, size=n)),
        )
        age = cfg.days - 1 - (d0 + o_day)
        canceled = rng.random(n) < CANCEL_P
        shipped = rng.random(n) < np.exp(-age / 4.0)
        status = np.where(canceled, "canceled", np.where(shipped, "shipped", "delivered"))
        o_num = self.next_order + np.arange(n)
        self.next_order += n
        if self.next_order >= FRESH_KEY_BASE["orders"]:
            raise ValueError("too many orders for the order id range")
        o_ids = fmt_id("O", o_num, 8)
        o_ts_s = fmt_ts(o_ts)

        # Order lines: SKUs by popularity x season x promo x regional taste, in stock only.
        k = rng.choice(4, size=n, p=LINES_PER_ORDER_P) + 1
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
        jlat, jlon = offset_km(
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
        return MonthResult(orders, lines, events)

    # -- inventory ----------------------------------------------------------------------

    def inventory(self) -> tuple[np.ndarray, np.ndarray]:
        """End-of-day (on_hand, on_order), shape (days, tracked pairs).

        Periodic review: every R days (per pair) the stock is topped up to the cycle's
        sales plus a safety stock, so on_hand never hits 0 except inside the planted
        stock-out windows, where it is exactly 0 (and those pairs sold nothing).
        """
        cfg, st, rng = self.cfg, self.stock, stream_rng(self.seed, "inventory")
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

    # -- customers' sign-up ---------------------------------------------------------------

    def signup_days(self) -> np.ndarray:
        """Sign-up day per customer (days since 1970-01-01), after all months ran.

        Signed up some time before the world starts, or at the latest on the first visit.
        """
        srng = stream_rng(self.seed, "signup")
        return np.minimum(
            srng.integers(
                self.start_day - 1095, self.start_day + self.cfg.days, size=self.cfg.customers
            ),
            self.first_day,
        )
