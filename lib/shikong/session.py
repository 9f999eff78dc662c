"""The one place a SparkSession is built: Sedona registered, Delta enabled, Kryo on."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from shikong.config import AppConfig, ConfigError
from shikong.frames import is_classic

log = logging.getLogger(__name__)

SQL_EXTENSIONS = (
    "io.delta.sql.DeltaSparkSessionExtension",
    "org.apache.sedona.sql.SedonaSqlExtensions",
)
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
KRYO_SERIALIZER = "org.apache.spark.serializer.KryoSerializer"
SEDONA_KRYO_REGISTRATOR = "org.apache.sedona.core.serde.SedonaKryoRegistrator"

# Grouped pandas work runs one series per task; BLAS threads would oversubscribe the cores.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


#: Name prefixes of the jars without which no stage can run: Sedona (with its GeoTools
#: wrapper) and Delta.
REQUIRED_JARS = ("sedona-spark-shaded-", "geotools-wrapper-", "delta-spark_", "delta-storage-")


def _jars_in(jars_dir: str) -> tuple[Path, list[str]] | None:
    """The first candidate folder for ``jars_dir`` that holds jars, with them (sorted)."""
    candidates = (
        [Path(jars_dir)]
        if Path(jars_dir).is_absolute()
        else [
            Path.cwd() / jars_dir,
            _project_root() / jars_dir,
        ]
    )
    for folder in candidates:
        jars = sorted(str(p.resolve()) for p in folder.glob("*.jar"))
        if jars:
            return folder, jars
    return None


def _spark_home_jars() -> list[str]:
    """The jars of the Spark installation this Python uses (``$SPARK_HOME/jars``)."""
    home = os.environ.get("SPARK_HOME")
    if not home:
        import pyspark

        home = str(Path(pyspark.__file__).parent)
    return sorted(str(p) for p in (Path(home) / "jars").glob("*.jar"))


def _missing_from(jars: Sequence[str]) -> list[str]:
    """The prefixes of :data:`REQUIRED_JARS` that no jar in ``jars`` has."""
    names = [Path(j).name for j in jars]
    return [p for p in REQUIRED_JARS if not any(n.startswith(p) for n in names)]


def resolve_jars(jars_dir: str) -> list[str]:
    """List the jar files for ``spark.jars``.

    Args:
        jars_dir: Folder of jars; a relative path is tried against the working directory,
            then the project root.

    Returns:
        Absolute jar paths, sorted; empty when the folder is absent but Spark's own
        ``jars`` folder holds the required ones (the container image).

    Raises:
        ConfigError: If the folder holds no jars (set-up has not been run), or lacks one of
            :data:`REQUIRED_JARS`.
    """
    found = _jars_in(jars_dir)
    if found is None and _missing_from(_spark_home_jars()) == []:
        # An image with the jars baked into $SPARK_HOME/jars (docker/Dockerfile) has them
        # on every JVM's classpath already, driver and executors alike.
        log.debug("spark.jars_dir %r absent; the required jars are on Spark's classpath", jars_dir)
        return []
    if found is None:
        raise ConfigError(
            f"spark.jars_dir: no jars in {jars_dir!r}; run `make setup` (scripts/fetch_jars.sh)"
        )
    folder, jars = found
    # A partly fetched cache would start a session that fails later, on the first
    # Sedona function or Delta table, with a JVM ClassNotFoundException.
    missing = _missing_from(jars)
    if missing:
        absent = ", ".join(f"{p}*" for p in missing)
        raise ConfigError(
            f"spark.jars_dir: {absent} missing from {str(folder)!r}; "
            "run `make setup` (scripts/fetch_jars.sh)"
        )
    return jars


def resolve_extra_jars(jars_dirs: Sequence[str]) -> list[str]:
    """List the jar files of ``spark.extra_jars_dirs`` (each folder must hold some).

    Raises:
        ConfigError: Naming the first folder without jars.
    """
    jars: list[str] = []
    for jars_dir in jars_dirs:
        found = _jars_in(jars_dir)
        if found is None:
            raise ConfigError(
                f"spark.extra_jars_dirs: no jars in {jars_dir!r}; "
                "run `make setup` (scripts/fetch_jars.sh)"
            )
        jars.extend(found[1])
    return jars


#: Hadoop S3A settings derived from ``AWS_ENDPOINT_URL`` (see :func:`s3a_endpoint_conf`).
S3A_ENDPOINT = "spark.hadoop.fs.s3a.endpoint"
S3A_PATH_STYLE = "spark.hadoop.fs.s3a.path.style.access"
S3A_SSL = "spark.hadoop.fs.s3a.connection.ssl.enabled"


def s3a_endpoint_conf(*, env: Mapping[str, str], conf: Mapping[str, str]) -> dict[str, str]:
    """Spark settings that point Hadoop's S3A at the endpoint in ``AWS_ENDPOINT_URL``.

    ``AWS_ENDPOINT_URL`` (or the S3-only ``AWS_ENDPOINT_URL_S3``, which wins, as in the AWS
    SDKs) is the standard variable the SDKs and pyarrow (the driver's side files,
    :mod:`shikong.io.fs`) read; Hadoop's S3A does not, so without this the tables would go
    to AWS while the side files go to the endpoint. A non-AWS endpoint (MinIO, Ceph, an
    emulator) serves buckets by path, not as subdomains, and a plain ``http://`` one has no
    TLS. Keys the config's ``spark.conf`` sets win.

    Only the endpoint is mirrored, never credentials: S3A's default provider chain reads
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` from the environment itself, so
    secrets stay out of the Spark conf (shown in the UI and written to event logs, where
    only key-name patterns are redacted).

    Args:
        env: The environment (``os.environ``).
        conf: The config's own Spark settings.

    Returns:
        The settings to add (empty when neither variable is set).
    """
    endpoint = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    if not endpoint:
        return {}
    derived = {S3A_ENDPOINT: endpoint, S3A_PATH_STYLE: "true"}
    if endpoint.lower().startswith("http://"):
        derived[S3A_SSL] = "false"
    return {k: v for k, v in derived.items() if k not in conf}


class SetupError(RuntimeError):
    """The machine lacks something the session needs (Java), with the fix in the message."""


def require_java() -> None:
    """Fail early, in one line, when no Java is there for Spark to start.

    Raises:
        SetupError: Naming the fix.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isfile(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java"):
        return
    raise SetupError(
        "Java 17 not found (no java on PATH and JAVA_HOME unset or wrong): "
        "install openjdk-17-jre-headless or set JAVA_HOME"
    )


def spark_location(location: str) -> str:
    """The URI Spark should see for a lakehouse location (``shikong.io.fs.spark_uri``'s rule).

    A plain path is local and becomes an absolute ``file:`` URI, so the driver's working
    directory, not Hadoop's default filesystem, decides where it is; a URI stays as it is.
    Repeated here because the session may not import :mod:`shikong.io` (layering);
    tests/test_session.py checks the two agree.
    """
    if len(urlparse(location).scheme) <= 1:  # none, or a Windows drive letter
        return "file:" + os.path.abspath(location)
    return location


def build_session(cfg: AppConfig) -> SparkSession:
    """Build (or get) the SparkSession for a run.

    Sets both SQL extensions (Delta and Sedona), Delta's catalog, Kryo with Sedona's
    registrator, the jars or packages, the checkpoint directory
    (:attr:`~shikong.config.AppConfig.checkpoint_location`) and the log level, then the
    config's own Spark settings and the S3A endpoint of ``AWS_ENDPOINT_URL``
    (:func:`s3a_endpoint_conf`), and registers Sedona's functions with
    ``SedonaContext.create``. Everything goes through the builder as Spark settings, not
    through the SparkContext, so that the same settings start a Spark Connect server.

    Args:
        cfg: The validated configuration.

    Returns:
        The session. On a cluster the master comes from spark-submit.
    """
    from sedona.spark import SedonaContext  # heavy import; keep module import cheap

    settings = cfg.spark
    if settings.master and settings.master.startswith("local"):
        require_java()  # on a cluster the driver runs in a JVM already
    for name, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(name, value)
    if settings.master and settings.master.startswith("local"):
        # Local Python workers must be this interpreter (the venv that has shikong), not
        # whatever `python3` is first on PATH. Clusters ship the wheel to their own Python.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    builder = (
        builder.config("spark.sql.extensions", ",".join(SQL_EXTENSIONS))
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.serializer", KRYO_SERIALIZER)
        .config("spark.kryo.registrator", SEDONA_KRYO_REGISTRATOR)
        .config("spark.sql.session.timeZone", "UTC")
        # Static settings read when the SparkContext starts (Spark >= 3.5 / 4.0): the public
        # replacements of SparkContext.setLogLevel / setCheckpointDir.
        .config("spark.log.level", settings.log_level.upper())
        .config("spark.checkpoint.dir", spark_location(cfg.checkpoint_location))
    )
    if "spark.sql.warehouse.dir" not in settings.conf:
        # SQL on a Delta path (DESCRIBE HISTORY delta.`...`) initialises the default
        # database, which creates its warehouse folder: under the lakehouse, not in the
        # working directory (nothing local when the lakehouse is remote).
        builder = builder.config(
            "spark.sql.warehouse.dir",
            spark_location(cfg.paths.lakehouse.rstrip("/") + "/_warehouse"),
        )
    for name, value in SINGLE_THREAD_ENV.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    jars = resolve_jars(settings.jars_dir) if settings.jars_dir else []
    jars += resolve_extra_jars(settings.extra_jars_dirs)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    if settings.packages:
        builder = builder.config("spark.jars.packages", ",".join(settings.packages))
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    s3a = s3a_endpoint_conf(env=os.environ, conf=settings.conf)
    for key, value in s3a.items():
        builder = builder.config(key, value)
    if S3A_ENDPOINT in s3a:
        log.info("s3a endpoint from the environment: %s", s3a[S3A_ENDPOINT])

    from shikong import cluster_checks

    try:
        spark = builder.getOrCreate()
    except Exception:
        # A page of JVM trace otherwise; say the missing thing in one line when we can.
        why = cluster_checks.explain_start_failure(settings.master)
        if why is None:
            raise
        raise why from None
    spark = SedonaContext.create(spark)
    master = spark.conf.get("spark.master", None)
    log.info("Spark %s session ready (master=%s)", spark.version, master)
    if master and not master.startswith("local"):
        # Executors run their own Python (the packed environment): check it now, not at
        # the first UDF minutes into the run.
        cluster_checks.check_executors(spark)
    return spark


def use_checkpoint_dir(spark: SparkSession, location: str) -> str:
    """Make sure ``spark`` checkpoints somewhere, preferably at ``location``.

    ``spark.checkpoint.dir`` is static: a session built by :func:`build_session` has it
    from the config and keeps it. A classic session built without it (a notebook's, a
    platform's) gets ``location`` through ``SparkContext.setCheckpointDir``, public API
    that a Spark Connect client does not have; a Connect server must be started with the
    setting.

    Args:
        spark: The session.
        location: Lakehouse location (URI or path) used when the session has none.

    Returns:
        The checkpoint directory in effect.

    Raises:
        ConfigError: Under Spark Connect when the server has no ``spark.checkpoint.dir``.
    """
    current = spark.conf.get("spark.checkpoint.dir", None)
    wanted = spark_location(location)
    if current:
        if current != wanted:
            log.warning(
                "checkpoints go to %s, the session's spark.checkpoint.dir, not %s", current, wanted
            )
        return current
    if not is_classic(spark):
        raise ConfigError(
            "spatial.checkpoint_dir: a Spark Connect session cannot set its checkpoint "
            f"directory; start the Connect server with spark.checkpoint.dir={wanted}"
        )
    spark.sparkContext.setCheckpointDir(wanted)
    return wanted


@contextmanager
def sql_settings(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Hold SQL settings for the block, then restore what was there (or unset it).

    For transforms whose plans need a setting while they are built (e.g.
    ``shikong.spatial.hotspots.REQUIRED_SQL_SETTINGS``): the stage wraps the call.
    """
    previous: dict[str, str | None] = {k: spark.conf.get(k, None) for k in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
