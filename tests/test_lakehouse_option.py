"""``--lakehouse URI`` on every job and CLI command: it replaces ``paths.lakehouse`` as
``SHIKONG_LAKEHOUSE`` does, and wins over it (a Databricks job passes its ``lakehouse``
parameter this way); and a job entry point raises its failures (a Databricks wheel task
ignores return values). No Spark: the commands are stopped before any session starts."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from shikong import cli
from shikong.config import ConfigError, load_config
from shikong.jobs import common
from shikong.stages import registry

FILE = load_config("local", env={}).paths.lakehouse
ENV = "/env/lakehouse"
CLI = "/Volumes/main/shikong/lakehouse/cli"


@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [
        ({}, None, FILE),
        ({"SHIKONG_LAKEHOUSE": ENV}, None, ENV),
        ({}, CLI, CLI),
        ({"SHIKONG_LAKEHOUSE": ENV}, CLI, CLI),
        # Empty means not given, as an empty SHIKONG_LAKEHOUSE does.
        ({"SHIKONG_LAKEHOUSE": ENV}, "", ENV),
        ({"SHIKONG_LAKEHOUSE": ""}, None, FILE),
    ],
    ids=["file", "env", "cli", "cli-over-env", "empty-cli", "empty-env"],
)
def test_precedence_file_env_command_line(
    env: dict[str, str], given: str | None, expected: str
) -> None:
    cfg = load_config("local", env=env, lakehouse=given)
    assert cfg.paths.lakehouse == expected
    # The landing folder follows the lakehouse unless set on its own.
    assert cfg.paths.landing_dir == f"{expected.rstrip('/')}/landing"


def test_landing_override_stays_its_own() -> None:
    cfg = load_config("local", env={"SHIKONG_LANDING": "/drop"}, lakehouse=CLI)
    assert (cfg.paths.lakehouse, cfg.paths.landing_dir) == (CLI, "/drop")


def _job_main(job: str) -> Callable[[list[str]], Any]:
    return importlib.import_module(f"shikong.jobs.{job}").main  # type: ignore[no-any-return]


#: Every entry point that takes the common options: each console script and each CLI
#: command (argv before the common options).
ENTRY_POINTS = [
    *[(f"job:{s.job}", _job_main(s.job), []) for s in registry.STAGES],
    ("job:generate", _job_main("generate"), []),
    ("job:stream", _job_main("stream"), []),
    *[(f"cli:{s.name}", cli.main, [s.name]) for s in registry.STAGES],
    ("cli:generate", cli.main, ["generate"]),
    ("cli:stream", cli.main, ["stream"]),
    ("cli:run", cli.main, ["run"]),
    ("cli:tables", cli.main, ["tables"]),
]


@pytest.mark.parametrize(
    ("main", "argv"), [e[1:] for e in ENTRY_POINTS], ids=[e[0] for e in ENTRY_POINTS]
)
def test_every_entry_point_passes_lakehouse_to_the_config(
    main: Callable[[list[str]], Any], argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def stop(path: str | None, *, lakehouse: str | None = None) -> Any:
        # Record what the command line asked for, then stop before anything runs.
        seen.append((path, lakehouse))
        raise ConfigError("stopped by the test")

    monkeypatch.setattr(common, "load_config", stop)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--config", "databricks", "--lakehouse", CLI])
    assert exc.value.code == 2
    assert seen == [("databricks", CLI)]


@pytest.mark.parametrize("stage", registry.STAGES, ids=lambda s: s.name)
def test_a_job_runs_on_the_command_lines_lakehouse_over_the_environment(
    stage: registry.Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real config path: the stage reaches its first storage step with --lakehouse."""
    monkeypatch.setenv("SHIKONG_LAKEHOUSE", ENV)
    reached: list[str] = []

    def first_step(cfg: Any) -> None:
        reached.append(cfg.paths.lakehouse)
        raise RuntimeError("stopped by the test before the lakehouse is touched")

    monkeypatch.setattr(common, "require_writable_lakehouse", first_step)
    with pytest.raises(SystemExit) as exc:
        _job_main(stage.job)(["--config", "databricks", "--lakehouse", CLI])
    assert reached == [CLI]
    # Raised, not returned: a Databricks wheel task ignores the entry point's return value.
    assert exc.value.code == 1


@pytest.mark.parametrize("code", [0, 1, 2, 130], ids=lambda c: f"exit-{c}")
def test_a_job_entry_point_raises_every_failure(code: int) -> None:
    if code == 0:
        assert common.exit_on_failure(code) == 0
        return
    with pytest.raises(SystemExit) as exc:
        common.exit_on_failure(code)
    assert exc.value.code == code
