"""Reading raw landing files (generated or upstream) and the Olist files, all as strings.

Values stay strings: parsing is validation's job, so a malformed value is quarantined with
a reason instead of silently becoming null. ``_source_file`` is the path relative to the
landing folder, so lineage survives moving the lakehouse.

A landing CSV file whose header is not the contract's (a column renamed, missing, extra or
moved) cannot be read column by column without shifting values into the wrong columns, so
its header is checked here, before Spark reads it, and such a file is read as text
instead: one raw row per data line, the line in ``_corrupt_record`` and ``_bad_header``
set, which validation quarantines whole as ``BAD_HEADER`` while the other files load.
A contract's optional trailing columns (``LandingSource.optional``) may be absent from a
header: its files are read with the columns they have, and the others are null.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField

from shikong.io import fs
from shikong.schemas import BAD_HEADER_FLAG, CORRUPT, SOURCE_FILE, LandingSource

log = logging.getLogger(__name__)

#: The Olist files the adapter maps (``olist_*`` names as Kaggle ships them are accepted
#: under these shorter names, which is how ``shared/data/olist_sample`` holds them).
OLIST_FILES = (
    "customers.csv",
    "orders.csv",
    "order_items.csv",
    "products.csv",
    "olist_sellers_dataset.csv",
    "product_category_name_translation.csv",
)


#: File name extension of each landing format.
EXTENSIONS = {"csv": ".csv", "json": ".jsonl"}
#: How much of a CSV file is read to find its header line (no contract header is longer).
_HEADER_BYTES = 64 * 1024
#: A line of nothing but whitespace or control characters is no record: Spark's CSV and
#: JSON readers skip it (Scala's ``trim``: every character up to U+0020).
_BLANK_LINE = r"^[\x00-\x20]*$"
#: Line breaks, as Spark's readers split lines.
_LINE_BREAK = r"\r\n|\r|\n"


@dataclass(frozen=True)
class LandingRead:
    """One landing source as read.

    Attributes:
        rows: Raw rows (all strings) with ``_source_file`` and ``_corrupt_record``; CSV
            sources also carry ``_bad_header``.
        files: Every file read, relative to the landing folder, including files that hold
            no record (empty, or a header only), so that they are accounted for too.
        bad_header: The CSV files whose header is not the contract's.
    """

    rows: DataFrame
    files: tuple[str, ...]
    bad_header: tuple[str, ...] = ()


def landing_files(landing_dir: str, source: LandingSource) -> list[str]:
    """The files of one landing source, relative to the landing folder, sorted.

    The files Spark reads from a folder: the format's extension, no hidden (``.``) or
    metadata (``_``) files.
    """
    folder = fs.join(landing_dir, source.folder)
    ext = EXTENSIONS[source.fmt]
    return [
        f"{source.folder}/{name}"
        for name in fs.listdir(folder)
        if name.endswith(ext)
        and not name.startswith(("_", "."))
        and fs.is_file(fs.join(folder, name))
    ]


def csv_header(uri: str) -> list[str] | None:
    """The column names on a CSV file's header line; ``None`` if the file has no line.

    The header is the first line that is not blank (Spark skips blank lines before it
    too), after a UTF-8 byte-order mark; names are parsed as CSV (quotes allowed).
    """
    with fs.open_input(uri) as f:
        head = f.read(_HEADER_BYTES).decode("utf-8", errors="replace").removeprefix("\ufeff")
    for line in re.split(_LINE_BREAK, head):
        if not re.match(_BLANK_LINE, line):
            return next(csv.reader([line]))
    return None


def _glob_escaped(uri: str) -> str:
    # Spark expands glob characters in paths: a file named "x[1].csv" must be read as such.
    return re.sub(r"([\\{}\[\]*?])", r"\\\1", uri)


def _source_file(folder: str) -> Column:
    """``folder/name`` of each row's file; ``_metadata.file_path`` is a percent-encoded URI
    (a space is ``%20``), and a literal ``+`` must stay one through the decoding."""
    path = F.url_decode(F.regexp_replace(F.col("_metadata.file_path"), r"\+", "%2B"))
    return F.regexp_extract(path, rf"/({re.escape(folder)}/[^/]+)$", 1).alias(SOURCE_FILE)


def _bad_header_rows(
    spark: SparkSession, landing_dir: str, source: LandingSource, files: list[str]
) -> DataFrame:
    """One raw row per data line of files with a bad header: all columns null, the line in
    ``_corrupt_record``. Read whole (one row per file) so the header is dropped by its
    position, whatever it says."""
    text = spark.read.text(
        [_glob_escaped(fs.join(landing_dir, f)) for f in files], wholetext=True
    ).select(F.regexp_replace("value", "^\ufeff", "").alias("value"), _source_file(source.folder))
    records = F.filter(F.split(F.col("value"), _LINE_BREAK), lambda line: ~line.rlike(_BLANK_LINE))
    lines = text.select(
        F.explode(F.slice(records, 2, F.greatest(F.size(records) - 1, F.lit(0)))).alias(CORRUPT),
        SOURCE_FILE,
    )
    return lines.select(
        *[F.lit(None).cast("string").alias(c) for c in source.all_columns],
        CORRUPT,
        SOURCE_FILE,
        F.lit(True).alias(BAD_HEADER_FLAG),
    )


def read_landing(
    spark: SparkSession,
    landing_dir: str,
    source: LandingSource,
    files: Sequence[str] | None = None,
) -> LandingRead:
    """Read every file of one landing source (or the given ones).

    A line that does not fit the schema keeps its text in ``_corrupt_record``. A CSV file
    whose header is not one the contract accepts (:attr:`LandingSource.headers`) is not
    parsed: its data lines come back with ``_bad_header`` set (see the module notes). The
    rows have every column of the contract; optional ones a file lacks are null.

    Args:
        spark: Session.
        landing_dir: Landing root URI.
        source: Which source.
        files: Only these files (``folder/name`` relative to the landing folder, as
            :func:`landing_files` lists them: a streaming micro-batch's new files);
            ``None``: every file of the source.

    Returns:
        The raw rows and the files read.
    """
    files = landing_files(landing_dir, source) if files is None else sorted(files)
    bad: list[str] = []
    # Files by the header they have (JSON lines: all the contract's columns, by name).
    by_header: dict[tuple[str, ...], list[str]] = {}
    for f in files:
        if source.fmt != "csv":
            by_header.setdefault(source.all_columns, []).append(f)
            continue
        names = csv_header(fs.join(landing_dir, f))
        if names is None:
            # No line at all: an empty file, no header to check and no record to lose.
            by_header.setdefault(source.columns, []).append(f)
        elif tuple(names) in source.headers:
            by_header.setdefault(tuple(names), []).append(f)
        else:
            log.warning(
                "%s: header %s is not %s; every record quarantined as BAD_HEADER",
                f,
                ",".join(names),
                " or ".join(",".join(h) for h in source.headers),
            )
            bad.append(f)
    parts = [
        _read_files(spark, landing_dir, source, columns, group)
        for columns, group in sorted(by_header.items())
    ]
    if not parts:
        schema = source.raw_schema().add(StructField(CORRUPT, StringType(), True))
        parts = [spark.createDataFrame([], schema).withColumn(SOURCE_FILE, F.lit(""))]
    df = reduce(DataFrame.unionByName, parts)
    if source.fmt == "csv":
        df = df.withColumn(BAD_HEADER_FLAG, F.lit(False).cast(BooleanType()))
        if bad:
            df = df.unionByName(_bad_header_rows(spark, landing_dir, source, bad))
    return LandingRead(df, tuple(files), tuple(bad))


def _read_files(
    spark: SparkSession,
    landing_dir: str,
    source: LandingSource,
    columns: tuple[str, ...],
    files: list[str],
) -> DataFrame:
    """The raw rows of files that have ``columns`` (their header), in every column of the
    contract (null where they have none) plus ``_corrupt_record`` and ``_source_file``."""
    schema = source.raw_schema(columns).add(StructField(CORRUPT, StringType(), True))
    reader = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
    )
    paths = [_glob_escaped(fs.join(landing_dir, f)) for f in files]
    if source.fmt == "csv":
        # The header was checked above; Spark only skips it.
        df = reader.option("header", "true").option("enforceSchema", "true").csv(paths)
    elif source.fmt == "json":
        df = reader.json(paths)
    else:  # pragma: no cover - guarded by schemas
        raise ValueError(f"unknown landing format {source.fmt!r}")
    absent = {c: F.lit(None).cast("string") for c in source.all_columns if c not in columns}
    # The file's path first: ``_metadata`` is a column of the scan itself.
    df = df.withColumn(SOURCE_FILE, _source_file(source.folder))
    return df.withColumns(absent).select(*source.all_columns, CORRUPT, SOURCE_FILE)


def landing_sources(landing_dir: str, sources: tuple[LandingSource, ...]) -> list[LandingSource]:
    """The sources whose landing folder holds at least one file of the source's format."""
    ext = {"csv": ".csv", "json": ".jsonl"}
    return [
        s
        for s in sources
        if any(n.endswith(ext[s.fmt]) for n in fs.listdir(fs.join(landing_dir, s.folder)))
    ]


def read_olist_csv(spark: SparkSession, folder: str, name: str) -> DataFrame:
    """One Olist CSV file as strings, with ``_source_file = olist/<name>``."""
    # Strings only: validation parses and reports, the reader must not guess.
    return (
        spark.read.option("header", "true")
        .option("inferSchema", "false")
        .option("multiLine", "false")
        .csv(fs.join(folder, name))
        .withColumn(SOURCE_FILE, F.lit(f"olist/{name}"))
    )


def read_olist(spark: SparkSession, folder: str) -> dict[str, DataFrame]:
    """Every Olist file the adapter needs, by file name.

    Raises:
        FileNotFoundError: Naming the folder and the missing files.
    """
    olist_files(folder)
    return {name: read_olist_csv(spark, folder, name) for name in OLIST_FILES}


def olist_files(folder: str) -> dict[str, int]:
    """The Olist files the adapter needs in ``folder``, with their sizes in bytes (no Spark).

    Raises:
        FileNotFoundError: Naming the folder and the missing files.
    """
    if not fs.exists(folder):
        raise FileNotFoundError(f"{folder}: no such folder (--path must hold the Olist CSVs)")
    missing = [n for n in OLIST_FILES if not fs.is_file(fs.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"{folder}: missing Olist file(s) {', '.join(missing)}")
    return {name: fs.size(fs.join(folder, name)) for name in OLIST_FILES}
