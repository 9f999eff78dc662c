"""Row validation of raw landing data: parse, classify, de-duplicate.

Every raw row ends up in exactly one of two places: accepted (typed bronze columns) or
quarantined (the raw row unchanged, with the first applicable reason code). The functions
here are pure ``DataFrame -> DataFrame`` transforms; reading and writing live in the job.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from shikong import schemas as S

SOURCE_FILE = S.SOURCE_FILE
CORRUPT = S.CORRUPT
BAD_HEADER_FLAG = S.BAD_HEADER_FLAG  # set by the reader on the rows of a bad-header file
UNPLACED = "_unplaced"  # set by adapters that geocode rows by name (Olist)
ROW_HASH = "_row_hash"
OCCURRENCE = "_occurrence"
RAW = "_raw"
REASON = "_reason"
#: What a reader makes of bytes that are not UTF-8.
REPLACEMENT_CHAR = "\ufffd"

TS_FORMATS = ("yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSS")

#: Largest accepted value (inclusive) per numeric kind. The reader takes "Infinity", "NaN",
#: "1e308" for numbers; no real price, quantity or stock is anywhere near these bounds, so a
#: value beyond one is an exporter or unit error that would swamp every sum downstream. It
#: is quarantined with the column's usual reason (BAD_PRICE, BAD_QUANTITY, BAD_VALUE); lat
#: and lon have their natural bounds (BAD_COORDINATE).
MAX_VALUE: dict[str, float] = {
    "price": 1e9,  # a unit price or freight; the dearest item is orders of magnitude below
    "qty": 1e6,  # units on one order line
    "stock": 1e9,  # units on hand / on order of one SKU at one warehouse
    "int": 1e9,  # magnitude of counters such as line numbers
    "double": 1e9,  # other measures (weight_kg, service_radius_km)
}


@dataclass(frozen=True)
class ColumnSpec:
    """How to parse and check one raw column.

    Attributes:
        name: Column name.
        kind: ``str``, ``int``, ``double``, ``ts``, ``date``, ``lat``, ``lon``, ``qty``
            (integer > 0), ``stock`` (integer >= 0) or ``price`` (number >= 0); numeric
            kinds are also bounded above by :data:`MAX_VALUE`.
        required: Null or blank -> ``MISSING_KEY``.
        domain: Allowed values of a ``str`` column (else ``BAD_VALUE``).
        ref: Name of a reference set; an unknown value -> ``UNKNOWN_SKU`` for ``sku``,
            else ``UNKNOWN_REFERENCE``.
    """

    name: str
    kind: str = "str"
    required: bool = False
    domain: tuple[str, ...] = ()
    ref: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Parsing rules of one landing source."""

    source: S.LandingSource
    columns: tuple[ColumnSpec, ...]
    derived: Mapping[str, Callable[[], Column]] = field(default_factory=dict)


def _month_of(col: str) -> Callable[[], Column]:
    return lambda: F.date_format(F.col(col), "yyyy-MM")


def _date_of(col: str) -> Callable[[], Column]:
    return lambda: F.to_date(F.col(col))


