"""Idempotent Delta writes (MERGE, scoped replace, overwrite) and lakehouse listing."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

from shikong.io.fs import spark_uri

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    """What one write did, from Delta's own operation metrics."""

    path: str
    version: int
    operation: str
    rows_inserted: int
    rows_updated: int
    rows_deleted: int = 0


#: Delta's session settings of an idempotent write (``txnAppId`` / ``txnVersion``).
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


@contextlib.contextmanager
def idempotent_writes(spark: SparkSession, app_id: str | None, version: int) -> Iterator[None]:
    """Make each Delta write inside the block idempotent for ``(app_id, version)``.

    Delta records the pair in the transaction of every table written (``SetTransaction``)
    and skips any later write, MERGE included, to a table that already recorded
    ``app_id`` with a version at least as large: a streaming micro-batch replayed after a
    crash (same query id, same batch id) commits nothing twice. Write each table at most
    once inside one block (a second write to it would be skipped too). ``app_id=None``:
    nothing changes. The session settings are restored when the block ends.
    """
    if app_id is None:
        yield
        return
    previous = {k: spark.conf.get(k, None) for k in (TXN_APP_ID, TXN_VERSION)}
    spark.conf.set(TXN_APP_ID, app_id)
    spark.conf.set(TXN_VERSION, str(int(version)))
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table.

    SQL rather than ``DeltaTable.isDeltaTable``: the same answer, and it runs under Spark
    Connect without Delta's Connect server plugin (``overwrite`` asks it on every write).
    """
    quoted = spark_uri(path).replace("`", "``")
    try:
        spark.sql(f"DESCRIBE DETAIL delta.`{quoted}`").collect()
    except AnalysisException as exc:
        if exc.getCondition() == "DELTA_MISSING_DELTA_TABLE":
            return False
        raise
    return True


def _created(writer: DataFrameWriter, stats_columns: Sequence[str] | None) -> DataFrameWriter:
    """The writer that creates a table, with the columns its log keeps statistics of.

    ``None``: Delta's default (the first 32 columns). Otherwise only these: the catalogue
    leaves out ids and exact points, which would otherwise sit in the transaction log as
    a file's min/max for 30 days (``delta.logRetentionDuration``) after an erasure.
    """
    if stats_columns is None:
        return writer
    if not stats_columns:
        return writer.option("delta.dataSkippingNumIndexedCols", "0")
    return writer.option("delta.dataSkippingStatsColumns", ",".join(stats_columns))


def restrict_stats(spark: SparkSession, path: str, stats_columns: Sequence[str]) -> bool:
    """Give an existing table the statistics columns a new one gets (see :func:`_created`);
    whether it changed. Later commits then keep no min/max of the other columns."""
    quoted = spark_uri(path).replace("`", "``")
    props = spark.sql(f"DESCRIBE DETAIL delta.`{quoted}`").collect()[0]["properties"] or {}
    key = "delta.dataSkippingStatsColumns"
    if key in props or "delta.dataSkippingNumIndexedCols" in props:
        return False
    if stats_columns:
        value = ",".join(stats_columns)
    else:
        key, value = "delta.dataSkippingNumIndexedCols", "0"
    spark.sql(f"ALTER TABLE delta.`{quoted}` SET TBLPROPERTIES ('{key}' = '{value}')")
    return True


def _latest_history(spark: SparkSession, path: str) -> DataFrame:
    # SQL rather than DeltaTable.history: the same rows, and it runs under Spark Connect
    # without Delta's Connect server plugin (which DeltaTable needs there).
    # Delta takes only absolute paths as SQL identifiers; `./lakehouse/...` (the embedded
    # default) would read as a missing table.
    quoted = spark_uri(path).replace("`", "``")
    return spark.sql(f"DESCRIBE HISTORY delta.`{quoted}` LIMIT 1")


def _last_commit(spark: SparkSession, path: str, previous_version: int = -1) -> WriteResult:
    row = _latest_history(spark, path).collect()[0]
    if int(row["version"]) == previous_version:
        # Delta skips the commit of a MERGE that changes nothing.
        return WriteResult(path, previous_version, "NOOP", 0, 0)
    metrics = row["operationMetrics"] or {}
    inserted = int(metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0)))
    updated = int(metrics.get("numTargetRowsUpdated", metrics.get("numUpdatedRows", 0)))
    deleted = int(metrics.get("numTargetRowsDeleted", metrics.get("numDeletedRows", 0)))
    return WriteResult(path, int(row["version"]), str(row["operation"]), inserted, updated, deleted)


def version(spark: SparkSession, path: str) -> int:
    """The latest version of the Delta table at ``path``."""
    return int(_latest_history(spark, path).select("version").collect()[0][0])


def new_columns(spark: SparkSession, df: DataFrame, path: str) -> list[str]:
    """The columns of ``df`` that the existing Delta table at ``path`` does not have yet
    (a column added to a table after it was first written), in ``df``'s order."""
    have = set(spark.read.format("delta").load(path).columns)
    return [c for c in df.columns if c not in have]


