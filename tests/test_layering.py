"""The house stands: layering contracts (import-linter) and no storage access outside io.

Layers (README "Layout"): face (cli, jobs) -> stages -> transforms (spatial, timeseries,
decisions, training, models, ingest, generator, privacy) -> core (io, session, secrets; then config,
schemas, frames, geodesy, geo_resources, logs). The contracts live in pyproject.toml.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lib" / "shikong"
TRANSFORMS = (
    "spatial",
    "timeseries",
    "decisions",
    "training",
    "models",
    "ingest",
    "generator",
    "privacy",
    "report",
)


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO / "lib",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


#: Methods that read or write files whatever object they are called on.
_FILE_METHODS = {
    "to_csv",
    "to_parquet",
    "read_csv",
    "read_parquet",
    "write_text",
    "read_text",
    "write_bytes",
    "read_bytes",
    "mkdir",
    "unlink",
    "setCheckpointDir",
}
#: Modules whose calls touch storage, and the calls (any call for ``None``).
_MODULE_CALLS: dict[str, set[str] | None] = {
    "torch": {"save", "load"},
    "pickle": {"dump", "load"},
    "json": {"dump", "load"},
    "joblib": {"dump", "load"},
    "np": {"save", "load", "savez", "savetxt", "loadtxt"},
    "pq": {"write_table", "read_table", "ParquetFile", "ParquetWriter"},
    "shutil": None,
    "tempfile": None,
    "mlflow": None,
    "os": {"remove", "unlink", "makedirs", "mkdir", "replace", "rename"},
}
#: Attribute chains that start a Spark read or write (``spark.read.x``, ``df.write.x``).
_SPARK_IO = {"read", "write", "readStream", "writeStream"}


def _storage_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        chained = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
        if chained and node.value.attr in _SPARK_IO:  # type: ignore[union-attr]
            found.append(f"{where} .{node.value.attr}.{node.attr}")  # type: ignore[union-attr]
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("open", "mkdtemp"):
            found.append(f"{where} {f.id}()")
        if not isinstance(f, ast.Attribute):
            continue
        if f.attr in _FILE_METHODS:
            found.append(f"{where} {f.attr}()")
        if isinstance(f.value, ast.Name) and f.value.id in _MODULE_CALLS:
            calls = _MODULE_CALLS[f.value.id]
            if calls is None or f.attr in calls:
                found.append(f"{where} {f.value.id}.{f.attr}()")
        conf = isinstance(f.value, ast.Attribute) and f.value.attr == "conf"
        if conf and f.attr in ("set", "unset"):
            found.append(f"{where} conf.{f.attr}()")
    return found


def _modules(*packages: str) -> list[Path]:
    """The modules of packages (folders) or single-module names (``privacy.py``)."""
    found: list[Path] = []
    for pkg in packages:
        single = PACKAGE / f"{pkg}.py"
        found.extend([single] if single.is_file() else (PACKAGE / pkg).rglob("*.py"))
    return sorted(found)


@pytest.mark.parametrize("module", _modules(*TRANSFORMS), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_transforms_touch_no_storage(module: Path) -> None:
    assert _storage_uses(module) == []


@pytest.mark.parametrize(
    "module",
    [*_modules("stages", "jobs"), PACKAGE / "cli.py"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_stages_and_face_reach_storage_only_through_io(module: Path) -> None:
    # Checkpoints too: the session is built with spark.checkpoint.dir (shikong.session).
    assert _storage_uses(module) == []


def test_the_scan_finds_storage_calls(tmp_path: Path) -> None:
    """The scanner itself: each kind of storage access it must catch."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(spark, df, torch, p):\n"
        "    spark.read.format('delta').load('x')\n"
        "    df.write.mode('overwrite').save('y')\n"
        "    torch.save({}, 'z')\n"
        "    open('w')\n"
        "    p.write_text('t')\n"
        "    spark.sparkContext.setCheckpointDir('c')\n"
        "    spark.conf.set('k', 'v')\n",
        encoding="utf-8",
    )
    uses = " ".join(_storage_uses(sample))
    for needle in (
        ".read.format",
        ".write.mode",
        "torch.save()",
        "open()",
        "write_text()",
        "setCheckpointDir()",
        "conf.set()",
    ):
        assert needle in uses


def test_no_module_over_700_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700
    }
    assert long == {}
