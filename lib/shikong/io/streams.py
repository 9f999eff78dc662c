"""Structured Streaming over the landing folder: which files are new, exactly once.

One file-source stream per landing source watches its folder (``binaryFile``, the path
only: the contents are never read by the stream, columns are pruned). Each micro-batch is
the list of files that arrived since the last committed batch, and a ``foreachBatch``
callback ingests them with the batch reader (:func:`shikong.io.landing.read_landing`),
so a file is read, checked (its header too) and reconciled exactly as batch ingest
reads it. The stream's checkpoint (``<checkpoint>/{metadata,offsets,commits,sources}``)
records which files each batch holds: a batch that did not commit is replayed with the
same files and the same batch id after a crash.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from shikong.io import fs
from shikong.io.landing import EXTENSIONS
from shikong.schemas import LandingSource

log = logging.getLogger(__name__)

#: A file's modification time never makes the stream skip it: Spark's file source
#: ignores files older than its newest file by more than ``maxFileAge`` (7 days by
#: default), and a file copied with its old time (``cp -p``, a re-delivery) must load.
MAX_FILE_AGE = "36500d"

#: The ``binaryFile`` source's schema (a stream must be given it).
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"

#: ``(relative files, stream id, batch id)`` -> ingest them.
BatchHandler = Callable[[list[str], str, int], None]


def landing_file_stream(spark: SparkSession, landing_dir: str, source: LandingSource) -> DataFrame:
    """A streaming frame of the source's new landing files: one row (``path``) per file.

    The same files :func:`shikong.io.landing.landing_files` lists: the folder's own files
    with the source format's extension; hidden (``.``) and metadata (``_``) files and the
    temporary files of a writer (``x.csv.tmp123``) are not.
    """
    folder = fs.join(landing_dir, source.folder)
    return (
        spark.readStream.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("pathGlobFilter", f"*{EXTENSIONS[source.fmt]}")
        .option("maxFileAge", MAX_FILE_AGE)
        .load(fs.spark_uri(folder))
        .select("path")
    )


def stream_id(checkpoint: str) -> str:
    """The id of the query whose checkpoint is ``checkpoint`` (stable across restarts)."""
    return str(json.loads(fs.read_text(fs.join(checkpoint, "metadata")))["id"])


def relative_file(path: str, folder: str) -> str:
    """``folder/name`` of a file the stream reports (Hadoop path string, not encoded)."""
    return f"{folder}/{posixpath.basename(path)}"


def logged_files(checkpoint: str, batch_id: int) -> list[str] | None:
    """Every file of a batch as the file source logged it when it planned the batch, empty
    files included (a scan splits a file by its bytes: one of 0 bytes yields no row, so
    the batch's frame never shows it); ``None`` when the log cannot be read.

    Spark's ``FileStreamSourceLog``: ``sources/0/<batch>`` (or every
    ``spark.sql.streaming.fileSource.log.compactInterval`` batches ``<batch>.compact``,
    all batches so far), a ``v1`` line, then one JSON entry per file with its URI.
    """
    base = fs.join(checkpoint, "sources", "0")
    for name in (str(batch_id), f"{batch_id}.compact"):
        uri = fs.join(base, name)
        if not fs.is_file(uri):
            continue
        lines = fs.read_text(uri).splitlines()
        if not lines or lines[0] != "v1":
            return None
        entries = [json.loads(line) for line in lines[1:] if line.strip()]
        return [unquote(e["path"]) for e in entries if e.get("batchId") == batch_id]
    return None


def drain(
    files: DataFrame,
    *,
    source: LandingSource,
    checkpoint: str,
    on_batch: BatchHandler,
) -> int:
    """Ingest every file not yet committed to ``checkpoint`` (``availableNow``), then stop.

    Args:
        files: :func:`landing_file_stream` of ``source``.
        source: Which landing source.
        checkpoint: The query's checkpoint location.
        on_batch: Called once per micro-batch with the batch's files (relative to the
            landing folder, sorted), the query id and the batch id; a batch it raises in
            is not committed (and the error ends the query).

    Returns:
        The micro-batches that held files.

    Raises:
        StreamingQueryException: When a batch failed.
    """
    ran: list[int] = []

    def batch(df: DataFrame, batch_id: int) -> None:
        paths = {relative_file(r["path"], source.folder) for r in df.collect()}
        # A scan returns no row of an empty file; the source's log lists every file.
        logged = logged_files(checkpoint, int(batch_id))
        if logged is None:
            log.warning(
                "%s: batch %d not in the source log; empty files not logged", source.name, batch_id
            )
        rel = sorted(paths | {relative_file(p, source.folder) for p in logged or ()})
        if not rel:
            return
        on_batch(rel, stream_id(checkpoint), int(batch_id))
        ran.append(int(batch_id))

    query = (
        files.writeStream.foreachBatch(batch)
        .queryName(f"shikong-ingest-{source.name}")
        .option("checkpointLocation", fs.spark_uri(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    await_query(query)
    return len(ran)


def await_query(query: StreamingQuery) -> None:
    """Wait for ``query`` to end (an ``availableNow`` query ends by itself).

    Raises:
        StreamingQueryException: When a batch failed.
    """
    query.awaitTermination()
