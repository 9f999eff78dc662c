"""Run shikong's benchmarks: ``bench/run.py --area spatial|timeseries|decisions|training|all``.

Every area writes ``bench/results/<area>.json`` (format: ``/work/shared/bench-format.md``)
and prints its table. Arguments after ``--area`` are passed to the area's script, e.g.
``bench/run.py --area spatial --quick`` or ``bench/run.py --area timeseries --series 400``;
with ``--area all`` every area runs in its own process (a cold JVM each) and only the
common flags (``--quick``, ``--seed``, ``--out-dir``, ``--cores``) are forwarded.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import traceback

import common  # first third-party import (sorts before numpy): pins BLAS threads

AREAS = ("spatial", "timeseries", "decisions", "training", "cluster")
COMMON_FLAGS = ("--quick", "--seed", "--out-dir", "--cores")


def _common_only(rest: list[str]) -> list[str]:
    """Keep the flags every area understands (for ``--area all``)."""
    out, i = [], 0
    while i < len(rest):
        arg = rest[i]
        name = arg.split("=", 1)[0]
        if name in COMMON_FLAGS:
            out.append(arg)
            if "=" not in arg and name != "--quick" and i + 1 < len(rest):
                out.append(rest[i + 1])
                i += 1
        i += 1
    return out


def run_area(area: str, argv: list[str]) -> bool:
    """Run one area's ``main(argv)``; False when it failed or is absent."""
    if importlib.util.find_spec(area) is None:
        print(f"[bench] area '{area}': bench/{area}.py not present yet - skipped")
        return True
    common.log(f"area {area}: start {' '.join(argv)}")
    try:
        importlib.import_module(area).main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code in (0, None)
    except Exception:  # noqa: BLE001 - report and go on with the other areas
        traceback.print_exc()
        print(f"[bench] area '{area}' FAILED")
        return False
    common.log(f"area {area}: done")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--area", default="all", choices=(*AREAS, "all"))
    args, rest = parser.parse_known_args(argv)
    if args.area == "all":
        forwarded = _common_only(rest)
        dropped = [a for a in rest if a not in forwarded]
        if dropped:
            print(f"[bench] --area all: ignoring area-specific arguments {dropped}")
        # One process per area: each gets a cold JVM (start-up measured honestly) and
        # its own driver settings.
        codes = [
            subprocess.call([sys.executable, __file__, "--area", area, *forwarded])
            for area in AREAS
        ]
        return 0 if all(c == 0 for c in codes) else 1
    return 0 if run_area(args.area, rest) else 1


if __name__ == "__main__":
    sys.exit(main())
