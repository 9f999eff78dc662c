"""What every benchmark shares: thread limits, Spark session, timing, the result file.

Import this module FIRST in every benchmark: it pins the BLAS/OpenMP pools to one thread
before numpy is imported anywhere in the process (the Spark executors get the same limits
from ``shikong.session``), so single-process baselines and Spark workers do the same
single-threaded work.

Result files follow ``/work/shared/bench-format.md``: one ``bench/results/<area>.json`` per
area with ``area``, ``git_commit``, ``measured_at`` (UTC ISO), ``machine`` and ``results``.
"""

from __future__ import annotations

import os

for _name in (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ.setdefault(_name, "1")

import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
#: Scratch data (generated Parquet, quick-run results); git-ignored.
WORK_DIR = BENCH_DIR / "work"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

#: Cores Spark uses in every benchmark (``local[2]``): the machine the project targets.
SPARK_CORES = 2


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """One row of ``results`` (see the shared format).

    ``higher_is_better`` decides the ratio: ``value / baseline`` for rates (rows/s,
    series/s...), ``baseline / value`` for times and distances, so that a ratio above 1
    always means the project is ahead. ``target``/``meets_target`` stay ``None`` where the
    issue names no target.
    """

    name: str
    unit: str
    value: float | None
    baseline_name: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    meets_target: bool | None = None
    notes: str = ""
    higher_is_better: bool = True
    ratio_override: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ratio_override is not None:
            return self.ratio_override
        v, b = self.value, self.baseline_value
        if v is None or b is None or not (math.isfinite(v) and math.isfinite(b)):
            return None
        if self.higher_is_better:
            return v / b if b else None
        return b / v if v else None

    def to_json(self) -> dict[str, Any]:
        baseline = (
            {"name": self.baseline_name, "value": _num(self.baseline_value)}
            if self.baseline_name is not None
            else None
        )
        ratio = self.ratio
        return {
            "name": self.name,
            "unit": self.unit,
            "value": _num(self.value),
            "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 3),
            "target": self.target,
            "meets_target": self.meets_target,
            "notes": self.notes,
        }


def _num(v: float | None) -> float | None:
    if v is None or not math.isfinite(float(v)):
        return None
    v = float(v)
    return round(v, 4) if abs(v) < 1000 else round(v, 1)


def check_target(value: float | None, target: str) -> bool | None:
    """Evaluate a target such as ``">= 2.0"`` or ``"<= 2.1"`` against ``value``."""
    if value is None or not math.isfinite(value):
        return None
    op, num = target.split()
    bound = float(num)
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]


def git_commit() -> str:
    """``git rev-parse --short HEAD`` (read-only), ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def memory_gb() -> float | None:
    """Total RAM from /proc/meminfo, rounded to 1 GB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """The ``machine`` object: cores, memory_gb, python, spark, gpu (always null here)."""
    try:
        import pyspark

        spark_version = pyspark.__version__
    except ImportError:  # pragma: no cover
        spark_version = None
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "python": platform.python_version(),
        "spark": spark_version,
        "gpu": None,
    }


def write_results(area: str, results: Sequence[Result], out_dir: Path) -> Path:
    """Write ``<out_dir>/<area>.json`` in the shared format and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "area": area,
        "git_commit": git_commit(),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "results": [r.to_json() for r in results],
    }
    path = out_dir / f"{area}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def print_table(area: str, results: Sequence[Result]) -> None:
    """The results as a fixed-width table on stdout (notes on their own lines)."""

    def fmt(v: float | None) -> str:
        if v is None or not math.isfinite(v):
            return "-"
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"

    head = (
        f"{'name':44s} {'unit':>12s} {'value':>14s} {'baseline':>26s} {'ratio':>8s} "
        f"{'target':>8s} {'ok':>5s}"
    )
    print(f"\n== {area} ==")
    print(head)
    print("-" * len(head))
    for r in results:
        base = f"{r.baseline_name}={fmt(r.baseline_value)}" if r.baseline_name else "-"
        ok = "-" if r.meets_target is None else ("yes" if r.meets_target else "NO")
        print(
            f"{r.name:44s} {r.unit:>12s} {fmt(r.value):>14s} {base[-26:]:>26s} "
            f"{fmt(r.ratio):>8s} {(r.target or '-'):>8s} {ok:>5s}"
        )
    print()
    for r in results:
        if r.notes:
            print(f"  {r.name}: {r.notes}")
    sys.stdout.flush()


def results_dir(quick: bool, out_dir: str | None) -> Path:
    """Where the JSON goes: ``--out-dir``, else ``bench/results`` (quick runs: bench/work)."""
    if out_dir:
        return Path(out_dir)
    return WORK_DIR / "results-quick" if quick else RESULTS_DIR


# --------------------------------------------------------------------------- timing


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - t0)


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeats`` times; returns (median seconds, all seconds, last result)."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def loadavg() -> float | None:
    """1-minute load average (other work on the machine skews every timing)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def busy_processes() -> list[str]:
    """Other heavy project processes running now (pipeline runs, test runs, other JVMs)."""
    me, parent = os.getpid(), os.getppid()
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (me, parent):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            continue
        if any(k in cmd for k in ("shikong.cli run", "pytest", "bench/run.py", "bench/")):
            if cmd.startswith(("timeout ", "/bin/bash", "bash ")):
                continue
            out.append(cmd.strip()[:60])
    return out