def merge_into(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    keys: Sequence[str],
    partition_by: Sequence[str] = (),
    update_matched: bool = True,
    sequence_by: str | None = None,
    lineage: Sequence[str] = (),
    stats_columns: Sequence[str] | None = None,
) -> WriteResult:
    """Upsert ``df`` into the Delta table at ``path`` on ``keys`` (create it if missing).

    Rows match on the business keys alone. The partition columns are deliberately not part
    of the condition, not even as a pruning predicate: a row whose partition value changes
    upstream (an order's timestamp corrected into another month) must find its old version
    wherever it lies and be updated there, never inserted a second time.

    Re-running with the same rows changes no row: a matched row is rewritten only when a
    value other than its keys, sequence and lineage differs, and nothing is inserted twice.

    A column of ``df`` the table does not have yet is added to it (Delta schema
    evolution), null in the rows already there; a matched row then counts as changed
    where ``df`` has a value for it.

    Args:
        spark: Session.
        df: Source rows, unique on ``keys``.
        path: Target table path.
        keys: Business key columns.
        partition_by: Partition columns used when the table is created.
        update_matched: Update rows whose key exists and whose values changed; when
            ``False`` the merge is insert-only (immutable facts such as events).
        sequence_by: Column ordering the versions of a row: a matched row is updated only
            from a strictly newer value (a target row without one counts as oldest), so an
            older version never overwrites a newer one.
        lineage: Columns saying where and when a row was written: updated with a real
            change, never a change by themselves.

    Returns:
        The commit's version and row counts.
    """
    if not table_exists(spark, path):
        writer = _created(df.write.format("delta").mode("errorifexists"), stats_columns)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)
        result = _last_commit(spark, path)
        log.info("created %s (%d rows)", path, result.rows_inserted)
        return result

    before = version(spark, path)
    added = new_columns(spark, df, path)
    condition = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in keys)
    merge = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), condition)
    if added:
        log.info("adding columns %s to %s", added, path)
        merge = merge.withSchemaEvolution()
    if update_matched:
        unchanged = {*keys, *lineage, *([sequence_by] if sequence_by else [])}
        value_cols = [c for c in df.columns if c not in unchanged]
        changed = " OR ".join(
            f"s.`{c}` IS NOT NULL" if c in added else f"NOT (t.`{c}` <=> s.`{c}`)"
            for c in value_cols
        )
        if changed and sequence_by:
            seq = f"`{sequence_by}`"
            newer = f"(s.{seq} > t.{seq} OR (t.{seq} IS NULL AND s.{seq} IS NOT NULL))"
            changed = f"{newer} AND ({changed})"
        if changed:
            merge = merge.whenMatchedUpdateAll(condition=changed)
    merge.whenNotMatchedInsertAll().execute()
    result = _last_commit(spark, path, before)
    log.info(
        "merged into %s: +%d rows, %d updated", path, result.rows_inserted, result.rows_updated
    )
    return result


def replace_where(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    where: str,
    partition_by: Sequence[str] = (),
    stats_columns: Sequence[str] | None = None,
) -> WriteResult:
    """Replace the rows matching ``where`` by ``df`` in one commit (create the table if missing).

    Every old row inside the scope goes, including those of keys or partitions that ``df``
    no longer has (a series that dropped out, a day whose orders vanished); rows outside it
    stay. Delta refuses the commit if a row of ``df`` lies outside the scope. A column of
    ``df`` the table does not have yet is added to it (null in the rows outside the scope).

    Args:
        spark: Session.
        df: The complete new content of the scope.
        path: Target table path.
        where: SQL predicate of the scope (``run_date = DATE'2024-05-01'``).
        partition_by: Partition columns (the table's layout).

    Returns:
        The commit's version and row counts (``rows_deleted``: old rows of the scope).
    """
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", where)
    if not table_exists(spark, path):
        writer = _created(writer, stats_columns)
    elif added := new_columns(spark, df, path):
        log.info("adding columns %s to %s", added, path)
        writer = writer.option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    result = _last_commit(spark, path)
    log.info(
        "replaced %s in %s: %d rows written, %d removed",
        where,
        path,
        result.rows_inserted,
        result.rows_deleted,
    )
    return result


