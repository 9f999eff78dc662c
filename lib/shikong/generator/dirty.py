"""Controlled dirty rows: copies of clean rows with exactly ONE defect, added to a file.

Every dirty row is an ADDED copy of a clean row of the same file, so the clean rows and
their referential integrity stay intact. A copy that is not meant to be a DUPLICATE gets
a fresh business key (unique among clean and dirty rows), so that the only reason that
applies to it under :data:`shikong.schemas.REASON_ORDER` is the injected one.

Defect variants (the exact strings written):

* DUPLICATE: byte-identical copy of a clean row (same key).
* MISSING_KEY: one key column empty (CSV) / ``null`` (JSON); never a date/timestamp column.
* BAD_TIMESTAMP: ``"2023-13-45T99:00"`` or ``"not-a-date"`` (date columns: ``"2023-13-45"``
  or ``"not-a-date"``).
* TS_OUT_OF_RANGE: the original value with its year replaced by 1900 or 2099
  (29 February becomes the 28th, so it still parses).
* BAD_COORDINATE: ``lat = 123.4`` or ``lon = -200``.
* BAD_QUANTITY: order lines ``quantity`` ``-3`` or ``0``; inventory ``on_hand`` or
  ``on_order`` ``-3`` (zero stock is valid).
* BAD_PRICE: the price negated (``-49.90``).
* UNKNOWN_SKU: ``SKU-99999``.
* UNKNOWN_REFERENCE (orders only): ``customer_id = C9999999``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shikong import schemas
from shikong.generator.formatting import Table, fmt_date, fmt_id, table_len

UNKNOWN_SKU_VALUE = "SKU-99999"
UNKNOWN_CUSTOMER_VALUE = "C9999999"
BAD_TS_VALUES = ("2023-13-45T99:00", "not-a-date")
BAD_DATE_VALUES = ("2023-13-45", "not-a-date")
OUT_OF_RANGE_YEARS = ("1900", "2099")

#: Reasons injected per source (only defects of columns the file actually has).
DEFECTS: dict[str, tuple[str, ...]] = {
    "products": (schemas.DUPLICATE, schemas.MISSING_KEY, schemas.BAD_PRICE),
    "warehouses": (schemas.DUPLICATE, schemas.MISSING_KEY, schemas.BAD_COORDINATE),
    "customers": (
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_COORDINATE,
    ),
    "orders": (
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_COORDINATE,
        schemas.UNKNOWN_REFERENCE,
    ),
    "order_lines": (
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_QUANTITY,
        schemas.BAD_PRICE,
        schemas.UNKNOWN_SKU,
    ),
    "events": (
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_COORDINATE,
        schemas.UNKNOWN_SKU,
    ),
    "inventory": (
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_QUANTITY,
        schemas.UNKNOWN_SKU,
    ),
}

# Columns that may be emptied for MISSING_KEY (keys minus the partition date).
_MISSING_COLS = {
    "products": ("sku",),
    "warehouses": ("warehouse_id",),
    "customers": ("customer_id",),
    "orders": ("order_id",),
    "order_lines": ("order_id", "line_no"),
    "events": ("event_id",),
    "inventory": ("sku", "warehouse_id"),
}
_TS_COL = {
    "customers": "signup_date",
    "orders": "order_ts",
    "order_lines": "order_ts",
    "events": "event_ts",
    "inventory": "snapshot_date",
}
_DATE_ONLY = {"signup_date", "snapshot_date"}
_PRICE_COL = {"products": "unit_price", "order_lines": "unit_price"}
_QTY = {
    "order_lines": (("quantity",), ("-3", "0")),
    "inventory": (("on_hand", "on_order"), ("-3",)),
}

# First integer of the reserved fresh-key ranges (clean ids stay below them).
FRESH_KEY_BASE = {
    "products": 90_001,
    "warehouses": 901,
    "customers": 9_000_001,
    "orders": 90_000_001,
    "events": 900_000_001,
}
_FRESH_KEY_FMT = {
    "products": ("SKU-", 5),
    "warehouses": ("WH", 3),
    "customers": ("C", 7),
    "orders": ("O", 8),
    "events": ("E", 9),
}


@dataclass
class DirtyContext:
    """State shared by all files of one world (fresh-key counters, spare inventory keys).

    Attributes:
        share: Dirty rows per clean row of each file.
        spare_inventory_pairs: (sku, warehouse_id) string arrays of pairs that have no
            snapshots, used as fresh inventory keys.
        fallback_day: Epoch day before the world starts, used (counting backwards) as a
            fresh inventory date when no spare pair exists.
        counters: Next fresh-key offset per source.
    """

    share: float
    spare_inventory_pairs: tuple[np.ndarray, np.ndarray]
    fallback_day: int
    counters: dict[str, int] = field(default_factory=dict)

    def take(self, source: str, n: int) -> np.ndarray:
        """Reserve ``n`` fresh integers for a source's keys."""
        start = self.counters.get(source, 0)
        self.counters[source] = start + n
        return FRESH_KEY_BASE.get(source, 0) + start + np.arange(n)


def n_dirty_rows(n_clean: int, share: float) -> int:
    """Dirty rows added to a file of ``n_clean`` rows (half-up rounding)."""
    return int(np.floor(n_clean * share + 0.5))


