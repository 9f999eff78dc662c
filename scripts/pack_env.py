#!/usr/bin/env python
"""Build the shikong wheel and a packed Python environment for the executors of a cluster.

    .venv/bin/python scripts/pack_env.py [--out dist] [--gpu] [--format tar.gz]

Prints the archive's path. Spark ships it to every executor with
``spark-submit --archives dist/shikong-env-py311.tar.gz#environment`` and the executors run
``./environment/bin/python`` (README "On a cluster"). The archive is made with venv-pack
from a fresh virtual environment holding the wheel and its runtime dependencies, so
executors never need the checkout, its ``.venv`` or a network.

Offline by design (tests must not need the network after set-up): the dependencies are
not downloaded again but taken from the project's ``.venv``, which ``make setup`` filled
with exactly the pinned versions (and a compiled Horovod). For every distribution in the
closure of the wheel's requirements the files its ``RECORD`` lists are linked into the new
environment; then pip installs the wheel itself with ``--no-deps --no-index``. Left out:

* ``pyspark``: the cluster's Spark provides it (a worker puts its own ``pyspark.zip`` on
  the executors' path), and a second copy could shadow the runtime's;
* unless ``--gpu``: ``triton`` (1 GB; only ``torch.compile`` on a GPU loads it) and the
  parts of the CUDA runtime wheels (``nvidia-*``) that nothing links against (cuDNN's
  engines, cuSOLVER, CUPTI, headers: :func:`prune_gpu_only`). The linked ones stay: the
  ``torch`` PyPI serves for x86-64 Linux is a CUDA build that does not import without
  them, even on a CPU (a cluster installing a CPU build of torch gets a far smaller
  archive).

Rebuilding is skipped when nothing went in changed (the wheel's content, the packed
distributions and their versions, the interpreter, the flags).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from prune_gpu import prune_gpu_only

ROOT = Path(__file__).resolve().parents[1]
#: Packed besides the wheel's own requirements: the Python sides of Sedona and Delta (the
#: ``spark`` extra without pyspark; executors import modules that import them) and Horovod
#: when installed (backend="horovod" trains on the executors).
EXTRA_DISTS = ("apache-sedona", "delta-spark", "horovod")
#: Never packed: the cluster's runtime provides Spark.
RUNTIME_DISTS = ("pyspark",)
GPU_ONLY = re.compile(r"^triton$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_digest(wheel: Path) -> str:
    """A digest of the wheel's contents (names and bytes), not of the zip file: every build
    stamps fresh times into the zip, which would otherwise force a repack each time."""
    import zipfile

    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            h.update(name.encode())
            h.update(hashlib.sha256(z.read(name)).digest())
    return h.hexdigest()


def build_wheel(out: Path) -> Path:
    """``pip wheel`` of the project without build isolation (no network)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("shikong-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True,
    )
    (wheel,) = out.glob("shikong-*.whl")
    return wheel


def closure(roots: list[Requirement], *, gpu: bool) -> dict[str, metadata.Distribution]:
    """The installed distributions the requirements need, transitively (markers applied)."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        name = _norm(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        if name in found or name in RUNTIME_DISTS or (not gpu and GPU_ONLY.match(name)):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"pack_env: {req} is required but not installed in {sys.prefix}"
            ) from None
        found[name] = dist
        for spec in dist.requires or []:
            sub = Requirement(spec)
            for e in req.extras or {""}:
                todo.append((sub, e))
    return found


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's base requirements (no extras)."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        text = z.read(meta).decode()
    reqs = [Requirement(v) for k, v in re.findall(r"^(Requires-Dist): (.+)$", text, re.M)]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def link_distribution(dist: metadata.Distribution, site: Path, dest: Path) -> int:
    """Hard-link (or copy) the distribution's files under site-packages into ``dest``."""
    n = 0
    for f in dist.files or []:
        src = Path(dist.locate_file(f)).resolve()
        try:
            rel = src.relative_to(site)
        except ValueError:
            continue  # console scripts and data outside site-packages: executors import only
        if not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)
        n += 1
    return n


