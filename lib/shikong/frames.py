"""Small helpers on Spark and pandas frames that every layer uses (core, no storage)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F  # noqa: N812


def first_row(df: DataFrame) -> Row:
    """The first row of a DataFrame that must have one (aggregates always do)."""
    row = df.first()
    if row is None:
        raise ValueError("expected at least one row")
    return row


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small DataFrame (summaries, per-group tables) to pandas."""
    return cast(pd.DataFrame, df.toPandas())


def is_classic(spark: SparkSession) -> bool:
    """Whether ``spark`` is a classic session (a JVM in this process), not a Connect client.

    ``pyspark.sql.SparkSession`` is the classic class; a Connect session is another class
    (``pyspark.sql.connect.session.SparkSession``), not a subclass, so this checks the
    session itself, where ``pyspark.sql.utils.is_remote`` looks at the process environment.
    """
    return isinstance(spark, SparkSession)


#: Rows of the probe in :func:`default_parallelism`: enough that every default slice of
#: ``spark.range`` holds one, on any cluster this project sizes for.
_PROBE_ROWS = 1 << 16


def default_parallelism(spark: SparkSession) -> int:
    """The session's default parallelism, read through the public API (classic or Connect).

    ``spark.default.parallelism`` when the session has it (the local profiles and the tests
    set it, and the session's conf shows the Spark settings it was built with): the same
    number ``SparkContext.defaultParallelism`` gives then. Without it, the slices of a
    ``spark.range`` without ``numPartitions``, which Spark sizes by
    ``spark.sql.leafNodeDefaultParallelism``, itself ``SparkContext.defaultParallelism``
    unless set: one small job, because a Connect client has no SparkContext to ask.

    Sizes tasks only (groups per partition, repartition counts); results do not depend on it.
    """
    configured = spark.conf.get("spark.default.parallelism", None)
    if configured:
        return int(configured)
    # Partition ids projected first: an aggregate refuses a non-deterministic argument.
    probe = (
        spark.range(0, _PROBE_ROWS)
        .select(F.spark_partition_id().alias("part"))
        .agg(F.max("part").alias("last"))
    )
    return int(first_row(probe)["last"]) + 1


# --------------------------------------------------------------------------------------
# Flat Spark DDL schemas <-> pandas frames: the one converter of the grouped functions.
# --------------------------------------------------------------------------------------

#: pandas dtypes per DDL type. Nullable: extension dtypes that Arrow turns into proper
#: nulls (decision outputs have optional columns). Strict: plain numpy dtypes for outputs
#: that never hold nulls in those columns (time-series outputs), which keeps results
#: comparable across series and tests.
_NULLABLE_DTYPES = {
    "string": "object",
    "date": "object",
    "int": "Int32",
    "bigint": "Int64",
    "double": "float64",
    "boolean": "boolean",
}
_STRICT_DTYPES = {
    "string": "object",
    "date": "object",
    "int": "int32",
    "bigint": "int64",
    "double": "float64",
    "boolean": "bool",
}
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s*$")

Fields = Sequence[tuple[str, str]]


def ddl(fields: Fields) -> str:
    """Render ``(name, type)`` pairs as a Spark DDL schema (``"sku string, qty double"``)."""
    return ", ".join(f"{name} {typ}" for name, typ in fields)


def ddl_fields(schema: str | Fields) -> list[tuple[str, str]]:
    """``(name, type)`` pairs of a flat Spark DDL schema (or the pairs themselves).

    Only flat types are accepted: string, date, int, bigint, double, boolean.

    Raises:
        ValueError: On a malformed field or an unsupported type.
    """
    if not isinstance(schema, str):
        return [(n, t.lower()) for n, t in schema]
    fields: list[tuple[str, str]] = []
    for part in schema.split(","):
        m = _FIELD.match(part)
        if m is None:
            raise ValueError(f"cannot parse DDL field {part!r}")
        name, typ = m.group(1), m.group(2).lower()
        if typ not in _NULLABLE_DTYPES:
            raise ValueError(f"unsupported DDL type {typ!r} for field {name!r}")
        fields.append((name, typ))
    return fields


