"""Config validation: unknown keys and bad values fail with one line naming the key."""

from __future__ import annotations

import dataclasses

import pytest

from shikong.cli import main as cli_main
from shikong.config import ConfigError, config_from_dict, load_config

# Also run inside the container image (make image-test).
pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"spark": {"mastr": "local"}}, r"^spark\.mastr: unknown key"),
        ({"paths": {"lakehouse": 3}}, r"^paths\.lakehouse: expected a string"),
        ({"generator": {"seed": "x"}}, r"^generator\.seed: expected an integer"),
        ({"generator": {"scale": "huge"}}, r"^generator\.scale: must be 'small' or 'default'"),
        ({"ingest": {"valid_from": "2040-01-01"}}, r"^ingest\.valid_from: must be before"),
        ({"ingest": {"valid_to": "yesterday"}}, r"^ingest\.valid_to: expected a date"),
        (
            {"spatial": {"grid_resolution": 16}},
            r"^spatial\.h3_resolutions: H3 resolution must be 0\.\.15",
        ),
        ({"spatial": {"h3_resolutions": "6"}}, r"^spatial\.h3_resolutions: expected a list"),
        ({"timeseries": {"level": "city"}}, r"^timeseries\.level: must be"),
        ({"decisions": {"service_level": 1.5}}, r"^decisions\.service_level: must be in"),
        ({"nope": {}}, r"^nope: unknown key"),
        ({"spark": {"extra_jars_dirs": ".jars/s3a"}}, r"^spark\.extra_jars_dirs: expected a list"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "not-int",
        "bad-scale",
        "date-order",
        "bad-date",
        "h3-range",
        "not-a-list",
        "bad-level",
        "service-level",
        "unknown-section",
        "extra-jars-not-a-list",
    ],
)
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, env={})


@pytest.mark.parametrize("profile", ["local", "cluster", "databricks", "kubernetes"])
def test_shipped_profiles_load(profile):
    cfg = load_config(profile, env={})
    assert dataclasses.is_dataclass(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.paths.lakehouse = "elsewhere"  # type: ignore[misc]


def test_cluster_profile_has_no_master_and_lists_packages():
    cfg = load_config("cluster", env={})
    assert cfg.spark.master is None
    assert any(p.startswith("org.apache.sedona:sedona-spark-shaded") for p in cfg.spark.packages)
    assert any(p.startswith("io.delta:delta-spark") for p in cfg.spark.packages)


def test_environment_overrides_paths_only():
    cfg = load_config("local", env={"SHIKONG_LAKEHOUSE": "s3a://bucket/lh", "SHIKONG_SEED": "9"})
    assert cfg.paths.lakehouse == "s3a://bucket/lh"
    assert cfg.paths.landing_dir == "s3a://bucket/lh/landing"
    assert cfg.generator.seed == 42


def test_cli_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spark:\n  master: local[2]\n  colour: blue\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        cli_main(["tables", "--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "shikong: config error: spark.colour: unknown key "
        "(allowed: app_name, conf, extra_jars_dirs, jars_dir, log_level, master, packages)"
    ]


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^config: file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_the_wheel_carries_the_profiles_where_load_config_looks():
    import sys
    import tomllib
    from pathlib import Path

    from shikong.config import CONF_DIRS

    root = Path(__file__).resolve().parents[1]
    data_files = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    (target,) = [k for k, v in data_files.items() if v == ["conf/*.yaml"]]
    assert Path(sys.prefix) / target in CONF_DIRS