def self_check(python: Path) -> None:
    """Import every shikong module with the packed interpreter alone, as an executor would."""
    spark_home = Path(metadata.distribution("pyspark").locate_file("pyspark"))
    zips = sorted(str(p) for p in (spark_home / "python" / "lib").glob("*.zip"))
    code = (
        "import importlib, pkgutil, shikong\n"
        "for m in pkgutil.walk_packages(shikong.__path__, 'shikong.'):\n"
        "    importlib.import_module(m.name)\n"
        "import torch, sedona.spark, statsmodels, ortools\n"
        # One training step on the CPU: the pruned CUDA runtime must not be needed for it.
        "m = torch.nn.Linear(3, 1); m(torch.ones(4, 3)).sum().backward()\n"
        "try:\n    import horovod.torch\nexcept ImportError:\n    pass\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(zips),
        "HOME": tempfile.gettempdir(),
    }
    done = subprocess.run([str(python), "-c", code], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"pack_env: the packed environment cannot import shikong: {last}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "dist"), help="folder for the wheel and archive")
    p.add_argument("--gpu", action="store_true", help="also pack triton (torch.compile on GPUs)")
    # Spark unpacks .tar.gz with the system tar (permissions kept) but plain .tar with a
    # Java untar that drops the executable bits. Level 0 keeps that format at copy speed:
    # the CUDA libraries torch needs hardly compress (5.3 -> 3.0 GB at level 1, 4x slower).
    p.add_argument("--compress-level", type=int, default=0,
                   help="gzip level (0: stored; raise it to ship over a slow network)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    py_tag = f"py{sys.version_info.major}{sys.version_info.minor}"

    t0 = time.perf_counter()
    wheel = build_wheel(out)
    roots = wheel_requirements(wheel)
    roots += [Requirement(n) for n in EXTRA_DISTS if _has(n)]
    dists = closure(roots, gpu=args.gpu)
    versions = sorted(f"{n}=={d.version}" for n, d in dists.items())
    key = hashlib.sha256(
        json.dumps(
            [wheel_digest(wheel), versions, sys.version, args.gpu, args.compress_level]
        ).encode()
    ).hexdigest()
    archive = out / f"shikong-env-{py_tag}.tar.gz"
    stamp = archive.with_name(archive.name + ".key")
    if archive.is_file() and stamp.is_file() and stamp.read_text() == key:
        print(archive)
        return 0

    env_dir = ROOT / "build" / f"pack-env-{py_tag}"
    shutil.rmtree(env_dir, ignore_errors=True)
    # --copies: the interpreter is a file, not a symlink to an absolute path, which Spark
    # (Hadoop's FileUtil) refuses to unpack ("would create entry outside of ...").
    subprocess.run(
        [sys.executable, "-m", "venv", "--copies", "--without-pip", str(env_dir)], check=True
    )
    env_python = env_dir / "bin" / "python"
    rel_site = Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    site = Path(sysconfig.get_path("purelib")).resolve()
    files = sum(link_distribution(d, site, env_dir / rel_site) for d in dists.values())
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_python), "install", "-q",
         "--no-deps", "--no-index", str(wheel)],
        check=True,
        # A PYTHONPATH onto a source tree would make pip think shikong is installed already.
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    freed = 0 if args.gpu else prune_gpu_only(env_dir / rel_site)
    self_check(env_python)
    archive.unlink(missing_ok=True)
    subprocess.run(
        [str(Path(sys.executable).parent / "venv-pack"), "-q", "-p", str(env_dir), "-o",
         str(archive), "--compress-level", str(args.compress_level)],
        check=True,
    )
    stamp.write_text(key)
    print(
        f"pack_env: {len(dists)} distributions, {files} files ({freed / 2**20:.0f} MiB of "
        "GPU-only CUDA files left out), "
        f"{archive.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    print(archive)
    return 0


def _has(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
