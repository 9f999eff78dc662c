"""Small helpers shared by the decision functions: DDL schemas as pandas frames, stable seeds.

Nothing here imports Spark: the decision functions must run (and be tested) in plain pandas
and inside a Python worker of ``applyInPandas``.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# pandas dtypes chosen so that Spark's Arrow conversion accepts them with nulls: nullable
# integer/boolean extension dtypes turn into proper nulls (a float NaN would, too, but an
# extension dtype keeps the intent visible); NaN in float64 becomes null.
_PANDAS_DTYPES: dict[str, str] = {
    "string": "object",
    "date": "object",
    "int": "Int32",
    "bigint": "Int64",
    "double": "float64",
    "boolean": "boolean",
}

_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s*$")


def schema_fields(ddl: str) -> list[tuple[str, str]]:
    """Parse a flat Spark DDL schema string into ``(name, type)`` pairs.

    Only the flat types used by the decision schemas are accepted
    (string, date, int, bigint, double, boolean).

    Args:
        ddl: A schema such as ``"sku string, qty double"``.

    Returns:
        The fields in declaration order, types lower-cased.

    Raises:
        ValueError: On a malformed field or an unsupported type.
    """
    fields: list[tuple[str, str]] = []
    for part in ddl.split(","):
        m = _FIELD.match(part)
        if m is None:
            raise ValueError(f"cannot parse DDL field {part!r}")
        name, typ = m.group(1), m.group(2).lower()
        if typ not in _PANDAS_DTYPES:
            raise ValueError(f"unsupported DDL type {typ!r} for field {name!r}")
        fields.append((name, typ))
    return fields


def column_names(ddl: str) -> list[str]:
    """Column names of a DDL schema, in order (handy for ``select(*column_names(...))``)."""
    return [name for name, _ in schema_fields(ddl)]


def empty_frame(ddl: str) -> pd.DataFrame:
    """An empty frame with exactly the schema's columns and dtypes."""
    return conform(pd.DataFrame(), ddl)


def conform(df: pd.DataFrame, ddl: str) -> pd.DataFrame:
    """Return a new frame holding exactly the schema's columns, in order, with fitting dtypes.

    Missing columns are added as nulls; extra columns are dropped.

    Args:
        df: Frame to conform (not modified).
        ddl: Target Spark DDL schema.

    Returns:
        A new frame.
    """
    out: dict[str, pd.Series] = {}
    n = len(df)
    for name, typ in schema_fields(ddl):
        dtype = _PANDAS_DTYPES[typ]
        if name in df.columns:
            col = df[name].reset_index(drop=True)
        else:
            col = pd.Series([None] * n, dtype="object")
        if typ == "string":
            col = pd.Series([None if _is_null(v) else str(v) for v in col], dtype="object")
        elif typ == "date":
            col = pd.Series([_to_date(v) for v in col], dtype="object")
        elif typ in ("int", "bigint"):
            col = pd.to_numeric(col, errors="coerce").round().astype(dtype)
        elif typ == "boolean":
            col = col.astype("boolean")
        else:
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        out[name] = col
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def frame_from_records(records: Sequence[Mapping[str, Any]], ddl: str) -> pd.DataFrame:
    """Build a schema-conforming frame from a list of dict rows."""
    if not records:
        return empty_frame(ddl)
    return conform(pd.DataFrame.from_records(list(records)), ddl)


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def _to_date(value: Any) -> dt.date | None:
    if _is_null(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return pd.Timestamp(value).date()


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (``hash()`` of a str is salted per process)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))