SPECS: dict[str, SourceSpec] = {
    "products": SourceSpec(
        S.PRODUCTS,
        (
            ColumnSpec("sku", required=True),
            ColumnSpec("category"),
            ColumnSpec("unit_price", "price"),
            ColumnSpec("weight_kg", "double"),
        ),
    ),
    "warehouses": SourceSpec(
        S.WAREHOUSES,
        (
            ColumnSpec("warehouse_id", required=True),
            ColumnSpec("city"),
            ColumnSpec("state"),
            ColumnSpec("lat", "lat", required=True),
            ColumnSpec("lon", "lon", required=True),
            ColumnSpec("service_radius_km", "double"),
        ),
    ),
    "customers": SourceSpec(
        S.CUSTOMERS,
        (
            ColumnSpec("customer_id", required=True),
            ColumnSpec("city"),
            ColumnSpec("state"),
            ColumnSpec("lat", "lat"),
            ColumnSpec("lon", "lon"),
            ColumnSpec("signup_date", "date"),
        ),
    ),
    "orders": SourceSpec(
        S.ORDERS,
        (
            ColumnSpec("order_id", required=True),
            ColumnSpec("customer_id", required=True, ref="customers"),
            ColumnSpec("order_ts", "ts", required=True),
            ColumnSpec("warehouse_id", ref="warehouses"),
            ColumnSpec("lat", "lat"),
            ColumnSpec("lon", "lon"),
            ColumnSpec("status", domain=S.ORDER_STATUSES),
        ),
        derived={"order_date": _date_of("order_ts"), "order_month": _month_of("order_ts")},
    ),
    "order_lines": SourceSpec(
        S.ORDER_LINES,
        (
            ColumnSpec("order_id", required=True),
            ColumnSpec("line_no", "int", required=True),
            ColumnSpec("order_ts", "ts", required=True),
            ColumnSpec("sku", required=True, ref="sku"),
            ColumnSpec("quantity", "qty", required=True),
            ColumnSpec("unit_price", "price"),
            ColumnSpec("freight_value", "price"),  # optional in the landing contract
        ),
        derived={"order_date": _date_of("order_ts"), "order_month": _month_of("order_ts")},
    ),
    "events": SourceSpec(
        S.EVENTS,
        (
            ColumnSpec("event_id", required=True),
            ColumnSpec("session_id", required=True),
            ColumnSpec("customer_id"),
            ColumnSpec("event_ts", "ts", required=True),
            ColumnSpec("event_type", required=True, domain=S.EVENT_TYPES),
            ColumnSpec("sku", ref="sku"),
            ColumnSpec("lat", "lat"),
            ColumnSpec("lon", "lon"),
        ),
        derived={"event_date": _date_of("event_ts"), "event_month": _month_of("event_ts")},
    ),
    "inventory": SourceSpec(
        S.INVENTORY,
        (
            ColumnSpec("snapshot_date", "date", required=True),
            ColumnSpec("sku", required=True, ref="sku"),
            ColumnSpec("warehouse_id", required=True, ref="warehouses"),
            ColumnSpec("on_hand", "stock"),
            ColumnSpec("on_order", "stock"),
        ),
        derived={"snapshot_month": _month_of("snapshot_date")},
    ),
}


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def _parse(spec: ColumnSpec) -> Column:
    """Typed value of a raw string column; null when it does not parse."""
    raw = F.trim(F.col(spec.name))
    if spec.kind == "str":
        return F.when(raw != "", raw)
    if spec.kind in ("int", "qty", "stock"):
        # "3.0" is a valid integer quantity from some exporters; "3.5" is not.
        num = raw.try_cast("double")
        return F.when(num == F.floor(num), num.try_cast("int"))
    if spec.kind in ("double", "lat", "lon", "price"):
        num = raw.try_cast("double")
        return F.when(~F.isnan(num), num)
    if spec.kind == "ts":
        return F.coalesce(*[F.try_to_timestamp(raw, F.lit(f)) for f in TS_FORMATS])
    if spec.kind == "date":
        return F.to_date(F.try_to_timestamp(raw, F.lit("yyyy-MM-dd")))
    raise ValueError(f"unknown column kind {spec.kind!r} for {spec.name}")


