"""Landing contract: the raw files an upstream system drops, and the reason codes of ingest.

The demo generator writes exactly these files and columns; ingest reads them with these
explicit schemas (every landing column is read as a string so that a malformed value is
quarantined with a reason instead of silently becoming null).

Layout under ``<lakehouse>/landing/``::

    products/products.csv                 catalogue
    warehouses/warehouses.csv             warehouses at real cities
    customers/customers.csv               customers placed around municipalities
    orders/orders-YYYY-MM.jsonl           one JSON object per order
    order_lines/order_lines-YYYY-MM.csv   one row per order line (freight_value optional)
    events/events-YYYY-MM.jsonl           behaviour events (view / cart / purchase)
    inventory/inventory-YYYY-MM.csv       daily on-hand snapshot per SKU x warehouse
    _ground_truth/                        written by the generator only (never ingested)

Timestamps are ISO-8601 local time without zone (``2024-03-01T14:05:09``), dates are
``YYYY-MM-DD``, coordinates WGS84 decimal degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import StringType, StructField, StructType

#: Lineage column of every raw row: its file, relative to the landing folder.
SOURCE_FILE = "_source_file"
#: Where Spark's permissive readers keep a line that does not fit the schema.
CORRUPT = "_corrupt_record"
#: Set (true) on the raw rows of a CSV file whose header is not the contract's; each such
#: row holds one data line of the file in ``_corrupt_record``.
BAD_HEADER_FLAG = "_bad_header"


@dataclass(frozen=True)
class LandingSource:
    """One kind of landing file.

    Attributes:
        name: Source name, also the bronze table name.
        folder: Folder under ``landing/``.
        fmt: ``csv`` or ``json`` (JSON lines).
        columns: Column names in file order: every file has them.
        optional: Columns a file may add after ``columns``, in this order (a CSV header
            may stop after any of them); where a file lacks one it is null. A column
            added to a contract joins here, so files written before it still load.
        keys: Business key used for de-duplication and MERGE.
        date_column: Column whose date partitions the bronze table, if any.
        partition_by: Partition columns of the bronze table (derived from ``date_column``).
    """

    name: str
    folder: str
    fmt: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    date_column: str | None = None
    partition_by: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def all_columns(self) -> tuple[str, ...]:
        """Every column of the contract: ``columns``, then ``optional``."""
        return (*self.columns, *self.optional)

    @property
    def headers(self) -> tuple[tuple[str, ...], ...]:
        """The CSV headers the contract accepts: ``columns`` and then the first 0, 1, ...
        of the ``optional`` columns, shortest first."""
        return tuple((*self.columns, *self.optional[:n]) for n in range(len(self.optional) + 1))

    def raw_schema(self, columns: tuple[str, ...] | None = None) -> StructType:
        """All-string schema used to read the raw file (of ``columns``; default: all)."""
        names = self.all_columns if columns is None else columns
        return StructType([StructField(c, StringType(), True) for c in names])


PRODUCTS = LandingSource(
    "products",
    "products",
    "csv",
    ("sku", "category", "unit_price", "weight_kg"),
    ("sku",),
)
WAREHOUSES = LandingSource(
    "warehouses",
    "warehouses",
    "csv",
    ("warehouse_id", "city", "state", "lat", "lon", "service_radius_km"),
    ("warehouse_id",),
)
CUSTOMERS = LandingSource(
    "customers",
    "customers",
    "csv",
    ("customer_id", "city", "state", "lat", "lon", "signup_date"),
    ("customer_id",),
)
ORDERS = LandingSource(
    "orders",
    "orders",
    "json",
    ("order_id", "customer_id", "order_ts", "warehouse_id", "lat", "lon", "status"),
    ("order_id",),
    date_column="order_ts",
    partition_by=("order_month",),
)
ORDER_LINES = LandingSource(
    "order_lines",
    "order_lines",
    "csv",
    ("order_id", "line_no", "order_ts", "sku", "quantity", "unit_price"),
    ("order_id", "line_no"),
    date_column="order_ts",
    partition_by=("order_month",),
    # The freight charged for the line (Olist's freight_value); the generator has none.
    optional=("freight_value",),
)
EVENTS = LandingSource(
    "events",
    "events",
    "json",
    ("event_id", "session_id", "customer_id", "event_ts", "event_type", "sku", "lat", "lon"),
    ("event_id",),
    date_column="event_ts",
    partition_by=("event_month",),
)
INVENTORY = LandingSource(
    "inventory",
    "inventory",
    "csv",
    ("snapshot_date", "sku", "warehouse_id", "on_hand", "on_order"),
    ("snapshot_date", "sku", "warehouse_id"),
    date_column="snapshot_date",
    partition_by=("snapshot_month",),
)

#: Ingest order matters: referential checks need the catalogue first.
SOURCES: tuple[LandingSource, ...] = (
    PRODUCTS,
    WAREHOUSES,
    CUSTOMERS,
    ORDERS,
    ORDER_LINES,
    EVENTS,
    INVENTORY,
)

#: Folder under ``landing/`` with the generator's planted truth (never ingested).
GROUND_TRUTH_DIR = "_ground_truth"

EVENT_TYPES = ("view", "cart", "purchase")
ORDER_STATUSES = ("delivered", "shipped", "processing", "canceled")

# Reason codes of quarantined rows. A row gets the FIRST reason that applies, in this
# order; the generator injects exactly one defect per dirty row, so its ground-truth
# counts per (file, reason) must equal ingest's quarantine counts.
BAD_HEADER = "BAD_HEADER"  # the file's header is not the contract's: every record of it
MALFORMED_ROW = "MALFORMED_ROW"  # the line does not parse as CSV/JSON of this schema or UTF-8
MISSING_KEY = "MISSING_KEY"  # a business-key or required column is null/empty
BAD_TIMESTAMP = "BAD_TIMESTAMP"  # timestamp/date does not parse
TS_OUT_OF_RANGE = "TS_OUT_OF_RANGE"  # parses, but outside the configured valid window
BAD_COORDINATE = "BAD_COORDINATE"  # lat not in [-90, 90] / lon not in [-180, 180] / NaN / text
# Numbers above their kind's bound (ingest.validate.MAX_VALUE; +-Infinity, 1e308) or NaN
# get the reason of their column, as any other out-of-domain number.
BAD_QUANTITY = "BAD_QUANTITY"  # quantity non-numeric or <= 0 (on_hand/on_order < 0), too big
BAD_PRICE = "BAD_PRICE"  # price non-numeric or < 0 or too big
BAD_VALUE = "BAD_VALUE"  # other domain violation (unknown event_type, status, huge weight...)
UNKNOWN_SKU = "UNKNOWN_SKU"  # sku not in the catalogue
UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"  # other foreign key (customer, warehouse) unknown
DUPLICATE = "DUPLICATE"  # second and later copies of a business key
UNPLACED_LOCATION = "UNPLACED_LOCATION"  # (Olist adapter) city/state matches no municipality

REASON_ORDER: tuple[str, ...] = (
    BAD_HEADER,
    MALFORMED_ROW,
    UNPLACED_LOCATION,
    MISSING_KEY,
    BAD_TIMESTAMP,
    TS_OUT_OF_RANGE,
    BAD_COORDINATE,
    BAD_QUANTITY,
    BAD_PRICE,
    BAD_VALUE,
    UNKNOWN_SKU,
    UNKNOWN_REFERENCE,
    DUPLICATE,
)
