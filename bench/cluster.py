"""The small-world pipeline on a 2-worker standalone cluster vs ``local[2]``, same run.

Both run every stage on the same seeded small world with the same settings
(``conf/cluster-small.yaml``; local: ``master: local[2]``, TorchDistributor in local mode
with the same two ranks). The cluster is one master and two one-core workers on this
machine (``tests/spark_cluster.py``), submitted with the README's spark-submit block, so
its wall time holds every cost a user pays: spark-submit, shipping and unpacking the packed
environment on the driver and on each executor, then the stages. Reported:

* pipeline wall time, cluster vs local (target from issue #13: cluster <= 1.5x local);
* session start-up (the CLI's ``[spark session]`` step: on the cluster it includes the
  archive reaching both executors and the executor Python check), cluster vs local;
* the stages alone (wall minus start-up), cluster vs local;
* the packed environment: its size and the time ``scripts/pack_env.py`` takes to build it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import common
from common import Result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the cluster fixture the tests use
import spark_cluster  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        raise SystemExit("bench cluster: no --quick variant (the small world is the unit)")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="shikong-bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        # The archive first, timed on its own: a fresh build (the stamp removed).
        for stamp in (ROOT / "dist").glob("shikong-env-*.key"):
            stamp.unlink()
        t0 = time.perf_counter()
        archive = Path(
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "pack_env.py")],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
        )
        pack_s = time.perf_counter() - t0

        local_dir = tmp / "local"
        local_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIKONG_")}
        env["SHIKONG_LAKEHOUSE"] = str(local_dir / "lakehouse")
        env["SPARK_LOCAL_IP"] = "127.0.0.1"  # same as the cluster run's driver
        common.log("local[2] run")
        local_s = spark_cluster.run_logged(
            [sys.executable, "-m", "shikong.cli", "run", "--config",
             str(spark_cluster.local_config(local_dir))],
            env=env, log=local_dir / "run.log", cwd=ROOT,
        )
        local_start = spark_cluster.step_seconds((local_dir / "run.log").read_text(),
                                                 "spark session")

        pyspark_home = Path(metadata.distribution("pyspark").locate_file("pyspark"))
        (tmp / "cl").mkdir()
        with spark_cluster.standalone_cluster(pyspark_home, tmp / "cl", workers=2, cores=1,
                                              memory="3g") as cluster:
            run_dir = tmp / "cluster"
            run_dir.mkdir()
            common.log(f"cluster run on {cluster.master_url}")
            cluster_s, _ = spark_cluster.submit(
                cluster, run_dir, ROOT / "conf" / "cluster-small.yaml",
                str(run_dir / "lakehouse"),
            )
        cluster_start = spark_cluster.step_seconds((run_dir / "submit.log").read_text(),
                                                   "spark session")

    where = "small world, every stage incl. both deep models, 2 one-core workers vs local[2]"
    results.append(Result(
        "pipeline_wall_small_world", "s", cluster_s, "local[2]", local_s,
        target="cluster <= 1.5x local (ratio >= 0.667)",
        meets_target=local_s / cluster_s >= 1 / 1.5, higher_is_better=False,
        notes=f"{where}; wall of spark-submit / shikong run, start-up included",
    ))
    if cluster_start is not None and local_start is not None:
        results.append(Result(
            "session_startup_packed_env", "s", cluster_start, "local[2] session", local_start,
            higher_is_better=False,
            notes="cluster: driver + both executors receive and unpack the archive, then the "
            "executor Python check task; local: JVM + Sedona + Delta start",
        ))
        results.append(Result(
            "pipeline_stages_only", "s", cluster_s - cluster_start, "local[2]",
            local_s - local_start, higher_is_better=False,
            target="cluster <= 1.5x local (ratio >= 0.667)",
            meets_target=(local_s - local_start) / (cluster_s - cluster_start) >= 1 / 1.5,
            notes="wall minus the session start-up step",
        ))
    results.append(Result(
        "packed_env_size", "MiB", archive.stat().st_size / 2**20,
        notes=f"{archive.name}: wheel + runtime closure from .venv incl. the CUDA libraries "
        "PyPI's torch links against; gzip level 0", higher_is_better=False,
    ))
    results.append(Result(
        "packed_env_build", "s", pack_s, higher_is_better=False,
        notes="scripts/pack_env.py from scratch (wheel, linking the closure, venv-pack)",
    ))
    common.print_table("cluster", results)
    out = common.write_results("cluster", results, common.results_dir(False, args.out_dir))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