def _violations(
    spec: ColumnSpec, parsed: Column, valid_from: dt.date, valid_to: dt.date
) -> list[tuple[str, Column]]:
    """(reason, condition) pairs for one column; conditions assume the raw value is present."""
    raw = F.col(spec.name)
    present = ~_blank(raw)
    out: list[tuple[str, Column]] = []
    if spec.required:
        out.append((S.MISSING_KEY, _blank(raw)))
    k = spec.kind
    if k in ("ts", "date"):
        lo = F.lit(dt.datetime.combine(valid_from, dt.time.min))
        hi = F.lit(dt.datetime.combine(valid_to, dt.time.max))
        as_ts = parsed.cast("timestamp")
        out.append((S.BAD_TIMESTAMP, present & parsed.isNull()))
        out.append((S.TS_OUT_OF_RANGE, present & ((as_ts < lo) | (as_ts > hi))))
    elif k == "lat":
        out.append((S.BAD_COORDINATE, present & (parsed.isNull() | (F.abs(parsed) > 90))))
    elif k == "lon":
        out.append((S.BAD_COORDINATE, present & (parsed.isNull() | (F.abs(parsed) > 180))))
    elif k in MAX_VALUE:
        # NaN parses to null; +-Infinity and 1e308 fail the bounds. An int counter's sign
        # is not checked, its magnitude is (as a double: abs of the smallest int overflows).
        size = F.abs(parsed.cast("double")) if k == "int" else parsed
        too_big = size > F.lit(MAX_VALUE[k])
        bad = parsed.isNull() | too_big
        if k == "qty":
            bad = bad | (parsed <= 0)
        elif k != "int":
            bad = bad | (parsed < 0)
        code = {"qty": S.BAD_QUANTITY, "stock": S.BAD_QUANTITY, "price": S.BAD_PRICE}
        out.append((code.get(k, S.BAD_VALUE), present & bad))
    if spec.domain:
        out.append((S.BAD_VALUE, present & ~F.trim(raw).isin(*spec.domain)))
    if spec.ref:
        reason = S.UNKNOWN_SKU if spec.ref == "sku" else S.UNKNOWN_REFERENCE
        out.append((reason, present & F.col(f"_known_{spec.name}").isNull()))
    return out


def with_row_hash(
    df: DataFrame, *, columns: tuple[str, ...], optional: tuple[str, ...] = ()
) -> DataFrame:
    """Add a SHA-256 of the raw content (nulls distinguished from empty strings).

    Together with the source file and an occurrence number it identifies a raw row across
    re-runs, so the quarantine can be written idempotently even for exact duplicates.
    ``optional`` columns (after ``columns``) count only where they are not null, so a row
    of a file without them hashes as it did before the contract had them.
    """
    content = F.concat_ws(
        "\u0001",
        *[F.coalesce(F.col(c), F.lit("\u0000")) for c in columns],
        *[F.col(c) for c in optional],  # concat_ws skips nulls
    )
    return df.withColumn(ROW_HASH, F.sha2(content, 256))


