"""Reading raw landing files (generated or upstream) and the Olist files, all as strings.

Values stay strings: parsing is validation's job, so a malformed value is quarantined with
a reason instead of silently becoming null. ``_source_file`` is the path relative to the
landing folder, so lineage survives moving the lakehouse.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField

from shikong.io import fs
from shikong.schemas import CORRUPT, SOURCE_FILE, LandingSource

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


def read_landing(spark: SparkSession, landing_dir: str, source: LandingSource) -> DataFrame:
    """Read every file of one landing source.

    A line that does not fit the schema keeps its text in ``_corrupt_record``.

    Args:
        spark: Session.
        landing_dir: Landing root URI.
        source: Which source.

    Returns:
        Raw rows with ``_source_file`` and ``_corrupt_record``.
    """
    schema = source.raw_schema.add(StructField(CORRUPT, StringType(), True))
    folder = fs.join(landing_dir, source.folder)
    reader = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
    )
    if source.fmt == "csv":
        df = (
            reader.option("header", "true")
            .option("pathGlobFilter", "*.csv")
            .option("enforceSchema", "false")
            .csv(folder)
        )
    elif source.fmt == "json":
        df = reader.option("pathGlobFilter", "*.jsonl").json(folder)
    else:  # pragma: no cover - guarded by schemas
        raise ValueError(f"unknown landing format {source.fmt!r}")
    rel = F.regexp_extract(F.col("_metadata.file_path"), rf"/({source.folder}/[^/]+)$", 1)
    return df.withColumn(SOURCE_FILE, rel)


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
    if not fs.exists(folder):
        raise FileNotFoundError(f"{folder}: no such folder (--path must hold the Olist CSVs)")
    missing = [n for n in OLIST_FILES if not fs.is_file(fs.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"{folder}: missing Olist file(s) {', '.join(missing)}")
    return {name: read_olist_csv(spark, folder, name) for name in OLIST_FILES}
