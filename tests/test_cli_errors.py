"""Clear errors and exit codes, the run log's job status rows, and world fingerprints."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import TEST_SPARK_CONF
from shikong.cli import main as cli_main
from shikong.config import ConfigError
from shikong.io import world
from shikong.io.catalog import Catalog
from shikong.jobs.common import guarded
from shikong.session import SetupError, require_java, resolve_jars
from shikong.stages import registry
from shikong.stages.context import StageContext
from shikong.stages.runner import run_stage


def _raise(exc: BaseException):  # noqa: ANN202
    def fn() -> int:
        raise exc

    return fn


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (ConfigError("spark.mastr: unknown key"), 2, "shikong: config error: spark.mastr"),
        (FileNotFoundError("/x: no such folder"), 1, "shikong ingest: FileNotFoundError: /x"),
        (ValueError("first line\nsecond line"), 1, "shikong ingest: ValueError: first line"),
        (world.WorldMismatchError("other world: --fresh"), 1, "shikong ingest: World"),
        (KeyboardInterrupt(), 130, "shikong ingest: interrupted"),
    ],
    ids=["config", "missing-file", "multi-line", "world", "interrupt"],
)
def test_failures_become_one_line_and_an_exit_code(exc, code, line, capsys) -> None:
    assert guarded("ingest", _raise(exc)) == code
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_missing_java_names_the_fix(monkeypatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SetupError, match="Java 17 not found.*openjdk-17-jre-headless"):
        require_java()


_ALL_JARS = (
    "delta-spark_4.0_2.13-4.4.0.jar",
    "delta-storage-4.4.0.jar",
    "sedona-spark-shaded-4.0_2.13-1.8.0.jar",
    "geotools-wrapper-1.8.0-33.1.jar",
)


@pytest.mark.parametrize(
    ("present", "match"),
    [
        ((), "spark.jars_dir: no jars in"),
        (_ALL_JARS[:2], "spark.jars_dir: sedona-spark-shaded-\\*, geotools-wrapper-\\* missing"),
        (_ALL_JARS[1:], "spark.jars_dir: delta-spark_\\* missing"),
        (_ALL_JARS, None),
    ],
    ids=["empty", "no-sedona", "no-delta", "complete"],
)
def test_missing_jars_name_the_fix(tmp_path: Path, present, match) -> None:
    for name in present:
        (tmp_path / name).write_bytes(b"")
    if match is None:
        assert [Path(j).name for j in resolve_jars(str(tmp_path))] == sorted(present)
        return
    with pytest.raises(ConfigError, match=match + ".*run `make setup`"):
        resolve_jars(str(tmp_path))


def test_a_run_without_jars_exits_2_in_one_line(tmp_path: Path, capsys) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        f'spark:\n  master: "local[1]"\n  jars_dir: {tmp_path / "nojars"}\n'
        f"paths:\n  lakehouse: {tmp_path / 'lake'}\n"
    )
    assert cli_main(["series", "--config", str(conf)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shikong: config error: spark.jars_dir: no jars")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\xff\xfe\x00binary", "cannot read"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"spark: [unclosed\n", "not valid YAML"),
    ],
    ids=["not-utf8", "not-a-mapping", "bad-yaml"],
)
def test_unreadable_configs_exit_2(tmp_path: Path, content: bytes, match: str, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        cli_main(["tables", "--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and match in err[0]


def _yaml(tmp_path: Path, lakehouse: Path) -> str:
    """A config file like the tests' session (local[2], few partitions), lakehouse in tmp."""
    conf = "\n".join(f"    {k}: {v}" for k, v in TEST_SPARK_CONF.items())
    text = (
        f'spark:\n  master: "local[2]"\n  jars_dir: .jars/lib\n  log_level: ERROR\n'
        f"  conf:\n{conf}\n"
        f"paths:\n  lakehouse: {lakehouse}\n"
        "generator:\n  seed: 42\n  scale: small\n"
    )
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_ingest_of_an_empty_landing_folder_exits_1(spark, tmp_path: Path, capsys) -> None:
    (tmp_path / "lake" / "landing" / "orders").mkdir(parents=True)
    assert cli_main(["ingest", "--config", _yaml(tmp_path, tmp_path / "lake")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("shikong ingest: NoLandingFilesError: no landing files under ")


def test_olist_ingest_with_a_bad_path_exits_1(spark, tmp_path: Path, capsys) -> None:
    code = cli_main(
        [
            "ingest",
            "--source",
            "olist",
            "--path",
            str(tmp_path / "nope"),
            "--config",
            _yaml(tmp_path, tmp_path / "lake"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == f"shikong ingest: FileNotFoundError: {tmp_path / 'nope'}: no such folder "
        "(--path must hold the Olist CSVs)"
    )


def test_run_refuses_another_world_before_touching_the_landing(tmp_path: Path, capsys) -> None:
    lake = tmp_path / "lake"
    held = world.identity(42, {"name": "default", "days": 548}, "2023-01-01")
    world.record(str(lake), held)
    code = cli_main(["run", "--regenerate", "--config", _yaml(tmp_path, lake)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "holds another world (seed 42, scale default, from 2023-01-01)" in err[-1]
    assert "--fresh" in err[-1]
    assert not (lake / "landing").exists()


def test_world_fingerprints(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    a = world.identity(7, {"name": "small", "days": 90}, "2023-01-01")
    world.check(lake, a)  # nothing recorded yet
    world.record(lake, a)
    world.check(lake, json.loads(json.dumps(a)))  # the same world again
    other = world.identity(8, {"name": "small", "days": 90}, "2023-01-01")
    with pytest.raises(world.WorldMismatchError, match="seed 7.*seed 8.*--fresh"):
        world.check(lake, other)
    assert world.fingerprint(a) != world.fingerprint(other)


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_every_stage_run_leaves_its_status_row(
    spark, cfg, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    def run(ctx: StageContext) -> int:
        if fails:
            raise ValueError("boom happened\nstack details")
        return 7

    stage = registry.get("routes")
    monkeypatch.setattr(type(stage), "module", lambda self: SimpleNamespace(run=run))
    ctx = StageContext.create(spark, cfg)
    if fails:
        with pytest.raises(ValueError, match="boom"):
            run_stage(ctx, stage)
    else:
        assert run_stage(ctx, stage) == 7
    rows = Catalog(cfg.paths.lakehouse).read(spark, "ops.run_log").toPandas()
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["job"], row["run_id"], row["source"], row["source_file"]) == (
        "delivery_routes",
        ctx.run_id,
        "*",
        "*",
    )
    if fails:
        assert (row["status"], row["error"]) == ("FAILED", "ValueError: boom happened")
    else:
        assert row["status"] == "SUCCEEDED" and row["error"] is None
    assert row["ended_at"] >= row["started_at"]