def classify(
    raw: DataFrame,
    spec: SourceSpec,
    *,
    refs: Mapping[str, DataFrame],
    valid_from: dt.date,
    valid_to: dt.date,
) -> DataFrame:
    """Parse and classify raw rows of one source.

    Args:
        raw: All-string rows with ``_source_file``.
        spec: The source's parsing rules.
        refs: Reference sets by name (``sku``, ``customers``, ``warehouses``): one-column
            DataFrames of known keys.
        valid_from: Earliest valid timestamp/date.
        valid_to: Latest valid timestamp/date.

    Returns:
        Rows with typed columns, the raw row as ``_raw`` (struct of strings), identity
        columns and ``_reason`` (null when accepted). Among rows that pass every check,
        the second and later copies of a business key get ``DUPLICATE``.
    """
    names, optional = spec.source.all_columns, spec.source.optional
    # A raw frame without an optional column (an adapter's, a test's) has it null.
    raw = raw.withColumns({c: F.lit(None).cast("string") for c in optional if c not in raw.columns})
    malformed = CORRUPT in raw.columns
    hashed = (*spec.source.columns, CORRUPT) if malformed else spec.source.columns
    df = with_row_hash(raw, columns=hashed, optional=optional)
    df = df.withColumn(RAW, F.struct(*hashed, *optional))
    for col_spec in spec.columns:
        if col_spec.ref:
            known = refs[col_spec.ref].select(F.col(refs[col_spec.ref].columns[0]).alias("_k"))
            known = F.broadcast(known.distinct().withColumn(f"_known_{col_spec.name}", F.lit(True)))
            df = df.join(known, F.trim(F.col(col_spec.name)) == F.col("_k"), "left").drop("_k")

    checks: list[tuple[str, Column]] = []
    if BAD_HEADER_FLAG in raw.columns:
        checks.append((S.BAD_HEADER, F.col(BAD_HEADER_FLAG)))
    if malformed:
        checks.append((S.MALFORMED_ROW, F.col(CORRUPT).isNotNull()))
    # Bytes that are not UTF-8 (a latin-1 file) reach us as U+FFFD: the value is lost, so
    # the row cannot be accepted as it stands; it is malformed like a line that does not
    # parse, and the quarantine keeps what could be read of it.
    undecodable = [F.col(c).contains(REPLACEMENT_CHAR) for c in names]
    checks.append((S.MALFORMED_ROW, F.coalesce(reduce(operator.or_, undecodable), F.lit(False))))
    if UNPLACED in raw.columns:
        checks.append((S.UNPLACED_LOCATION, F.col(UNPLACED)))
    parsed = {c.name: _parse(c) for c in spec.columns}
    for col_spec in spec.columns:
        checks.extend(_violations(col_spec, parsed[col_spec.name], valid_from, valid_to))
    order = {r: i for i, r in enumerate(S.REASON_ORDER)}
    checks.sort(key=lambda rc: order[rc[0]])  # stable: column order within one reason
    reason: Column = F.lit(None).cast("string")
    for code, cond in reversed(checks):
        reason = F.when(cond, F.lit(code)).otherwise(reason)

    typed = df.select(
        *[parsed[c.name].alias(c.name) for c in spec.columns],
        F.col(SOURCE_FILE),
        F.col(ROW_HASH),
        F.col(RAW),
        reason.alias(REASON),
    )
    for name, fn in spec.derived.items():
        typed = typed.withColumn(name, fn())

    # One shuffle serves both windows: identical raw rows share their keys and reason, so
    # grouping by (valid, keys, file, hash) refines the de-duplication partitioning.
    keys = [F.col(k) for k in spec.source.keys]
    valid = F.col(REASON).isNull()
    by_key = Window.partitionBy(valid, *keys).orderBy(SOURCE_FILE, ROW_HASH)
    by_content = Window.partitionBy(valid, *keys, F.col(SOURCE_FILE), F.col(ROW_HASH)).orderBy(
        ROW_HASH
    )
    return (
        typed.withColumn("_rank", F.row_number().over(by_key))
        .withColumn(OCCURRENCE, F.row_number().over(by_content))
        .withColumn(
            REASON,
            F.when(valid & (F.col("_rank") > 1), F.lit(S.DUPLICATE)).otherwise(F.col(REASON)),
        )
        .drop("_rank")
    )


def accepted_rows(classified: DataFrame, spec: SourceSpec, *, run_id: str) -> DataFrame:
    """Typed bronze rows of a classified frame, with lineage columns."""
    cols = [c.name for c in spec.columns] + list(spec.derived)
    return classified.where(F.col(REASON).isNull()).select(
        *cols,
        F.col(SOURCE_FILE).alias("_source_file"),
        F.lit(run_id).alias("_ingest_run_id"),
        F.current_timestamp().alias("_ingested_at"),
    )


def quarantined_rows(classified: DataFrame, spec: SourceSpec, *, run_id: str) -> DataFrame:
    """Rejected rows, unchanged (as JSON of the raw strings), with reason and identity.

    Optional columns of the contract appear in the JSON only when the row has one (not
    all null), so the row of a file without them reads as it did before they existed.
    """
    as_json = {"ignoreNullFields": "false"}
    raw = F.to_json(F.col(RAW), as_json)
    optional = spec.source.optional
    if optional:
        fields = classified.schema[RAW].dataType.fieldNames()  # type: ignore[attr-defined]
        core = F.struct(*[F.col(RAW)[f].alias(f) for f in fields if f not in optional])
        absent = reduce(operator.and_, [F.col(RAW)[c].isNull() for c in optional])
        raw = F.when(absent, F.to_json(core, as_json)).otherwise(raw)
    return classified.where(F.col(REASON).isNotNull()).select(
        F.lit(spec.source.name).alias("source"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(ROW_HASH).alias("row_hash"),
        F.col(OCCURRENCE).alias("occurrence"),
        F.col(REASON).alias("reason"),
        raw.alias("raw"),
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