def conditions() -> str:
    """``load 0.52`` plus any other heavy project process, for the notes of a timing."""
    load = loadavg()
    busy = busy_processes()
    text = f"load {load:.2f}" if load is not None else "load ?"
    return text + (f", concurrent: {'; '.join(busy)}" if busy else "")


def log(msg: str) -> None:
    """Progress line on stderr with a wall-clock stamp (stdout is kept for the tables)."""
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Spark


@dataclass
class SparkHandle:
    """The benchmark's session and how long it took to start (excluded from rates)."""

    spark: Any
    startup_s: float
    cores: int
    conf: dict[str, str] = field(default_factory=dict)


def start_spark(
    *,
    cores: int = SPARK_CORES,
    shuffle_partitions: int = 4,
    app_name: str = "shikong-bench",
    extra_conf: dict[str, str] | None = None,
    driver_memory: str = "6g",
) -> SparkHandle:
    """Build the project's session (``shikong.session.build_session``) on ``local[cores]``.

    The embedded ``conf/local.yaml`` is loaded and only the master, the app name, the
    shuffle/default parallelism and the driver memory are replaced, so Sedona, Delta, Kryo
    and the single-thread executor environment are exactly what the jobs get.
    """
    from shikong.config import load_config
    from shikong.session import build_session

    cfg = load_config(REPO_ROOT / "conf" / "local.yaml", env={})
    conf = dict(cfg.spark.conf)
    conf.update(
        {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.default.parallelism": str(2 * cores),
            "spark.driver.memory": driver_memory,
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.ui.showConsoleProgress": "false",
        }
    )
    conf.update(extra_conf or {})
    settings = dataclasses.replace(
        cfg.spark, master=f"local[{cores}]", app_name=app_name, conf=conf, log_level="ERROR"
    )
    cfg = dataclasses.replace(cfg, spark=settings)
    t0 = time.perf_counter()
    spark = build_session(cfg)
    startup = time.perf_counter() - t0
    return SparkHandle(spark=spark, startup_s=startup, cores=cores, conf=conf)


def pickle_by_value(module_name: str) -> None:
    """Ship a bench module's functions to Spark's Python workers by value.

    ``bench/`` is not on the workers' path, so UDFs defined in a bench module must not be
    pickled as module references.
    """
    from pyspark import cloudpickle

    module = sys.modules.get(module_name)
    if module is not None and module_name != "__main__":
        cloudpickle.register_pickle_by_value(module)


def noop_write(df: Any) -> None:
    """Materialise every row and column of ``df`` without storing it."""
    df.write.format("noop").mode("overwrite").save()


def spark_startup_result(handle: SparkHandle, notes: str = "") -> Result:
    """The separately reported start-up row (session build incl. Sedona registration)."""
    return Result(
        name="spark_startup",
        unit="s",
        value=handle.startup_s,
        notes=(
            "SparkSession build (JVM start, Delta + Sedona registration) on "
            f"local[{handle.cores}]; excluded from every rate. {notes}"
        ).strip(),
        higher_is_better=False,
    )


def add_common_args(parser: Any) -> None:
    """``--quick``, ``--seed``, ``--out-dir``, ``--cores``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke run (results go to bench/work/results-quick/)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the generated data")
    parser.add_argument(
        "--out-dir", default=None, help="folder of the JSON result (default bench/results)"
    )
    parser.add_argument(
        "--cores", type=int, default=SPARK_CORES, help="Spark local[N] cores (default 2)"
    )
