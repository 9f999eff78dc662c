"""Reading raw landing files with explicit all-string schemas."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField

from shikong.ingest.validate import CORRUPT, SOURCE_FILE
from shikong.schemas import LandingSource


def read_landing(spark: SparkSession, landing_dir: str, source: LandingSource) -> DataFrame:
    """Read every file of one landing source.

    Values stay strings (parsing is validation's job); a line that does not fit the
    schema keeps its text in ``_corrupt_record``. ``_source_file`` is the path relative
    to the landing folder, so lineage survives moving the lakehouse.

    Args:
        spark: Session.
        landing_dir: Landing root.
        source: Which source.

    Returns:
        Raw rows with ``_source_file`` and ``_corrupt_record``.
    """
    schema = source.raw_schema.add(StructField(CORRUPT, StringType(), True))
    folder = f"{landing_dir.rstrip('/')}/{source.folder}"
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


def landing_sources(
    spark: SparkSession, landing_dir: str, sources: tuple[LandingSource, ...]
) -> list[LandingSource]:
    """The sources whose landing folder exists (Hadoop FS, so any scheme works)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "needs a classic (JVM) SparkSession"
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    present = []
    for source in sources:
        path = jvm.org.apache.hadoop.fs.Path(f"{landing_dir.rstrip('/')}/{source.folder}")
        if path.getFileSystem(hconf).exists(path):
            present.append(source)
    return present
