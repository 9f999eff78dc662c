#!/usr/bin/env python
"""Remove the CUDA runtime files of an environment that nothing links against.

    python scripts/prune_gpu.py SITE_PACKAGES

Used by ``scripts/pack_env.py`` (the executors' packed environment) and by the image build
(``docker/Dockerfile``), where it runs with the image's own Python: standard library and
``readelf`` (binutils) only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path


def _needed(files: list[Path]) -> dict[Path, list[str]]:
    """The DT_NEEDED sonames of each ELF file (``readelf -d``; non-ELF files map to [])."""
    out: dict[Path, list[str]] = {f: [] for f in files}
    for i in range(0, len(files), 200):
        chunk = files[i : i + 200]
        text = subprocess.run(
            ["readelf", "-d", "-W", *map(str, chunk)], capture_output=True, text=True
        ).stdout
        current: Path | None = chunk[0] if len(chunk) == 1 else None
        for line in text.splitlines():
            if line.startswith("File: "):
                current = Path(line[6:].strip())
            m = re.search(r"\(NEEDED\).*\[(.+)\]", line)
            if m and current is not None:
                out.setdefault(current, []).append(m.group(1))
    return out


def prune_gpu_only(site: Path) -> int:
    """Remove the CUDA runtime files that nothing links against; bytes freed.

    torch's CUDA build links (DT_NEEDED) a dozen CUDA libraries, which must be there for
    ``import torch`` even on a CPU; the rest of the ``nvidia-*`` wheels (cuDNN's engine
    libraries, cuSOLVER, CUPTI, headers, static archives: about a third) is only opened on
    a GPU. Kept: every library under ``nvidia/`` reached from the environment's other
    shared objects through the NEEDED graph, and the packages' ``__init__.py`` files.
    """
    nvidia = site / "nvidia"
    if not nvidia.is_dir() or shutil.which("readelf") is None:
        return 0
    gpu_libs = {p.name: p for p in nvidia.rglob("*.so*") if p.is_file()}
    roots = [p for p in site.rglob("*.so*") if p.is_file() and nvidia not in p.parents]
    needed = _needed(roots + list(gpu_libs.values()))
    keep: set[Path] = set()
    todo = [name for r in roots for name in needed.get(r, [])]
    while todo:
        lib = gpu_libs.get(todo.pop())
        if lib is not None and lib not in keep:
            keep.add(lib)
            todo.extend(needed.get(lib, []))
    freed = 0
    for f in [p for p in nvidia.rglob("*") if p.is_file()]:
        if f not in keep and f.name != "__init__.py":
            freed += f.stat().st_size
            f.unlink()
    return freed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: prune_gpu.py SITE_PACKAGES", file=sys.stderr)
        return 2
    if shutil.which("readelf") is None:
        print("prune_gpu: readelf (binutils) is required", file=sys.stderr)
        return 2
    freed = prune_gpu_only(Path(args[0]))
    print(f"prune_gpu: {freed / 2**20:.0f} MiB of GPU-only CUDA files removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
