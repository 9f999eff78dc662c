"""The table catalogue: the only way to reach a lakehouse table.

The tables are declared in :mod:`shikong.io.tables` (re-exported here).
:class:`Catalog` binds them to one lakehouse URI and reads, writes and MERGEs through
:mod:`shikong.io.delta`, so stages never spell out a path, a key or a partition column; a
stage that replaces a scope states only the scope's values (``scope={"run_date": day}``).

A derived table never keeps a row its stage did not just recompute inside the scope it
recomputed: it is either replaced whole (the stage recomputes everything) or replaced over
its declared scope (the stage recomputes one run date, the last delivery days...). MERGE
is for tables that accumulate: bronze rows, logs, and the per-run history of the models.

Lakehouse locations are URIs (a plain path, ``file:``, ``s3a:``, ``abfss:``, ``dbfs:``,
``/Volumes/...``); Spark resolves them through Hadoop's filesystems.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from shikong.io import delta, fs
from shikong.io.tables import (
    NO_STATS_COLUMNS,
    PERSONAL_COLUMNS,
    RESTRICTED_LAYERS,
    RESTRICTED_LOCATIONS,
    TABLES,
    Protection,
    ScopeValue,
    Since,
    TableSpec,
    UnprotectedColumnError,
    WriteMode,
    check_published_columns,
    published,
    restricted,
    stats_columns,
)

__all__ = [
    "NO_STATS_COLUMNS",
    "PERSONAL_COLUMNS",
    "RESTRICTED_LAYERS",
    "RESTRICTED_LOCATIONS",
    "TABLES",
    "Catalog",
    "Protection",
    "ScopeValue",
    "Since",
    "TableSpec",
    "UnprotectedColumnError",
    "WriteMode",
    "check_published_columns",
    "published",
    "restricted",
    "scope_predicate",
    "spec",
    "stats_columns",
]


def spec(name: str | TableSpec) -> TableSpec:
    """The spec of a table by qualified name (``gold.hotspots``), or the spec itself.

    Raises:
        KeyError: Naming the table and the known ones.
    """
    if isinstance(name, TableSpec):
        return name
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise KeyError(f"{name!r} is not in the table catalogue (known: {known})") from None


@dataclass(frozen=True)
class Catalog:
    """The catalogue bound to one lakehouse.

    Attributes:
        lakehouse: Root URI of the lakehouse.
    """

    lakehouse: str

    def uri(self, table: str | TableSpec) -> str:
        """Location of a table: ``<lakehouse>/<layer>/<name>``."""
        t = spec(table)
        return fs.join(self.lakehouse, t.layer, t.name)

    def location(self, *parts: str) -> str:
        """A non-table location under the lakehouse (``ml/models``, ``report``...)."""
        return fs.join(self.lakehouse, *parts)

    def exists(self, spark: SparkSession, table: str | TableSpec) -> bool:
        """Whether the table has been written."""
        return delta.table_exists(spark, self.uri(table))

    def read(self, spark: SparkSession, table: str | TableSpec) -> DataFrame:
        """The current version of a table."""
        return spark.read.format("delta").load(self.uri(table))

    def read_if_exists(self, spark: SparkSession, table: str | TableSpec) -> DataFrame | None:
        """The table, or ``None`` when it has not been written yet."""
        return self.read(spark, table) if self.exists(spark, table) else None

    def write(
        self,
        spark: SparkSession,
        table: str | TableSpec,
        df: DataFrame,
        *,
        scope: Mapping[str, ScopeValue] | None = None,
    ) -> delta.WriteResult:
        """Write ``df`` with the table's declared :class:`WriteMode`.

        Args:
            spark: Session.
            table: Qualified name or spec.
            df: The new rows (all of them, or all of the scope's).
            scope: (REPLACE_SCOPE tables, required there and refused elsewhere) the scope
                the stage recomputed: a value or :class:`Since` bound for every ``scope_by``
                column. Rows of ``df`` outside it fail the write.

        Returns:
            Delta's own metrics of the commit.
        """
        t = spec(table)
        check_published_columns(t, df.columns)
        path = self.uri(t)
        stats = stats_columns(df, t.partition_by)
        if t.mode is WriteMode.REPLACE_SCOPE:
            if scope is None or set(scope) != set(t.scope_by):
                raise ValueError(
                    f"{t.qualified} replaces the scope a stage recomputed: give a value for "
                    f"each of {list(t.scope_by)}, got {sorted(scope or {})}"
                )
            return delta.replace_where(
                spark,
                df,
                path,
                where=scope_predicate(scope),
                partition_by=t.partition_by,
                stats_columns=stats,
            )
        if scope is not None:
            raise ValueError(f"{t.qualified} is written by {t.mode.value}: it takes no scope")
        if t.mode in (WriteMode.INSERT_ONLY, WriteMode.UPSERT):
            return delta.merge_into(
                spark,
                df,
                path,
                keys=t.keys,
                partition_by=t.partition_by,
                update_matched=t.mode is WriteMode.UPSERT,
                sequence_by=t.sequence_by,
                lineage=t.lineage,
                stats_columns=stats,
            )
        return delta.overwrite(spark, df, path, partition_by=t.partition_by, stats_columns=stats)

    def delete_runs(self, spark: SparkSession, table: str | TableSpec, runs: Iterable[str]) -> int:
        """Delete the rows of these runs from a table keyed by ``run_id``; rows deleted.

        Raises:
            ValueError: For a table whose keys do not include ``run_id``.
        """
        t = spec(table)
        if "run_id" not in t.keys:
            raise ValueError(f"{t.qualified}: not keyed by run_id")
        ids = sorted(set(runs))
        if not ids or not self.exists(spark, t):
            return 0
        return delta.delete_where_in(spark, self.uri(t), "run_id", ids)

    def version(self, spark: SparkSession, table: str | TableSpec) -> int:
        """The table's latest Delta version."""
        return delta.version(spark, self.uri(table))

    def list_tables(self, spark: SparkSession) -> list[delta.TableInfo]:
        """Every Delta table under the lakehouse, with rows and latest version."""
        return delta.list_tables(spark, self.lakehouse)


def _sql_literal(value: object) -> str:
    # datetime before date: a datetime is a date.
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int | float) and value == value:  # NaN matches nothing
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"a scope value is a date, number or string, got {value!r}")


def scope_predicate(scope: Mapping[str, ScopeValue]) -> str:
    """The SQL predicate of a scope (``run_date = DATE'2024-05-01'``), for ``replaceWhere``."""
    if not scope:
        raise ValueError("an empty scope: a table replaced whole is an OVERWRITE table")
    parts = []
    for column, value in sorted(scope.items()):
        op, bound = (">=", value.start) if isinstance(value, Since) else ("=", value)
        parts.append(f"`{column}` {op} {_sql_literal(bound)}")
    return " AND ".join(parts)