def _fresh_keys(source: str, t: Table, rng: np.random.Generator, ctx: DirtyContext) -> None:
    n = table_len(t)
    if source in _FRESH_KEY_FMT:
        prefix, width = _FRESH_KEY_FMT[source]
        key = schemas.SOURCES[[s.name for s in schemas.SOURCES].index(source)].keys[0]
        t[key] = fmt_id(prefix, ctx.take(source, n), width)
    elif source == "order_lines":
        # Same (existing) order, a line number no clean order reaches (clean: 1..4).
        t["line_no"] = (5 + np.arange(n)).astype(str)
    elif source == "inventory":
        skus, whs = ctx.spare_inventory_pairs
        if len(skus):
            pick = rng.choice(len(skus), size=n, replace=n > len(skus))
            t["sku"], t["warehouse_id"] = skus[pick], whs[pick]
        else:
            t["snapshot_date"] = fmt_date(ctx.fallback_day - ctx.take("inventory", n))
    else:
        raise ValueError(f"no fresh-key rule for {source}")


def _replace_year(v: np.ndarray, year: str) -> np.ndarray:
    out = np.strings.add(year, np.strings.slice(v, 4, None))
    leap = np.strings.slice(out, 5, 10) == "02-29"
    fixed = np.strings.add(
        np.strings.add(np.strings.slice(out, 0, 8), "28"), np.strings.slice(out, 10, None)
    )
    return np.where(leap, fixed, out)


def _apply_defect(source: str, reason: str, t: Table, rng: np.random.Generator) -> None:
    n = table_len(t)
    pick2 = rng.integers(0, 2, size=n)
    if reason == schemas.MISSING_KEY:
        cols = _MISSING_COLS[source]
        which = rng.integers(0, len(cols), size=n)
        for i, c in enumerate(cols):
            t[c] = np.where(which == i, "", t[c])
    elif reason in (schemas.BAD_TIMESTAMP, schemas.TS_OUT_OF_RANGE):
        c = _TS_COL[source]
        if reason == schemas.BAD_TIMESTAMP:
            bad = BAD_DATE_VALUES if c in _DATE_ONLY else BAD_TS_VALUES
            t[c] = np.asarray(bad)[pick2]
        else:
            t[c] = np.where(
                pick2 == 0,
                _replace_year(t[c], OUT_OF_RANGE_YEARS[0]),
                _replace_year(t[c], OUT_OF_RANGE_YEARS[1]),
            )
    elif reason == schemas.BAD_COORDINATE:
        t["lat"] = np.where(pick2 == 0, "123.4", t["lat"])
        t["lon"] = np.where(pick2 == 1, "-200", t["lon"])
    elif reason == schemas.BAD_QUANTITY:
        cols, values = _QTY[source]
        which = rng.integers(0, len(cols), size=n)
        val = np.asarray(values)[rng.integers(0, len(values), size=n)]
        for i, c in enumerate(cols):
            t[c] = np.where(which == i, val, t[c])
    elif reason == schemas.BAD_PRICE:
        c = _PRICE_COL[source]
        t[c] = np.strings.add("-", t[c])
    elif reason == schemas.UNKNOWN_SKU:
        t["sku"] = np.full(n, UNKNOWN_SKU_VALUE)
    elif reason == schemas.UNKNOWN_REFERENCE:
        t["customer_id"] = np.full(n, UNKNOWN_CUSTOMER_VALUE)
    else:
        raise ValueError(f"no defect rule for {reason}")


def inject_dirty(
    source: str, clean: Table, rng: np.random.Generator, ctx: DirtyContext
) -> tuple[Table, dict[str, int]]:
    """Add dirty copies to a clean table, interleaved at random positions.

    Args:
        source: Landing source name (a key of :data:`DEFECTS`).
        clean: The clean rows (string arrays, ``""`` = null).
        rng: Random generator dedicated to this file.
        ctx: World-wide dirty-row state.

    Returns:
        (clean plus dirty rows, number of dirty rows per reason; reasons with 0 omitted).
    """
    n_clean = table_len(clean)
    n = min(n_dirty_rows(n_clean, ctx.share), n_clean)
    if n == 0:
        return clean, {}
    reasons = DEFECTS[source]
    reason_idx = rng.integers(0, len(reasons), size=n)
    src_rows = rng.choice(n_clean, size=n, replace=False)
    parts: list[Table] = []
    counts: dict[str, int] = {}
    for r, reason in enumerate(reasons):
        rows = src_rows[reason_idx == r]
        if not len(rows):
            continue
        t = {c: v[rows] for c, v in clean.items()}
        if reason != schemas.DUPLICATE:
            _fresh_keys(source, t, rng, ctx)
            _apply_defect(source, reason, t, rng)
        parts.append(t)
        counts[reason] = len(rows)
    dirty = {c: np.concatenate([p[c] for p in parts]) for c in clean}
    # Interleave: each dirty row lands after a random clean row.
    pos = np.concatenate(
        [np.arange(n_clean, dtype=np.float64), rng.integers(0, n_clean, size=n) + 0.5]
    )
    order = np.argsort(pos, kind="stable")
    out = {c: np.concatenate([clean[c], dirty[c]])[order] for c in clean}
    return out, counts