def overwrite(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    partition_by: Sequence[str] = (),
    stats_columns: Sequence[str] | None = None,
) -> WriteResult:
    """Replace the whole table (derived tables their stage recomputes whole each run).

    The partitioning is restated on every write: with ``overwriteSchema`` Delta takes it
    from the writer, and a writer without ``partitionBy`` would drop it.
    """
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if not table_exists(spark, path):
        writer = _created(writer, stats_columns)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return _last_commit(spark, path)


def delete_where_in(spark: SparkSession, path: str, column: str, values: Sequence[str]) -> int:
    """Delete the rows whose ``column`` is one of ``values`` (one commit); rows deleted."""
    before = version(spark, path)
    DeltaTable.forPath(spark, path).delete(F.col(column).isin(list(values)))
    return _last_commit(spark, path, before).rows_deleted


def delete_matching(spark: SparkSession, path: str, source: DataFrame, condition: str) -> int:
    """Delete the rows that match a row of ``source`` on ``condition`` (``t.`` the table,
    ``s.`` the source); rows deleted. One commit, a MERGE whose only action is a delete.

    The values to delete travel as data, never as SQL text, so they appear in no query
    plan, error message or UI. The deleted rows' files stay until :func:`purge_and_vacuum`.
    """
    before = version(spark, path)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), condition)
        .whenMatchedDelete()
        .execute()
    )
    return _last_commit(spark, path, before).rows_deleted


def clear_where(spark: SparkSession, path: str, column: str, condition: str) -> int:
    """Set ``column`` to NULL where the SQL ``condition`` holds (one commit); rows changed."""
    before = version(spark, path)
    quoted = spark_uri(path).replace("`", "``")
    spark.sql(f"UPDATE delta.`{quoted}` SET `{column}` = NULL WHERE {condition}")
    return _last_commit(spark, path, before).rows_updated


def purge_and_vacuum(spark: SparkSession, path: str, *, retain_hours: int) -> int:
    """Rewrite the files that carry deletion vectors, then VACUUM; data files removed.

    A DELETE with deletion vectors only marks rows: ``REORG ... APPLY (PURGE)`` rewrites
    those files without them. VACUUM then removes every file no longer referenced and
    older than ``retain_hours``; below Delta's 168-hour safety check the check is lifted
    for this VACUUM only (it protects readers of older versions, which an erasure ends).
    """
    quoted = spark_uri(path).replace("`", "``")
    before = len(data_files(path))
    spark.sql(f"REORG TABLE delta.`{quoted}` APPLY (PURGE)")
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    if retain_hours < 168:
        spark.conf.set(check, "false")
    try:
        out = spark.sql(f"VACUUM delta.`{quoted}` RETAIN {int(retain_hours)} HOURS")
        out.collect()
    finally:
        spark.conf.set(check, previous or "true")
    return before - len(data_files(path))


def data_files(path: str) -> list[str]:
    """The table's data files on storage (Parquet and deletion vectors, not the log)."""
    from shikong.io.erasure import files_under

    return [
        f for f in files_under(path) if "/_delta_log/" not in f and f.endswith((".parquet", ".bin"))
    ]


@dataclass(frozen=True)
class TableInfo:
    """One lakehouse table."""

    name: str
    path: str
    rows: int
    version: int


def list_tables(spark: SparkSession, lakehouse: str) -> list[TableInfo]:
    """List the Delta tables at ``<lakehouse>/<layer>/<name>`` with row counts and versions.

    Folders are listed through :mod:`shikong.io.fs` (local, ``s3a://``... without a JVM
    handle), tables are recognised and read by Delta itself.
    """
    from shikong.io import fs

    tables: list[TableInfo] = []
    for layer in fs.listdir(lakehouse):
        for name in fs.listdir(fs.join(lakehouse, layer)):
            path = fs.join(lakehouse, layer, name)
            if not fs.exists(fs.join(path, "_delta_log")):
                continue
            latest = version(spark, path)
            rows = spark.read.format("delta").load(path).count()
            tables.append(TableInfo(f"{layer}.{name}", fs.spark_uri(path), rows, latest))
    return tables
