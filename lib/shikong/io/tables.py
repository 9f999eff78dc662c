"""The table declarations: every lakehouse table once, published or restricted.

A :class:`TableSpec` says where a table lives (layer and name), what identifies a row
(business keys), how it is partitioned, how a stage writes it (:class:`WriteMode`: MERGE,
replace the recomputed scope, or overwrite) and whether it is *published* (may leave the
restricted layer) or *restricted*, with the reason. Bronze and the quarantine hold raw data
and are always restricted; every published table states its :class:`Protection`
(pseudonymised customer ids, coarsened coordinates, small-cell suppression), and a write
of a published table refuses a customer id or coordinate column it does not declare
protected (README "Privacy"). :mod:`shikong.io.catalog` reads and writes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from shikong import schemas as S


class WriteMode(enum.Enum):
    """How a stage writes a table (the catalogue picks the Delta operation)."""

    #: MERGE on the business keys, insert new keys only (immutable facts: events, logs).
    INSERT_ONLY = "insert_only"
    #: MERGE on the business keys, update rows whose values changed (from a newer
    #: ``sequence_by`` value when the table has one), insert new keys.
    UPSERT = "upsert"
    #: Replace the scope the stage recomputed (Delta ``replaceWhere`` over ``scope_by``):
    #: every old row inside the scope goes, rows outside it stay as history.
    REPLACE_SCOPE = "replace_scope"
    #: Replace the whole table (the stage recomputes all of it every run).
    OVERWRITE = "overwrite"


@dataclass(frozen=True)
class Since:
    """A scope bound: every value from ``start`` on (a rolling window such as the last N
    delivery days, which also covers later days that no longer have any row)."""

    start: dt.date | int | float | str


#: The value a stage gives for one scope column: that value, or everything from a bound on.
ScopeValue = dt.date | int | float | str | Since


#: Customer ids and exact locations: a published table carries one only as declared.
PERSONAL_COLUMNS = ("customer_id", "lat", "lon", "x_m", "y_m")

#: Layers that hold raw data: never published.
RESTRICTED_LAYERS = ("bronze", "bronze_olist")


@dataclass(frozen=True)
class Protection:
    """What protects a published table's rows (README "Privacy").

    Attributes:
        pseudonymised: Columns holding customer ids as HMAC-SHA256 pseudonyms.
        coarsened: Coordinate columns limited to ``privacy.location_h3_resolution`` (the
            centroid of the H3 cell).
        suppression: How cells with fewer than ``privacy.min_cell_customers`` distinct
            customers are handled (``"removed"``), empty when the table holds no such cells.
        note: Why the rest needs nothing (e.g. no customer data at all).
    """

    pseudonymised: tuple[str, ...] = ()
    coarsened: tuple[str, ...] = ()
    suppression: str = ""
    note: str = ""

    def describe(self) -> str:
        """One line for the README and logs."""
        parts = []
        if self.pseudonymised:
            parts.append(f"pseudonymised ({', '.join(self.pseudonymised)})")
        if self.coarsened:
            parts.append(f"coarsened to H3 centroid ({', '.join(self.coarsened)})")
        if self.suppression:
            parts.append(f"cells < k customers {self.suppression}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


#: Published tables that hold no customer-level data at all.
_NO_CUSTOMER_DATA = Protection(note="no customer ids or customer locations")
_DP = "orders/customers counts with OpenDP noise when privacy.dp_epsilon > 0"


@dataclass(frozen=True)
class TableSpec:
    """One lakehouse table.

    Attributes:
        layer: Lakehouse layer (``bronze``, ``silver``, ``gold``, ``ops``...).
        name: Table name within the layer.
        mode: How it is written.
        keys: Business keys (unique per row; the whole MERGE condition of a MERGE table).
        partition_by: Partition columns (file layout only: never part of a match).
        published: Whether the table may leave the restricted layer (reports, exports);
            restricted unless declared published with its ``protection``.
        description: One line on what a row is.
        restricted_reason: (restricted tables, required there) Why it stays restricted.
        protection: (published tables, required there) What protects its rows.
        sequence_by: (UPSERT) Column ordering the versions of a row, e.g. the ingest time:
            a matched row is updated only from a strictly newer value, latest wins.
        lineage: (UPSERT) Columns saying where and when a row was written (file, run):
            rewritten with a real change, never a change by themselves, so re-delivering
            the same row changes nothing.
        scope_by: (REPLACE_SCOPE) Columns the replaced scope is stated over; each write
            gives a value (or a :class:`Since` bound) for every one of them.
    """

    layer: str
    name: str
    mode: WriteMode
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    published: bool = False
    description: str = ""
    sequence_by: str | None = None
    lineage: tuple[str, ...] = ()
    scope_by: tuple[str, ...] = ()
    restricted_reason: str = ""
    protection: Protection | None = None

    def __post_init__(self) -> None:
        merge = self.mode in (WriteMode.INSERT_ONLY, WriteMode.UPSERT)
        upsert = self.mode is WriteMode.UPSERT
        if merge and not self.keys:
            raise ValueError(f"{self.qualified}: a MERGE-written table needs business keys")
        if (self.sequence_by or self.lineage) and not upsert:
            raise ValueError(
                f"{self.qualified}: sequence_by and lineage order and qualify updates; "
                "only an UPSERT (MERGE) table has updates"
            )
        if {self.sequence_by, *self.lineage} & set(self.keys):
            raise ValueError(f"{self.qualified}: a business key cannot be sequence or lineage")
        if (self.mode is WriteMode.REPLACE_SCOPE) != bool(self.scope_by):
            raise ValueError(
                f"{self.qualified}: scope_by is needed by, and only by, a REPLACE_SCOPE table"
            )
        if self.published and self.layer in RESTRICTED_LAYERS:
            raise ValueError(f"{self.qualified}: the {self.layer} layer is never published")
        if self.published and (self.protection is None or self.restricted_reason):
            raise ValueError(
                f"{self.qualified}: a published table states its protection "
                "(and has no restricted_reason)"
            )
        if not self.published and self.protection is not None:
            raise ValueError(f"{self.qualified}: a restricted table has no protection to state")

    @property
    def qualified(self) -> str:
        """``layer.name``."""
        return f"{self.layer}.{self.name}"

    def in_layer(self, layer: str) -> TableSpec:
        """The same table in another layer (e.g. ``bronze_olist`` for the Olist adapter)."""
        return dataclasses.replace(self, layer=layer)


#: Landing sources that restate the current state of an entity (an order's status, a
#: customer's address, a price): bronze keeps the latest version of each row. Events and
#: inventory snapshots are observations that never change: their bronze is insert-only.
_RESTATED = ("products", "warehouses", "customers", "orders", "order_lines")


def _bronze(source: S.LandingSource) -> TableSpec:
    restated = source.name in _RESTATED
    return TableSpec(
        "bronze",
        source.name,
        WriteMode.UPSERT if restated else WriteMode.INSERT_ONLY,
        keys=source.keys,
        partition_by=source.partition_by,
        published=False,
        restricted_reason="raw landing data (bronze: customer ids, exact coordinates)",
        description=f"validated {source.name} rows from the landing files",
        # Ingest reads the whole landing folder each run: its time orders the versions,
        # and re-reading an unchanged file differs only in lineage, so it changes nothing.
        sequence_by="_ingested_at" if restated else None,
        lineage=("_source_file", "_ingest_run_id") if restated else (),
    )


_I, _U = WriteMode.INSERT_ONLY, WriteMode.UPSERT
_R, _O = WriteMode.REPLACE_SCOPE, WriteMode.OVERWRITE

#: Every table of the lakehouse, by qualified name.
TABLES: Mapping[str, TableSpec] = {
    t.qualified: t
    for t in (
        *(_bronze(src) for src in S.SOURCES),
        # Logs that only grow: a rejected raw row (by file, content and occurrence) is
        # recorded once; a run's reconciliation row is restated if the run reports again.
        TableSpec(
            "bronze",
            "quarantine",
            _I,
            keys=("source", "source_file", "row_hash", "occurrence"),
            partition_by=("source",),
            published=False,
            restricted_reason="raw rejected rows, unchanged (ids, coordinates, free text)",
            description="every rejected raw row, unchanged, with its reason code",
        ),
        TableSpec(
            "ops",
            "privacy_budget",
            _U,
            keys=("release_id", "table", "column"),
            published=False,
            restricted_reason="operations: the privacy ledger (no customer data)",
            description="per DP release and column: mechanism, epsilon, delta, threshold",
        ),
        TableSpec(
            "ops",
            "erasure_log",
            _U,
            keys=("request_id", "table"),
            published=False,
            restricted_reason="operations: erasure requests, by pseudonym only",
            description="per erasure request and table: rows and files removed, vacuum",
        ),
        TableSpec(
            "ops",
            "run_log",
            _U,
            keys=("job", "run_id", "source", "source_file"),
            published=False,
            restricted_reason="operations: run errors (free text that may quote rows)",
            description="per job, run and file: rows in / accepted / rejected, status",
        ),
        # The spatial stage recomputes every customer, order, month, period and cluster
        # from all of bronze: a month or period whose orders disappeared must go too, so
        # these are replaced whole (partitioned for readers, never replaced by partition).
        # The spatial working tables keep exact points and raw ids: the series, routing and
        # training stages compute distances and features from them inside the lakehouse.
        TableSpec(
            "silver",
            "customers_geo",
            _O,
            published=False,
            restricted_reason="working table: raw customer ids and exact points (features)",
            description="customer location features",
        ),
        TableSpec(
            "silver",
            "orders_geo",
            _O,
            partition_by=("order_month",),
            published=False,
            restricted_reason="working table: raw ids and exact order points (features)",
            description="per order: region, H3, distances, nearest warehouses, flags",
        ),
        TableSpec(
            "gold",
            "service_zones",
            _O,
            published=True,
            protection=Protection(note="warehouse service areas only"),
            description="service areas clipped to states",
        ),
        TableSpec(
            "gold",
            "grid_daily",
            _O,
            partition_by=("month",),
            published=True,
            protection=Protection(suppression="removed", note=_DP),
            description="H3 cell x day",
        ),
        TableSpec(
            "gold",
            "grid_daily_category",
            _O,
            partition_by=("month",),
            published=True,
            protection=Protection(suppression="removed", note=_DP),
            description="H3 cell x day x category",
        ),
        TableSpec(
            "gold",
            "hotspots",
            _O,
            partition_by=("period",),
            published=True,
            protection=Protection(suppression="removed (Gi* itself computed on every cell before)"),
            description="Gi* per cell x period",
        ),
        TableSpec(
            "gold",
            "spatial_autocorrelation",
            _O,
            published=True,
            protection=Protection(note="one global statistic per run"),
            description="global Moran's I",
        ),
        TableSpec(
            "gold",
            "customer_clusters",
            _O,
            published=True,
            protection=Protection(
                pseudonymised=("customer_id",),
                coarsened=("lat", "lon"),
                note="clusters computed from exact points first",
            ),
            description="DBSCAN + K-means per customer",
        ),
        TableSpec(
            "gold",
            "region_profiles",
            _O,
            published=True,
            protection=Protection(suppression="removed (states)"),
            description="clusters of states by profile",
        ),
        # Every series is rebuilt from all of bronze each run.
        TableSpec(
            "silver",
            "sku_daily",
            _O,
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="cleaned daily series per SKU key",
        ),
        TableSpec(
            "silver",
            "sku_warehouse_daily",
            _O,
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="the demand model's series (SKU x warehouse)",
        ),
        # One run date is recomputed for every current series (and SKU x warehouse): a series
        # that dropped out must lose its rows of that date; earlier run dates stay as history.
        TableSpec(
            "gold",
            "forecasts",
            _R,
            keys=("series_id", "run_date", "ds"),
            partition_by=("run_date",),
            scope_by=("run_date",),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="SARIMA forecasts with 80/95% intervals",
        ),
        TableSpec(
            "gold",
            "forecast_metrics",
            _R,
            keys=("series_id", "run_date", "fold", "model"),
            partition_by=("run_date",),
            scope_by=("run_date",),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="rolling-origin backtest per series x fold x model",
        ),
        # Two stages write the policy tables, each its own forecast source's rows of a run
        # date: inventory_policy (SARIMA-driven) and policy_fusion (fusion-driven).
        TableSpec(
            "gold",
            "inventory_policy",
            _R,
            keys=("sku", "warehouse_id", "run_date", "forecast_source"),
            partition_by=("run_date",),
            scope_by=("run_date", "forecast_source"),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="safety stock, reorder point, EOQ, order today",
        ),
        TableSpec(
            "gold",
            "policy_simulation",
            _R,
            keys=("sku", "warehouse_id", "policy", "run_date", "forecast_source"),
            partition_by=("run_date",),
            scope_by=("run_date", "forecast_source"),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="replay: SARIMA-driven and fusion-driven policies vs naive",
        ),
        # The last N delivery days are re-solved: every date from the window's first day on
        # is replaced (a later date whose orders vanished too); older dates stay as history.
        # Routes are operational: a driver needs every stop's exact address, so the routes
        # (lines through the stops), the stops and the unrouted orders stay restricted;
        # the per warehouse-day summary holds no order or customer, and the sketches (for
        # maps) pass through the stops' H3 centroids only.
        *(
            TableSpec(
                "gold",
                name,
                _R,
                partition_by=("delivery_date",),
                scope_by=("delivery_date",),
                description=what,
                published=reason is None,
                restricted_reason=reason or "",
                protection=protection,
            )
            for name, what, reason, protection in (
                (
                    "routes",
                    "one row per vehicle route",
                    "operational: lines through exact stops",
                    None,
                ),
                (
                    "route_stops",
                    "one row per routed order",
                    "operational: exact stop addresses",
                    None,
                ),
                (
                    "route_groups",
                    "OR-Tools vs nearest neighbour per warehouse-day",
                    None,
                    Protection(note="per warehouse-day totals only (orders, km, freight)"),
                ),
                (
                    "route_sketches",
                    "both solvers' routes through their stops' H3 centroids",
                    None,
                    Protection(coarsened=("geom_wkb",), note="depots exact; no order ids"),
                ),
                (
                    "unrouted_orders",
                    "orders left off every route, with a reason",
                    "operational: order ids for dispatch",
                    None,
                ),
            )
        ),
        # History keyed by run: a run only ever adds or restates its own rows.
        TableSpec(
            "gold",
            "training_metrics",
            _U,
            keys=("run_id", "model_kind", "epoch"),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="per-epoch losses of every training run",
        ),
        TableSpec(
            "gold",
            "model_registry",
            _U,
            keys=("model_kind", "run_id"),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="one row per trained model",
        ),
        # A scoring run forecasts every current series from the day after its data: the
        # predictions from that origin on are replaced, earlier origins stay as history.
        TableSpec(
            "gold",
            "demand_predictions",
            _R,
            keys=("series_id", "origin", "ds"),
            scope_by=("origin",),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="fusion-model quantile forecasts",
        ),
        # The current top-K of every recently active customer: a customer who is no longer
        # active keeps no recommendation, so each scoring run replaces the table.
        TableSpec(
            "gold",
            "recommendations",
            _O,
            keys=("customer_id", "rank"),
            published=True,
            protection=Protection(pseudonymised=("customer_id",)),
            description="top-K SKUs per recently active customer",
        ),
        # The buyer head's probability for the same customers, replaced with them.
        TableSpec(
            "gold",
            "buyer_probability",
            _O,
            keys=("customer_id",),
            published=True,
            protection=Protection(pseudonymised=("customer_id",)),
            description="probability that a recently active customer's next session buys",
        ),
        TableSpec(
            "gold",
            "model_evaluation",
            _U,
            keys=("model_kind", "model_run_id", "model", "metric"),
            published=True,
            protection=_NO_CUSTOMER_DATA,
            description="test-split metrics of the models and their baselines",
        ),
        # What the report shows of operations, summarised from the restricted run log and
        # quarantine by the report stage each run (replaced whole: a summary of all runs).
        TableSpec(
            "gold",
            "stage_runs",
            _O,
            published=True,
            protection=Protection(note="stage timings and status only (no error text)"),
            description="per stage run: start, seconds, status",
        ),
        TableSpec(
            "gold",
            "ingest_files",
            _O,
            published=True,
            protection=Protection(note="row counts per landing file only"),
            description="per ingest run and landing file: rows in / accepted / rejected",
        ),
        TableSpec(
            "gold",
            "quarantine_reasons",
            _O,
            published=True,
            protection=Protection(note="row counts per file and reason only (no row content)"),
            description="quarantined rows per source, landing file and reason",
        ),
    )
}


#: Lakehouse locations that are not Delta tables: all restricted, with the reason. (The
#: report, ``report/``, and the GeoParquet exports, ``exports/``, are published: they hold
#: only what published tables hold.)
RESTRICTED_LOCATIONS: Mapping[str, str] = {
    "landing": "raw files as an upstream system delivers them",
    "ml/training_data": "training and serving shards: raw customer ids (recommender "
    "examples and serving rows) and per-customer locations, needed to score customers",
    "ml/models": "models and checkpoints trained on the restricted shards",
    "mlruns": "MLflow runs of the training stage (parameters, metrics, models)",
    "_checkpoints": "Spark checkpoints of intermediate frames (exact points)",
    "_streaming": "checkpoints of shikong stream (landing file names, no rows)",
}


class UnprotectedColumnError(ValueError):
    """A published table was written with a customer id or coordinate column that its
    catalogue entry does not declare protected."""


#: Columns the transaction log keeps no min/max of (out of an erasure's reach there).
NO_STATS_COLUMNS = (*PERSONAL_COLUMNS, "order_id", "raw", "customer_pseudonyms")
_STATS_TYPES = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)


def stats_columns(df: DataFrame, partition_by: Iterable[str] = ()) -> list[str] | None:
    """The columns a new table keeps statistics of: ``None`` (Delta's default) unless
    ``df`` has a :data:`NO_STATS_COLUMNS` column; then every other plain-typed column."""
    if not set(df.columns) & set(NO_STATS_COLUMNS):
        return None
    skip = {*NO_STATS_COLUMNS, *partition_by}
    return [
        f.name
        for f in df.schema.fields
        if f.name not in skip and isinstance(f.dataType, _STATS_TYPES)
    ][:32]


def check_published_columns(t: TableSpec, columns: Iterable[str]) -> None:
    """Refuse personal columns (:data:`PERSONAL_COLUMNS`) a published table does not declare
    protected (pseudonymised or coarsened): privacy by default for new columns.

    Raises:
        UnprotectedColumnError: Naming the table and the columns.
    """
    if not t.published or t.protection is None:
        return
    declared = {*t.protection.pseudonymised, *t.protection.coarsened}
    bad = sorted(c for c in columns if c in PERSONAL_COLUMNS and c not in declared)
    if bad:
        raise UnprotectedColumnError(
            f"{t.qualified} is published: columns {bad} hold customer ids or exact "
            "locations; pseudonymise or coarsen them and declare it in its Protection "
            "(io/tables.py), or drop them"
        )


def _check_declared(tables: Iterable[TableSpec]) -> None:
    """Every catalogued table is published with its protection or restricted with a reason."""
    for t in tables:
        if not t.published and not t.restricted_reason:
            raise ValueError(f"{t.qualified}: a restricted table states why (restricted_reason)")


_check_declared(TABLES.values())


def published(tables: Iterable[TableSpec] = TABLES.values()) -> list[TableSpec]:
    """The published tables (those that may leave the restricted layer)."""
    return [t for t in tables if t.published]


def restricted(tables: Iterable[TableSpec] = TABLES.values()) -> list[TableSpec]:
    """The restricted tables (each with its reason)."""
    return [t for t in tables if not t.published]
