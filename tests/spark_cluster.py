"""A Spark standalone cluster on 127.0.0.1 for tests: one master, N one-core workers.

The master and the workers are separate JVMs started from the pinned pyspark distribution
(``bin/spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``), each
in a process group of its own and with a clean environment: no ``PYTHONPATH``, no virtual
environment, a Spark home, work and log folders outside the checkout. Executors therefore
see only what ``spark-submit`` ships them.

Every process the cluster starts (JVMs, executors, Python workers, training ranks) inherits
a marker variable, so teardown finds and kills them all, on every exit path, and can prove
that none is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER = "SHIKONG_TEST_CLUSTER"


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster."""

    master_url: str
    ui_url: str
    spark_home: Path
    workers: tuple[Path, ...]  # each worker's work dir (executors' working directories)
    marker: str

    def status(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as r:
            return json.load(r)


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries ``MARKER=marker``."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue  # gone, or not ours to read
    return pids


def _kill_all(procs: list[subprocess.Popen], marker: str) -> None:
    for p in procs:  # the JVMs first, so no worker restarts a killed executor
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for _ in range(3):  # stragglers outside the groups (setsid'd daemons, torchrun ranks)
        pids = marked_pids(marker)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def _wait_for(what: str, ok, timeout: float, procs: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            tail = "\n".join(
                f.read_text(errors="replace")[-2000:] for f in sorted(logs.glob("*.log"))
            )
            raise RuntimeError(f"cluster: a JVM exited while waiting for {what}:\n{tail}")
        with contextlib.suppress(OSError, ValueError):
            if ok():
                return
        time.sleep(0.5)
    raise TimeoutError(f"cluster: {what} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def standalone_cluster(
    pyspark_home: Path,
    base: Path,
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "4g",
    env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers bound to 127.0.0.1; stop them all on exit.

    Args:
        pyspark_home: The pyspark package folder (its ``bin/`` and ``jars/``). It is
            hard-linked into ``base`` so no executor's path points into the checkout.
        base: An empty folder outside the checkout for Spark home, work and logs.
        workers: Number of worker JVMs.
        cores: Cores each worker offers.
        memory: Memory each worker offers its executors.
        env: Extra environment for the JVMs and everything they start (credentials of a
            test object store, as an instance profile would give a real cluster).
    """
    marker = uuid.uuid4().hex
    spark_home = base / "spark"
    shutil.copytree(pyspark_home, spark_home, copy_function=os.link)
    logs = base / "logs"
    logs.mkdir()
    java_home = os.environ.get("JAVA_HOME")
    clean = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "SPARK_NO_DAEMONIZE": "1",
        MARKER: marker,
        **({"JAVA_HOME": java_home} if java_home else {}),
        **(env or {}),
    }
    port, ui = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{ui}"
    procs: list[subprocess.Popen] = []
    work_dirs: list[Path] = []

    def start(name: str, args: list[str], cwd: Path) -> None:
        log = (logs / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [str(spark_home / "bin" / "spark-class"), *args],
                env=clean,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    try:
        start(
            "master",
            ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
             str(port), "--webui-port", str(ui)],
            base,
        )
        cluster = Cluster(master_url, ui_url, spark_home, (), marker)
        _wait_for("the master", lambda: cluster.status() is not None, 60, procs, logs)
        for i in range(workers):
            work = base / f"worker-{i}"
            work.mkdir()
            work_dirs.append(work)
            start(
                f"worker-{i}",
                ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                 str(cores), "--memory", memory, "--work-dir", str(work), "--webui-port",
                 str(free_port()), master_url],
                work,
            )
        _wait_for(
            f"{workers} workers",
            lambda: cluster.status().get("aliveworkers") == workers,
            60,
            procs,
            logs,
        )
        yield Cluster(master_url, ui_url, spark_home, tuple(work_dirs), marker)
    finally:
        _kill_all(procs, marker)
