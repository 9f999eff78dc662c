"""Seeded demo world: a Brazilian e-commerce business as landing tables, in memory.

:func:`build_world` draws everything fixed before the first day (:mod:`.entities`,
:mod:`.demand`); :meth:`World.files` then runs the month-by-month :mod:`.simulation` and
yields the world file by file (one month of one source at a time, so memory stays low),
with controlled dirty rows (:mod:`.dirty`) added and the planted ground truth last. The
tables are formatted strings; writing them is :func:`shikong.io.world_files.write_world`.

Layout (relative to the landing folder): as described in :mod:`shikong.schemas`, plus
``_ground_truth/`` (dirty_rows.csv, hotspots.csv, stockouts.csv, promotions.csv,
world.json).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from shikong import schemas
from shikong.generator.config import GeneratorScale, resolve_scale
from shikong.generator.dirty import DirtyContext, inject_dirty
from shikong.generator.formatting import (
    Table,
    fmt_date,
    fmt_fixed,
    fmt_id,
    fmt_int,
    table_len,
)
from shikong.generator.priors import CATEGORIES, stream_rng
from shikong.generator.simulation import Scenario, Simulation, make_scenario, month_spans

logger = logging.getLogger(__name__)

GROUND_TRUTH_DIR = schemas.GROUND_TRUTH_DIR
_SOURCE_IDS = {s.name: i for i, s in enumerate(schemas.SOURCES)}
_SOURCE = {s.name: s for s in schemas.SOURCES}
_JSON_NUMERIC = frozenset({"lat", "lon"})


@dataclass(frozen=True)
class WorldFile:
    """One landing or ground-truth file of the world, formatted but not written.

    Attributes:
        rel: Path relative to the landing folder, e.g. ``orders/orders-2023-01.jsonl``.
        fmt: ``csv``, ``jsonl`` (one JSON object per row) or ``json`` (one document).
        columns: Column (key) order of a ``csv`` / ``jsonl`` file.
        table: Column -> string array (``""`` = null) of a ``csv`` / ``jsonl`` file,
            dirty rows included.
        numeric: ``jsonl`` columns written as JSON numbers (the others are strings).
        document: The JSON document of a ``json`` file.
        source: The landing source of the rows; ``None`` for a ground-truth file.
        clean_rows: Rows of the table before dirty rows were added.
    """

    rel: str
    fmt: str
    columns: tuple[str, ...] = ()
    table: Mapping[str, np.ndarray] = field(default_factory=dict)
    numeric: frozenset[str] = frozenset()
    document: Mapping[str, Any] | None = None
    source: str | None = None
    clean_rows: int = 0

    @property
    def rows(self) -> int:
        """Rows of the table (clean plus dirty)."""
        return table_len(self.table)


@dataclass(frozen=True)
class World:
    """A seeded demo world: its scenario in memory, its files produced on demand.

    Attributes:
        seed: Seed used.
        scale: The resolved scale.
        start_date: First simulated day.
        end_date: Last simulated day (inclusive).
        scenario: Entities, demand and stock plan.
    """

    seed: int
    scale: GeneratorScale
    start_date: date
    end_date: date
    scenario: Scenario = field(repr=False)

    def files(self) -> Iterator[WorldFile]:
        """Run the simulation and yield every file: landing files, then ground truth.

        Each call runs the simulation afresh and yields byte-for-byte the same tables.
        Landing files come in this order: products, warehouses, then per month orders,
        order lines and events, then inventory per month, then customers (their sign-up
        dates depend on every month's visits).
        """
        sc, cfg = self.scenario, self.scale
        sim = Simulation(sc)
        spare_w, spare_s = np.nonzero(sc.stock.pair_of < 0)
        book = _DirtyBook(
            self.seed,
            DirtyContext(
                share=cfg.dirty_share,
                spare_inventory_pairs=(sc.prod.ids[spare_s], sc.wh.ids[spare_w]),
                fallback_day=sc.start_day - 1,
            ),
        )
        yield book.file("products", _products_table(sc))
        yield book.file("warehouses", _warehouses_table(sc))
        spans = month_spans(self.start_date, cfg.days)
        for m, (d0, d1, ym) in enumerate(spans):
            res = sim.month(m, d0, d1)
            yield book.file("orders", res.orders, ym, m)
            yield book.file("order_lines", res.lines, ym, m)
            yield book.file("events", res.events, ym, m)
            logger.info(
                "month %s: %d orders, %d lines, %d events",
                ym,
                table_len(res.orders),
                table_len(res.lines),
                table_len(res.events),
            )
        on_hand, on_order = sim.inventory()
        st = sc.stock
        n_p = len(st.pair_s)
        for m, (d0, d1, ym) in enumerate(spans):
            nd = d1 - d0
            yield book.file(
                "inventory",
                {
                    "snapshot_date": np.repeat(fmt_date(sc.start_day + np.arange(d0, d1)), n_p),
                    "sku": np.tile(sc.prod.ids[st.pair_s], nd),
                    "warehouse_id": np.tile(sc.wh.ids[st.pair_w], nd),
                    "on_hand": fmt_int(on_hand[d0:d1].reshape(-1)),
                    "on_order": fmt_int(on_order[d0:d1].reshape(-1)),
                },
                ym,
                m,
            )
        muni_name = sc.muni["name"].to_numpy().astype(str)
        muni_uf = sc.muni["uf"].to_numpy().astype(str)
        customers = {
            "customer_id": sim.cust_ids,
            "city": muni_name[sc.cust.muni],
            "state": muni_uf[sc.cust.muni],
            "lat": sim.cust_lat5,
            "lon": sim.cust_lon5,
            "signup_date": fmt_date(sim.signup_days()),
        }
        yield book.file("customers", customers)
        yield from self._ground_truth(book)

    def _ground_truth(self, book: _DirtyBook) -> Iterator[WorldFile]:
        """The planted truth: dirty rows per file, hot spots, stock-outs, promotions."""
        sc = self.scenario
        rank = {r: i for i, r in enumerate(schemas.REASON_ORDER)}
        truth = sorted(book.truth, key=lambda r: (r[0], rank[r[2]]))
        yield _truth_csv(
            "dirty_rows.csv",
            {
                "file": np.array([r[0] for r in truth], dtype=str),
                "source": np.array([r[1] for r in truth], dtype=str),
                "reason": np.array([r[2] for r in truth], dtype=str),
                "count": np.array([str(r[3]) for r in truth], dtype=str),
            },
        )
        hs = sc.hs
        yield _truth_csv(
            "hotspots.csv",
            {
                "id": fmt_id("HS", np.arange(1, len(hs.lat) + 1), 2),
                "lat": fmt_fixed(hs.lat, 5),
                "lon": fmt_fixed(hs.lon, 5),
                "radius_km": fmt_fixed(hs.radius_km, 1),
                "start_date": fmt_date(sc.start_day + hs.start),
                "end_date": fmt_date(sc.start_day + hs.end),
                "uplift": fmt_fixed(hs.uplift, 2),
            },
        )
        st = sc.stock
        so = np.lexsort((st.so_start, st.so_w, st.so_s))
        yield _truth_csv(
            "stockouts.csv",
            {
                "sku": sc.prod.ids[st.so_s[so]],
                "warehouse_id": sc.wh.ids[st.so_w[so]],
                "start_date": fmt_date(sc.start_day + st.so_start[so]),
                "end_date": fmt_date(sc.start_day + st.so_end[so]),
            },
        )
        pr = sc.dem.promotions
        cat_names = np.array([c.name for c in CATEGORIES])
        yield _truth_csv(
            "promotions.csv",
            {
                "category": cat_names[pr.cat],
                "start_date": fmt_date(sc.start_day + pr.start),
                "end_date": fmt_date(sc.start_day + pr.end),
                "discount": fmt_fixed(pr.discount, 2),
                "uplift": fmt_fixed(pr.uplift, 2),
            },
        )
        world = {
            "seed": self.seed,
            "scale": self.scale.to_dict(),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "counts": {
                s.name: {
                    "clean": book.clean[s.name],
                    "dirty": book.dirty[s.name],
                    "total": book.clean[s.name] + book.dirty[s.name],
                }
                for s in schemas.SOURCES
            },
            "files": dict(sorted(book.rows.items())),
            "intermittent_skus": sc.prod.ids[sc.prod.intermittent].tolist(),
            "categories": [c.name for c in CATEGORIES[: self.scale.categories]],
            "valid_ts_window": ["2000-01-01", "2035-12-31"],
        }
        yield WorldFile(f"{GROUND_TRUTH_DIR}/world.json", "json", document=world)


def build_world(
    *, seed: int, scale: str | GeneratorScale, start_date: date = date(2023, 1, 1)
) -> World:
    """Draw a seeded demo world: entities, demand and stock plan (no files written).

    Args:
        seed: Non-negative seed; the same seed (and scale, start date) gives
            byte-identical files.
        scale: ``"small"``, ``"default"`` or a :class:`GeneratorScale` (e.g.
            ``resolve_scale("default", days=365)``).
        start_date: First simulated day.

    Returns:
        The world; :meth:`World.files` runs the simulation.

    Raises:
        ValueError: Negative seed, unknown scale or invalid scale fields.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    cfg = resolve_scale(scale)
    end_date = start_date + timedelta(days=cfg.days - 1)
    logger.info("drawing %s world (seed %d) %s..%s", cfg.name, seed, start_date, end_date)
    return World(seed, cfg, start_date, end_date, make_scenario(cfg, seed, start_date))


class _DirtyBook:
    """Adds dirty rows to each landing table and keeps the per-file bookkeeping."""

    def __init__(self, seed: int, ctx: DirtyContext) -> None:
        self.seed, self.ctx = seed, ctx
        self.rows: dict[str, int] = {}
        self.clean: dict[str, int] = {s.name: 0 for s in schemas.SOURCES}
        self.dirty: dict[str, int] = {s.name: 0 for s in schemas.SOURCES}
        self.truth: list[tuple[str, str, str, int]] = []

    def file(self, source: str, table: Table, suffix: str = "", part: int = 0) -> WorldFile:
        src = _SOURCE[source]
        name = f"{src.folder}-{suffix}" if suffix else src.folder
        fmt = "jsonl" if src.fmt == "json" else "csv"
        rel = f"{src.folder}/{name}.{fmt}"
        rng = stream_rng(self.seed, "dirty", _SOURCE_IDS[source], part)
        n_clean = table_len(table)
        out, counts = inject_dirty(source, table, rng, self.ctx)
        n = table_len(out)
        self.rows[rel] = n
        self.clean[source] += n_clean
        self.dirty[source] += n - n_clean
        for reason, c in counts.items():
            self.truth.append((rel, source, reason, c))
        numeric = _JSON_NUMERIC if fmt == "jsonl" else frozenset()
        return WorldFile(rel, fmt, src.columns, out, numeric, None, source, n_clean)


def _truth_csv(name: str, table: Table) -> WorldFile:
    return WorldFile(f"{GROUND_TRUTH_DIR}/{name}", "csv", tuple(table), table)


def _products_table(sc: Scenario) -> Table:
    return {
        "sku": sc.prod.ids,
        "category": np.array([c.name for c in CATEGORIES])[sc.prod.cat],
        "unit_price": fmt_fixed(sc.prod.price, 2),
        "weight_kg": fmt_fixed(sc.prod.weight, 3),
    }


def _warehouses_table(sc: Scenario) -> Table:
    return {
        "warehouse_id": sc.wh.ids,
        "city": sc.wh.city,
        "state": sc.wh.uf,
        "lat": fmt_fixed(sc.wh.lat, 5),
        "lon": fmt_fixed(sc.wh.lon, 5),
        "service_radius_km": fmt_int(sc.wh.radius_km),
    }
