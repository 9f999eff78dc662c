"""Checks that turn a mis-submitted cluster run into one line naming what is missing.

A spark-submit with an unreachable master, a missing ``--archives`` file or executors whose
Python is not the packed environment otherwise ends in a page of JVM stack traces (or,
for the Python, only at the first UDF, minutes into the run). :func:`explain_start_failure`
looks at a session that failed to start; :func:`check_executors` runs one tiny task right
after the session starts, so a wrong executor Python stops the run before any stage.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from urllib.parse import urlparse

import pandas as pd
from pyspark.sql import SparkSession

#: What the packed environment is and how it is passed (README "On a cluster").
ARCHIVE_HINT = (
    "build it with scripts/pack_env.py and pass it as --archives ARCHIVE#environment with "
    "PYSPARK_PYTHON=./environment/bin/python"
)
_PROBE_SCHEMA = "python string, shikong string, error string"


class ClusterSetupError(RuntimeError):
    """The cluster or the submission lacks something; the message names it."""


def _submitted_conf(key: str) -> str | None:
    """A setting spark-submit gave the driver JVM (readable once its gateway is up)."""
    from pyspark import SparkConf

    try:
        return SparkConf().get(key, None)
    except Exception:  # no JVM gateway (the failure came before it): nothing to read
        return None


def _unreachable(master: str) -> str | None:
    """Why no ``spark://`` master of the URL accepts a connection, or ``None``."""
    reasons = []
    for hostport in master.removeprefix("spark://").split(","):
        host, _, port = hostport.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                return None
        except (OSError, ValueError) as exc:
            reasons.append(f"{hostport}: {exc.strerror or exc}" if isinstance(exc, OSError)
                           else f"{hostport}: bad address")
    return "; ".join(reasons)


def _local_archive(entry: str) -> str | None:
    """The local file of one ``spark.archives`` entry (``path#alias``), if it is local."""
    path = entry.split("#", 1)[0]
    parsed = urlparse(path)
    if parsed.scheme in ("", "file", "local"):
        return parsed.path if parsed.scheme else path
    return None


def explain_start_failure(master: str | None) -> ClusterSetupError | None:
    """Why the session could not start, as one line, when it is something we can name.

    Args:
        master: The master the config asked for (``None`` under spark-submit, where the
            driver's JVM knows it).
    """
    master = master or _submitted_conf("spark.master")
    if master and master.startswith("spark://"):
        why = _unreachable(master)
        if why:
            return ClusterSetupError(f"Spark master {master} is unreachable ({why})")
    for entry in filter(None, (_submitted_conf("spark.archives") or "").split(",")):
        local = _local_archive(entry.strip())
        if local is not None and not os.path.isfile(local):
            return ClusterSetupError(f"--archives: {local} does not exist; {ARCHIVE_HINT}")
    return None


def _probe(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Runs on an executor: its Python version and whether it can import shikong."""
    for _ in batches:
        pass
    version = ".".join(map(str, sys.version_info[:3]))
    try:
        import shikong  # noqa: F401  (the import itself is the check)

        row = {"python": version, "shikong": metadata.version("shikong"), "error": None}
    except Exception as exc:  # an environment without shikong or one of its dependencies
        row = {"python": version, "shikong": None, "error": f"{type(exc).__name__}: {exc}"}
    yield pd.DataFrame([row])


def _executor_failure(text: str) -> str:
    """The telling line of an executor-side failure's (long) message."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for marker in ("Cannot run program", "ModuleNotFoundError", "ImportError",
                   "PYTHON_VERSION_MISMATCH", "different version"):
        for ln in lines:
            if marker in ln:
                return ln.split("Caused by: ")[-1][:300]
    return (lines[-1] if lines else "?")[:300]


def check_executors(spark: SparkSession) -> None:
    """Run one task on an executor and check its Python against the driver's.

    Raises:
        ClusterSetupError: When executors cannot start Python, run a different Python
            version than the driver, or cannot import shikong (not the packed environment),
            or import another shikong version than the driver's.
    """
    probe = spark.range(1, numPartitions=1).mapInPandas(_probe, _PROBE_SCHEMA)
    try:
        row = probe.collect()[0]
    except Exception as exc:
        raise ClusterSetupError(
            f"executors cannot run shikong's Python ({_executor_failure(str(exc))}); "
            f"{ARCHIVE_HINT}"
        ) from None
    driver = ".".join(map(str, sys.version_info[:3]))
    if row["error"]:
        raise ClusterSetupError(
            f"executors' Python {row['python']} cannot import shikong ({row['error']}); "
            f"{ARCHIVE_HINT}"
        )
    if row["python"].split(".")[:2] != driver.split(".")[:2]:
        raise ClusterSetupError(
            f"executors run Python {row['python']}, the driver {driver}; {ARCHIVE_HINT}"
        )
    if row["shikong"] != metadata.version("shikong"):
        raise ClusterSetupError(
            f"executors have shikong {row['shikong']}, the driver {metadata.version('shikong')}"
            f"; {ARCHIVE_HINT}"
        )
