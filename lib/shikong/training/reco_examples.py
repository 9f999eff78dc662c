"""Recommender examples: one per (customer, session), cut at its prediction time.

Pure pandas builders over ``bronze.events``-shaped frames; a customer's whole history must
be in one call (a Spark job groups by customer, see :func:`make_recommender_examples_fn`).
Leakage rule (tested): the history is the customer's events strictly before the cut time,
and the split is by cut time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shikong.encoding import EVENT_CODES, OOV
from shikong.geodesy import haversine
from shikong.training.common import EPOCH, epoch_seconds, gap_bucket, stable_hash


@dataclass(frozen=True)
class RecoExampleConfig:
    """How recommender examples are cut from ``bronze.events``.

    Attributes:
        max_len: History length K (must equal the model's ``max_len``).
        n_wh: Nearest-warehouse distances kept (model's ``n_wh``).
        n_gap_buckets: Gap buckets (model's ``n_gap_buckets``).
        cell_deg: Grid size (degrees) of the location cell when it comes from the event
            lat/lon rather than a user-context frame.
        max_targets: Distinct SKUs of a buying session kept in ``target_items`` (ranking
            metrics with several relevant items).
    """

    max_len: int = 20
    n_wh: int = 3
    n_gap_buckets: int = 24
    cell_deg: float = 0.25
    max_targets: int = 5


@dataclass(frozen=True)
class Vocab:
    """Item and category vocabularies: item index ``i + 2`` (0 pad, 1 OOV), category index
    ``j + 1`` (0 unknown)."""

    items: tuple[str, ...]
    categories: tuple[str, ...] = ()
    item_category: tuple[int, ...] = ()
    _item_pos: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._item_pos.update({s: i + 2 for i, s in enumerate(self.items)})

    @property
    def n_items(self) -> int:
        """Vocabulary size including pad and OOV."""
        return len(self.items) + 2

    @property
    def n_categories(self) -> int:
        """Category vocabulary size including unknown."""
        return len(self.categories) + 1

    def item_index(self, skus: Iterable[Any]) -> np.ndarray:
        """Item indices (OOV = 1) of SKUs."""
        return np.asarray([self._item_pos.get(str(s), OOV) for s in skus], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``meta.json``."""
        return {k: list(v) for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocab:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["items"]), tuple(data["categories"]), tuple(data["item_category"]))


def build_vocab(skus: Iterable[Any], products: pd.DataFrame | None = None) -> Vocab:
    """Vocabulary of the catalogue (pass ``bronze.products.sku``: the catalogue is dimension
    data, known in advance); categories from ``products`` (``sku``, ``category``)."""
    items = tuple(sorted({str(s) for s in skus if s is not None and s == s}))
    if products is None or "category" not in products.columns:
        return Vocab(items, (), tuple([0] * (len(items) + 2)))
    cat_of = dict(zip(products["sku"].astype(str), products["category"], strict=False))
    cats = tuple(sorted({str(c) for c in cat_of.values() if c is not None and c == c}))
    cpos = {c: j + 1 for j, c in enumerate(cats)}
    item_cat = [0, 0] + [cpos.get(str(cat_of.get(s)), 0) for s in items]
    return Vocab(items, cats, tuple(item_cat))


RECO_COLUMNS = (
    "customer_id",
    "session_id",
    "cut_s",
    "hist_last_s",
    "hist_items",
    "hist_cats",
    "hist_events",
    "hist_gaps",
    "region",
    "cell",
    "wh_km",
    "hour",
    "dow",
    "target_item",
    "buyer",
    "target_items",
)


def _context_map(
    user_context: pd.DataFrame | None,
) -> dict[Any, tuple[Any, Any, np.ndarray | None]]:
    """``customer_id -> (region, cell, wh_km or None)``; a dict, since a ``.loc`` per
    customer dominates the builders' run time on large inputs."""
    if user_context is None:
        return {}
    ctx = user_context.drop_duplicates("customer_id")
    n = len(ctx)
    region = ctx["region"].tolist() if "region" in ctx.columns else [None] * n
    cell = ctx["cell"].tolist() if "cell" in ctx.columns else [None] * n
    kms = ctx["wh_km"].tolist() if "wh_km" in ctx.columns else [None] * n
    out = {}
    for cid, r, c, k in zip(ctx["customer_id"].tolist(), region, cell, kms, strict=True):
        r = None if r is None or (isinstance(r, float) and math.isnan(r)) else r
        c = None if c is None or (isinstance(c, float) and math.isnan(c)) else c
        km = None if k is None or (isinstance(k, float) and math.isnan(k)) else np.asarray(k, float)
        out[cid] = (r, c, km)
    return out


def _coded_events(ev: pd.DataFrame, vocab: Vocab) -> pd.DataFrame:
    """Events (a private copy) with epoch seconds, item / category / event codes, sorted by
    customer and time."""
    ev["_ts"] = epoch_seconds(ev["event_ts"])
    ev["_item"] = vocab.item_index(ev["sku"])
    item_cat = np.asarray(vocab.item_category, dtype=np.int64)
    ev["_cat"] = item_cat[ev["_item"].to_numpy()] if len(item_cat) else 0
    ev["_evt"] = ev["event_type"].map(EVENT_CODES).fillna(0).astype(np.int64)
    ev = ev.sort_values(["customer_id", "_ts", "event_id"], kind="stable")
    return ev


def _reco_frame(rows: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Example rows -> frame with hashed location ids and fixed dtypes."""
    out = pd.DataFrame(rows)
    out["region"] = stable_hash(out["region"])
    out["cell"] = stable_hash(out["cell"])
    for col in ("cut_s", "hist_last_s", "hour", "dow", "target_item"):
        out[col] = out[col].astype(np.int64)
    out["buyer"] = out["buyer"].astype(np.float32)
    return out


def recommender_examples(
    events: pd.DataFrame,
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    user_context: pd.DataFrame | None = None,
    warehouses: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One example per (customer, session), cut at its prediction time.

    The cut is one second after the session's last browsing (non-purchase) event before its
    first purchase (never later than that purchase) for a buying session, whose target is
    the first purchased SKU (``buyer = 1``); one second after the last event for a
    non-buying session (``target_item = 0``, ``buyer = 0``). Both kinds are thus cut the
    same way, right after browsing, so the gap to the cut does not give the label away.
    The history is the customer's last ``max_len`` events strictly before the cut, from any
    session (earlier purchases included), left-padded.

    Args:
        events: ``bronze.events`` rows (``event_id``, ``session_id``, ``customer_id``,
            ``event_ts``, ``event_type``, ``sku``, ``lat``, ``lon``).
        vocab: Item / category vocabularies.
        cfg: Sizes.
        user_context: Optional per-customer location (``customer_id``, ``region``,
            ``cell`` and optionally ``wh_km`` as a list of nearest-warehouse km, e.g. from
            ``silver.customers_geo``). Without it the cell is the ``cell_deg`` grid cell of
            the session's first located event at or before the cut and the region unknown.
        warehouses: Optional ``lat``, ``lon`` of the warehouses, for ``wh_km`` when
            ``user_context`` does not give it.

    Returns:
        Columns :data:`RECO_COLUMNS` (``cut_s``/``hist_last_s``: epoch seconds;
        ``hist_last_s = -1`` for an empty history; ``target_items``: the session's distinct
        purchased items in purchase order, 0-padded to ``max_targets``).
    """
    k_len, n_wh = cfg.max_len, cfg.n_wh
    ev = _coded_events(events.copy(), vocab)

    ctx = _context_map(user_context)
    wh = None
    if warehouses is not None and len(warehouses):
        wh = (warehouses["lat"].to_numpy(float), warehouses["lon"].to_numpy(float))

    rows: dict[str, list[Any]] = {c: [] for c in RECO_COLUMNS}
    purchase, deg = EVENT_CODES["purchase"], cfg.cell_deg
    cust_codes, cust_names = pd.factorize(ev["customer_id"], sort=False)
    sess_codes, sess_names = pd.factorize(ev["session_id"], sort=False)
    bounds = np.flatnonzero(np.diff(cust_codes)) + 1
    all_ts, all_items = ev["_ts"].to_numpy(), ev["_item"].to_numpy()
    all_cats, all_evts = np.asarray(ev["_cat"].to_numpy(), dtype=np.int64), ev["_evt"].to_numpy()
    all_lat, all_lon = ev["lat"].to_numpy(float), ev["lon"].to_numpy(float)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(ev)], strict=True):
        cust = cust_names[cust_codes[a]]
        ts, items, cats, evts = all_ts[a:b], all_items[a:b], all_cats[a:b], all_evts[a:b]
        lat_c, lon_c, sess = all_lat[a:b], all_lon[a:b], sess_codes[a:b]
        region, ctx_cell, ctx_km = ctx.get(cust, (None, None, None))
        for code in dict.fromkeys(sess.tolist()):  # first-seen order, cheaper than pd.unique
            pos = np.flatnonzero(sess == code)
            bought = pos[evts[pos] == purchase]
            targets = np.zeros(cfg.max_targets, dtype=np.int64)
            if len(bought):
                distinct = list(dict.fromkeys(items[bought].tolist()))[: cfg.max_targets]
                targets[: len(distinct)] = distinct
                first = bought[0]
                browse = pos[(pos < first) & (evts[pos] != purchase)]
                # Just after the last browsing event, but never at or after the purchase.
                cut = int(min(ts[browse[-1]] + 1, ts[first])) if len(browse) else int(ts[first])
                target = int(items[first])
            else:
                cut = int(ts[pos[-1]]) + 1
                target = 0
            j = int(np.searchsorted(ts, cut, side="left"))
            i0 = max(0, j - k_len)
            n = j - i0
            pad = k_len - n

            def seq(a: np.ndarray, i0: int = i0, j: int = j, pad: int = pad) -> np.ndarray:
                return np.concatenate([np.zeros(pad, np.int64), a[i0:j].astype(np.int64)])

            seen = pos[(ts[pos] <= cut) & np.isfinite(lat_c[pos]) & np.isfinite(lon_c[pos])]
            lat = float(lat_c[seen[0]]) if len(seen) else math.nan
            lon = float(lon_c[seen[0]]) if len(seen) else math.nan
            cell, wkm = ctx_cell, ctx_km
            if cell is None and math.isfinite(lat):
                cell = f"g{deg}:{math.floor(lat / deg)}:{math.floor(lon / deg)}"
            if wkm is None and wh is not None and math.isfinite(lat):
                wkm = np.sort(haversine(lat, lon, wh[0], wh[1]))
            dist = np.zeros(n_wh, dtype=np.float32)
            if wkm is not None:
                k = min(n_wh, len(wkm))
                dist[:k] = np.log1p(np.asarray(wkm[:k], dtype=np.float64))
            gaps = np.zeros(k_len, dtype=np.int64)
            if n:
                gaps[pad:] = gap_bucket(cut - ts[i0:j], cfg.n_gap_buckets)
            cut_ts = EPOCH + pd.Timedelta(seconds=cut)
            values = (
                cust, sess_names[code], cut, int(ts[j - 1]) if n else -1,
                seq(items), seq(cats), seq(evts), gaps, region, cell, dist,
                cut_ts.hour, cut_ts.dayofweek, target, 1.0 if len(bought) else 0.0, targets,
            )  # fmt: skip
            for col, value in zip(RECO_COLUMNS, values, strict=True):
                rows[col].append(value)

    out = _reco_frame(rows)
    return out.sort_values(["cut_s", "customer_id"], kind="stable").reset_index(drop=True)


#: Spark DDL of :func:`recommender_examples` output (for ``applyInPandas``).
RECO_EXAMPLE_SCHEMA = (
    "customer_id string, session_id string, cut_s bigint, hist_last_s bigint, "
    "hist_items array<bigint>, hist_cats array<bigint>, hist_events array<bigint>, "
    "hist_gaps array<bigint>, region bigint, cell bigint, wh_km array<float>, hour bigint, "
    "dow bigint, target_item bigint, buyer float, target_items array<bigint>"
)


def recommender_score_examples(
    events: pd.DataFrame,
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    cut_s: int,
    user_context: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One example per customer at a common cut time, for serving recommendations.

    The history is the customer's last ``max_len`` events strictly before ``cut_s`` (as in
    :func:`recommender_examples`); the location is the user context's (``region``,
    ``cell``, ``wh_km``) or, without one, the grid cell of the customer's latest located
    event. Targets are unknown (``target_item = 0``, ``buyer = 0``).

    Args:
        events: ``bronze.events`` rows.
        vocab: Item / category vocabularies.
        cfg: Sizes.
        cut_s: Prediction time (epoch seconds).
        user_context: Optional per-customer ``region``, ``cell``, ``wh_km``.

    Returns:
        Columns :data:`RECO_COLUMNS`, one row per customer with at least one event before
        the cut.
    """
    ev = _coded_events(events.loc[epoch_seconds(events["event_ts"]) < cut_s].copy(), vocab)
    ctx = _context_map(user_context)
    k_len, deg = cfg.max_len, cfg.cell_deg
    cut_ts = EPOCH + pd.Timedelta(seconds=int(cut_s))
    rows: dict[str, list[Any]] = {c: [] for c in RECO_COLUMNS}
    codes, names = pd.factorize(ev["customer_id"], sort=False)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    all_ts, all_items = ev["_ts"].to_numpy(), ev["_item"].to_numpy(np.int64)
    all_cats = np.asarray(ev["_cat"].to_numpy(), dtype=np.int64)
    all_evts = ev["_evt"].to_numpy(np.int64)
    all_lat, all_lon = ev["lat"].to_numpy(float), ev["lon"].to_numpy(float)
    zeros = np.zeros(k_len, np.int64)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(ev)], strict=True):
        if b <= a:
            continue
        cust = names[codes[a]]
        i0 = max(a, b - k_len)
        n, pad = b - i0, k_len - (b - i0)

        def seq(arr: np.ndarray, i0: int = i0, b: int = b, pad: int = pad) -> np.ndarray:
            return np.concatenate([zeros[:pad], arr[i0:b]])

        region, cell, wkm = ctx.get(cust, (None, None, None))
        if cell is None:
            ok = np.flatnonzero(np.isfinite(all_lat[a:b]) & np.isfinite(all_lon[a:b]))
            if len(ok):
                lat, lon = float(all_lat[a + ok[-1]]), float(all_lon[a + ok[-1]])
                cell = f"g{deg}:{math.floor(lat / deg)}:{math.floor(lon / deg)}"
        dist = np.zeros(cfg.n_wh, dtype=np.float32)
        if wkm is not None:
            k = min(cfg.n_wh, len(wkm))
            dist[:k] = np.log1p(wkm[:k])
        gaps = np.zeros(k_len, dtype=np.int64)
        gaps[pad:] = gap_bucket(cut_s - all_ts[i0:b], cfg.n_gap_buckets)
        values = (
            cust, None, int(cut_s), int(all_ts[b - 1]) if n else -1,
            seq(all_items), seq(all_cats), seq(all_evts), gaps, region, cell, dist,
            cut_ts.hour, cut_ts.dayofweek, 0, 0.0, np.zeros(cfg.max_targets, dtype=np.int64),
        )  # fmt: skip
        for col, value in zip(RECO_COLUMNS, values, strict=True):
            rows[col].append(value)
    return _reco_frame(rows)


def make_recommender_examples_fn(
    vocab: Vocab,
    cfg: RecoExampleConfig,
    *,
    user_context: pd.DataFrame | None = None,
    warehouses: pd.DataFrame | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn(pdf)`` for ``events.groupBy("customer_id").applyInPandas(fn,
    RECO_EXAMPLE_SCHEMA)`` (a customer's whole history must be in one group)."""

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = recommender_examples(pdf, vocab, cfg, user_context=user_context, warehouses=warehouses)
        for col in ("customer_id", "session_id"):
            ex[col] = ex[col].astype(str)
        return ex

    return fn
