"""Size and behaviour knobs of the demo world."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class GeneratorScale:
    """How big the generated world is and how it behaves.

    Attributes:
        name: Label written to ``world.json``.
        days: Number of simulated days starting at ``start_date``.
        skus: Catalogue size (at most 89,999: ``SKU-9xxxx`` ids are reserved for dirty rows).
        order_lines: Target number of clean order lines (the realised count is within a
            few percent: daily order counts are Poisson draws).
        customers: Number of customers.
        warehouses: Number of warehouses, at state capitals (1..27).
        categories: Number of product categories (1..15).
        hotspots: Number of planted spatial demand hot spots.
        dirty_share: Share of dirty rows ADDED per landing file (0.01 = 1 per 100 clean).
        inventory_skus_per_warehouse: Cap on SKUs snapshotted per warehouse (the ones with
            the highest expected sales there); None snapshots every pair expected to sell.
        stockout_pair_share: Share of snapshotted SKU x warehouse pairs with a stock-out.
        intermittent_share: Share of SKUs (the least popular) with intermittent demand.
        view_prob: Probability that a purchased line is preceded by a ``view`` event.
        cart_prob: Probability that a purchased line is preceded by a ``cart`` event.
        browse_sessions_per_order: Non-buying sessions generated per order.
    """

    name: str
    days: int
    skus: int
    order_lines: int
    customers: int
    warehouses: int = 12
    categories: int = 15
    hotspots: int = 5
    dirty_share: float = 0.01
    inventory_skus_per_warehouse: int | None = None
    stockout_pair_share: float = 0.05
    intermittent_share: float = 0.3
    view_prob: float = 0.5
    cart_prob: float = 0.6
    browse_sessions_per_order: float = 0.2

    def __post_init__(self) -> None:
        checks = [
            (self.days >= 7, "days must be >= 7"),
            (10 <= self.skus <= 89_999, "skus must be in 10..89999"),
            (self.order_lines >= 100, "order_lines must be >= 100"),
            (100 <= self.customers <= 8_999_999, "customers must be in 100..8999999"),
            (1 <= self.warehouses <= 27, "warehouses must be in 1..27"),
            (1 <= self.categories <= 15, "categories must be in 1..15"),
            (0 <= self.hotspots <= 12, "hotspots must be in 0..12"),
            (0.0 <= self.dirty_share <= 0.2, "dirty_share must be in [0, 0.2]"),
            (
                self.inventory_skus_per_warehouse is None or self.inventory_skus_per_warehouse >= 1,
                "inventory_skus_per_warehouse must be >= 1 or None",
            ),
            (0.0 <= self.stockout_pair_share <= 0.5, "stockout_pair_share must be in [0, 0.5]"),
            (0.0 <= self.intermittent_share <= 0.9, "intermittent_share must be in [0, 0.9]"),
            (0.0 <= self.view_prob <= 1.0, "view_prob must be in [0, 1]"),
            (0.0 <= self.cart_prob <= 1.0, "cart_prob must be in [0, 1]"),
            (
                0.0 <= self.browse_sessions_per_order <= 5.0,
                "browse_sessions_per_order must be in [0, 5]",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"GeneratorScale {self.name!r}: {msg}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (for ``world.json``)."""
        return dataclasses.asdict(self)


#: Named presets. ``small`` is for tests (a few seconds), ``default`` for demos/benchmarks.
SCALES: MappingProxyType[str, GeneratorScale] = MappingProxyType(
    {
        "small": GeneratorScale(
            name="small",
            days=90,
            skus=200,
            order_lines=30_000,
            customers=5_000,
            hotspots=4,
        ),
        # A thinner browse funnel, the top 120 SKUs per warehouse in the inventory feed and
        # 18 months (at the daily volume of 1M lines over two years) keep the landing at
        # ~3.2M rows, so `make run` (generate + ingest + every job, the deep models
        # included) fits in 10 minutes on two cores; the purchase events of every order
        # line are all there.
        "default": GeneratorScale(
            name="default",
            days=548,
            skus=2_000,
            order_lines=750_000,
            customers=100_000,
            hotspots=5,
            inventory_skus_per_warehouse=120,
            view_prob=0.15,
            cart_prob=0.3,
            browse_sessions_per_order=0.05,
        ),
    }
)


def resolve_scale(scale: str | GeneratorScale, **overrides: Any) -> GeneratorScale:
    """Turn a preset name (or a scale) plus field overrides into a GeneratorScale.

    Args:
        scale: A key of :data:`SCALES` or a ready GeneratorScale.
        **overrides: GeneratorScale fields to replace, e.g. ``days=30``.

    Returns:
        The resolved, validated scale.

    Raises:
        ValueError: Unknown preset name or invalid field value.
    """
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; known: {sorted(SCALES)}")
        scale = SCALES[scale]
    return dataclasses.replace(scale, **overrides) if overrides else scale
