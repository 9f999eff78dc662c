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
import re
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
from typing import Any

import yaml

MARKER = "SHIKONG_TEST_CLUSTER"
#: Environment variables of this machine's BLAS set-up that the cluster's processes keep.
BLAS_ENV_PREFIXES = ("OPENBLAS_", "MKL_", "NVPL_")
#: The pseudonym key of the cluster runs and their local comparison runs (the cluster
#: profiles allow no development key): a test value, the same in every run of a test.
TEST_PSEUDONYM_KEY = "shikong-test-pseudonym-key-cluster-runs"
ROOT = Path(__file__).resolve().parents[1]


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

    def clean(self) -> None:
        """Delete what finished applications left on the workers: every executor keeps its
        copy of the archive and the unpacked environment (gigabytes) until removed."""
        for work in self.workers:
            for app in work.glob("app-*"):
                shutil.rmtree(app, ignore_errors=True)
            local = work.parent / f"local-{work.name.removeprefix('worker-')}"
            for sub in local.glob("*"):
                shutil.rmtree(sub, ignore_errors=True)

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
        # The BLAS kernel choice (e.g. OPENBLAS_CORETYPE) is the machine's, as on a real
        # cluster whose nodes share one image: an executor whose OpenBLAS picked another
        # kernel set than the local[2] run it is compared with (SkylakeX vs Haswell on an
        # Intel CPU) fits the SARIMA and Holt-Winters models to other last bits, and the
        # order search turns those into forecasts 1e-4 apart.
        **{k: v for k, v in os.environ.items() if k.startswith(BLAS_ENV_PREFIXES)},
        **(env or {}),
    }
    port, ui = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{ui}"
    procs: list[subprocess.Popen] = []
    work_dirs: list[Path] = []

    def start(name: str, args: list[str], cwd: Path, **env: str) -> None:
        log = (logs / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [str(spark_home / "bin" / "spark-class"), *args],
                env={**clean, **env},
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
            (base / f"local-{i}").mkdir()
            work_dirs.append(work)
            start(
                f"worker-{i}",
                ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                 str(cores), "--memory", memory, "--work-dir", str(work), "--webui-port",
                 str(free_port()), master_url],
                work,
                # Executors' scratch (fetched files, shuffle) in the test's folder, not /tmp.
                SPARK_LOCAL_DIRS=str(base / f"local-{i}"),
                # And their temporary folders: an executor downloads each archive into a
                # fresh java.io.tmpdir folder before unpacking it, gigabytes that stay in
                # /tmp when the worker has to kill the executor. Executors inherit the
                # worker's environment; Cluster.clean empties these folders.
                JAVA_TOOL_OPTIONS=f"-Djava.io.tmpdir={base / f'local-{i}'}",
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
        # Executors' copies of the environment are gigabytes each: keep only the logs.
        for path in [spark_home, *base.glob("worker-*"), *base.glob("local-*")]:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- submitting


def readme_submit_block() -> str:
    """The bash block after the ``cluster-submit`` marker in README.md (run as it stands)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- cluster-submit:[^>]*-->\s*```bash\n(.*?)```", text, re.S)
    if not m:
        raise LookupError("README.md has no cluster-submit block")
    return m.group(1)


def derived_config(tmp: Path, name: str, **changes: dict[str, Any]) -> Path:
    """conf/cluster-small.yaml with some sections' keys replaced, written under ``tmp``."""
    data = yaml.safe_load((ROOT / "conf" / "cluster-small.yaml").read_text())
    for section, values in changes.items():
        data[section] = {**data[section], **values}
    out = tmp / f"{name}.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def local_config(tmp: Path) -> Path:
    """The cluster config in local[2]: same world and settings, TorchDistributor with the
    same two ranks in local mode."""
    return derived_config(
        tmp,
        "local",
        spark={"master": "local[2]", "jars_dir": str(ROOT / ".jars" / "lib")},
        models={"local_mode": True},
    )


def driver_env(cluster: Cluster, **extra: str) -> dict[str, str]:
    """This process's environment for a spark-submit to ``cluster`` (marked, loopback)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SPARK_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")
        and not k.startswith("SHIKONG_")
    }
    # The driver's servers (UI, block manager, file server) on loopback only.
    env.update(
        SPARK_LOCAL_IP="127.0.0.1",
        SHIKONG_PSEUDONYM_KEY=TEST_PSEUDONYM_KEY,
        **{MARKER: cluster.marker},
        **extra,
    )
    return env


class RunFailedError(RuntimeError):
    """A command exited non-zero; the message holds the end of its output."""


def run_logged(cmd: list[str], *, env: dict[str, str], log: Path, cwd: Path,
               timeout: float = 2700) -> float:
    """Run ``cmd`` to completion with its output in ``log``; the wall time in seconds.

    The command runs in a process group of its own; on timeout the whole group is killed,
    not just ``cmd`` (``subprocess.run`` kills only the child: a spark-submit driver under
    a killed bash would go on holding the cluster's cores and writing its scratch).

    Raises:
        RunFailedError: With the last non-INFO lines of the output (exit or timeout).
    """
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    seconds = time.perf_counter() - t0
    if returncode != 0:
        text = log.read_text(errors="replace").splitlines()
        lines = [ln for ln in text if " INFO " not in ln and not ln.startswith("\tat ")]
        how = f"exited {returncode}" if returncode is not None else f"timed out ({timeout:.0f} s)"
        raise RunFailedError(f"{cmd[0]} {how}:\n" + "\n".join(lines[-40:]))
    return seconds


def submit(
    cluster: Cluster, tmp: Path, config: Path, lakehouse: str, **env: str
) -> tuple[float, int]:
    """Run the README's block against ``cluster`` (log in ``tmp/submit.log``).

    Returns:
        The wall seconds, and how many executors had unpacked the environment (counted
        before the workers' application folders are removed).
    """
    script = tmp / "submit.sh"
    script.write_text(readme_submit_block())
    scratch = tmp / "driver-local"  # the driver's copy of the archive, unpacked: gigabytes
    scratch.mkdir(exist_ok=True)
    try:
        seconds = run_logged(
            ["bash", "-euo", "pipefail", str(script)],
            env=driver_env(
                cluster, MASTER=cluster.master_url, CONFIG=str(config),
                SHIKONG_LAKEHOUSE=lakehouse, SPARK_LOCAL_DIRS=str(scratch),
                # The driver's download of the archive too (see standalone_cluster).
                SPARK_SUBMIT_OPTS=f"-Djava.io.tmpdir={scratch}", **env,
            ),
            log=tmp / "submit.log",
            cwd=ROOT,
        )
        unpacked = [p for w in cluster.workers for p in w.glob("app-*/*/environment/bin/python")]
        return seconds, len(unpacked)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        cluster.clean()


def step_seconds(log: str, step: str) -> float | None:
    """The duration the CLI logged for a step (``[spark session] done: 12.3 s``)."""
    m = re.findall(rf"\[{re.escape(step)}\] done: (?:[\d,]+ rows, )?([\d.]+) s", log)
    return float(m[-1]) if m else None
