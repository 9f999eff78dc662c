"""Erasure outside the Delta tables (``shikong forget``): landing files and Parquet shards.

A customer's raw rows live on in the landing files ingest re-reads every run (were they
kept, the next ingest would bring the customer back) and in the training and serving
shards. Both are rewritten here without the rows that hold one of the erased ids:

* text files (CSV, JSON lines): whole records are dropped. A CSV record may span lines
  inside a quoted field, so records are split where the count of ``"`` is even (RFC 4180
  escapes a quote by doubling it, which keeps the parity).
* Parquet files: rows whose id column holds an erased id are dropped, file by file, so a
  shard keeps its name and its rank.

An id matches as a whole token, case-insensitively (``C0000012`` is not ``C00000123``).
A rewritten file replaces the old one atomically on local storage (:func:`fs.open_output`),
and Hadoop's ``.crc`` sidecar of the old content is removed (Spark would otherwise refuse
the new bytes).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shikong.io import fs

#: Suffixes of the text files a landing folder holds.
TEXT_SUFFIXES = (".csv", ".json", ".jsonl", ".txt")


def token_pattern(ids: Sequence[str]) -> str:
    """A (Java- and Python-compatible) regex matching any of ``ids`` as a whole token."""
    if not ids:
        raise ValueError("no ids to match")
    alternatives = "|".join(re.escape(i) for i in sorted(set(ids), key=len, reverse=True))
    return rf"(?i)(?<![A-Za-z0-9_-])(?:{alternatives})(?![A-Za-z0-9_-])"


def read_ids(uri: str) -> list[str]:
    """Ids from a file, one per line (blank lines and ``#`` comments ignored)."""
    lines = (ln.strip() for ln in fs.read_text(uri).splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def files_under(uri: str) -> list[str]:
    """Every file under the folder ``uri`` (recursive, sorted URIs); [] if there is none."""
    filesystem, path = fs.filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted(
        fs.join(uri, posixpath.relpath(i.path, path)) for i in infos if i.type == pafs.FileType.File
    )


def _lines(text: str) -> list[str]:
    # Only "\n" ends a line (as Spark's line reader): str.splitlines would also split on
    # U+2028, \x1c or \x85 inside a value. "\r\n" keeps its "\r" on the line.
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _records(text: str, *, csv: bool = True) -> list[str]:
    """The records of a text file: its lines (JSON lines), or for CSV its lines joined
    while a quoted field is open (RFC 4180 doubles a quote inside one, keeping the parity;
    a JSON value escapes it as \\", which would break the parity, hence one line each)."""
    if not csv:
        return _lines(text)
    records, pending = [], ""
    for line in _lines(text):
        pending += line
        if pending.count('"') % 2 == 0:
            records.append(pending)
            pending = ""
    if pending:
        records.append(pending)
    return records


def _drop_crc(uri: str) -> None:
    head, name = posixpath.split(uri)
    fs.delete(fs.join(head, f".{name}.crc") if head else f".{name}.crc")


def drop_text_records(uri: str, ids: Sequence[str]) -> int:
    """Rewrite the text file ``uri`` without the records holding one of ``ids``.

    Returns:
        Records removed (0: the file is left untouched).
    """
    pattern = re.compile(token_pattern(ids))
    records = _records(fs.read_text(uri), csv=uri.endswith(".csv"))
    kept = [r for r in records if not pattern.search(r)]
    if len(kept) == len(records):
        return 0
    fs.write_text(uri, "".join(kept))
    _drop_crc(uri)
    return len(records) - len(kept)


def drop_parquet_rows(uri: str, column: str, ids: Sequence[str]) -> int:
    """Rewrite the Parquet file ``uri`` without the rows whose ``column`` is one of ``ids``.

    Returns:
        Rows removed (0: the file has no such column or row and is left untouched).
    """
    with fs.open_input(uri) as f:
        table = pq.read_table(f)
    if column not in table.column_names:
        return 0
    values = pc.utf8_lower(table.column(column).cast(pa.string()))
    hit = pc.fill_null(
        pc.is_in(values, value_set=pa.array(sorted({i.lower() for i in ids}))), False
    )
    removed = int(pc.sum(hit).as_py() or 0)
    if removed:
        with fs.open_output(uri) as f:
            pq.write_table(table.filter(pc.invert(hit)), f)
        _drop_crc(uri)
    return removed


def erase_from_files(uri: str, *, column: str, ids: Sequence[str]) -> dict[str, int]:
    """Drop the erased ids from every text and Parquet file under the folder ``uri``.

    Returns:
        Records or rows removed per rewritten file (relative to ``uri``).
    """
    removed = {}
    for f in files_under(uri):
        name = posixpath.basename(f)
        if name.startswith((".", "_")):
            continue
        if name.endswith(".parquet"):
            n = drop_parquet_rows(f, column, ids)
        elif name.endswith(TEXT_SUFFIXES):
            n = drop_text_records(f, ids)
        else:
            continue
        if n:
            removed[posixpath.relpath(f, uri)] = n
    return removed