def column_names(schema: str | Fields) -> list[str]:
    """Column names of a schema, in order (handy for ``select(*column_names(...))``)."""
    return [name for name, _ in ddl_fields(schema)]


def empty_frame(schema: str | Fields, *, nullable: bool = True) -> pd.DataFrame:
    """An empty frame with exactly the schema's columns and dtypes."""
    if nullable:
        return conform(pd.DataFrame(), schema)
    dtypes = _STRICT_DTYPES
    return pd.DataFrame({n: pd.Series(dtype=dtypes[t]) for n, t in ddl_fields(schema)})


def conform(df: pd.DataFrame, schema: str | Fields, *, nullable: bool = True) -> pd.DataFrame:
    """A new frame holding exactly the schema's columns, in order, with fitting dtypes.

    Args:
        df: Frame to conform (not modified).
        schema: Target DDL schema or its ``(name, type)`` pairs.
        nullable: ``True``: missing columns are added as nulls, values are coerced
            (strings, dates, nullable integers/booleans). ``False``: every column must be
            there and holds no nulls; numbers and booleans are cast to numpy dtypes.

    Returns:
        A new frame with a fresh 0..n-1 index.
    """
    fields = ddl_fields(schema)
    if not nullable:
        out = df.loc[:, [name for name, _ in fields]].copy()
        for name, typ in fields:
            if typ in ("double", "int", "bigint", "boolean"):
                out[name] = out[name].astype(_STRICT_DTYPES[typ])
        return out.reset_index(drop=True)
    cols: dict[str, pd.Series] = {}
    n = len(df)
    for name, typ in fields:
        col = (
            df[name].reset_index(drop=True)
            if name in df.columns
            else pd.Series([None] * n, dtype="object")
        )
        if typ == "string":
            col = pd.Series([None if is_null(v) else str(v) for v in col], dtype="object")
        elif typ == "date":
            col = pd.Series([to_date(v) for v in col], dtype="object")
        elif typ in ("int", "bigint"):
            col = pd.to_numeric(col, errors="coerce").round().astype(_NULLABLE_DTYPES[typ])
        elif typ == "boolean":
            col = col.astype("boolean")
        else:
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        cols[name] = col
    return pd.DataFrame(cols, index=pd.RangeIndex(n))


def is_null(value: Any) -> bool:
    """None, NaT, NA or a float NaN."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def to_date(value: Any) -> dt.date | None:
    """A ``datetime.date`` from a date, datetime, Timestamp, numpy datetime or string."""
    if is_null(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def frame_from_records(records: Sequence[Mapping[str, Any]], schema: str | Fields) -> pd.DataFrame:
    """A schema-conforming (nullable) frame from a list of dict rows."""
    if not records:
        return empty_frame(schema)
    return conform(pd.DataFrame.from_records(list(records)), schema)


def for_each_group(
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    fields: str | Fields,
    *,
    keys: Sequence[str],
    drop: Sequence[str] = (),
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Lift a one-group function (all rows of one ``keys`` value) to a frame of many groups.

    For ``applyInPandas`` on a key coarser than the group (a hash bucket): each call pays
    PySpark's per-call cost (Arrow stream, pandas conversion both ways, ~10 ms) once for many
    groups. A null key value is a group of its own, as it is for Spark's ``groupBy``.

    Args:
        fn: ``fn(pdf) -> pdf`` for the rows of ONE group.
        fields: The output schema (for the empty result).
        keys: The group's key columns.
        drop: Columns to remove before ``fn`` sees a group (the bucket key).

    Returns:
        ``fn(pdf) -> pdf``: the outputs of ``fn`` per group, concatenated.
    """
    by = list(keys)

    def _each(pdf: pd.DataFrame) -> pd.DataFrame:
        if drop:
            pdf = pdf.drop(columns=[c for c in drop if c in pdf.columns])
        outs = [
            fn(one)
            for _, one in pdf.groupby(by if len(by) > 1 else by[0], sort=False, dropna=False)
        ]
        outs = [o for o in outs if len(o)]
        return pd.concat(outs, ignore_index=True) if outs else empty_frame(fields, nullable=False)

    return _each
