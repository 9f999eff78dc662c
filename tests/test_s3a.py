"""The lakehouse on ``s3a://``: an S3 emulator on 127.0.0.1, reached the way a deployment
reaches S3 (``AWS_ENDPOINT_URL`` and credentials in the environment, nothing in config).

Delta with Sedona geometry runs in a Spark session of its own (``tests/s3a_child.py``, a
subprocess: this process may hold the shared session, which has neither the s3a jars nor
the endpoint). The side files go through :mod:`shikong.io.fs` (pyarrow) in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import shapely

from conftest import REPO_ROOT, TEST_SPARK_CONF
from s3_emulator import FAKE_KEY_ID, FAKE_SECRET, S3Emulator, list_keys
from shikong.config import ConfigError
from shikong.io import fs
from shikong.session import resolve_extra_jars, s3a_endpoint_conf

ENDPOINT = "spark.hadoop.fs.s3a.endpoint"
PATH_STYLE = "spark.hadoop.fs.s3a.path.style.access"
SSL = "spark.hadoop.fs.s3a.connection.ssl.enabled"


def test_endpoint_variable_becomes_s3a_settings() -> None:
    got = s3a_endpoint_conf(env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}, conf={})
    assert got == {ENDPOINT: "http://127.0.0.1:9000", PATH_STYLE: "true", SSL: "false"}


def test_the_s3_only_endpoint_variable_wins() -> None:
    env = {"AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"}
    assert s3a_endpoint_conf(env=env, conf={})[ENDPOINT] == "http://s3:2"


def test_https_endpoint_keeps_tls_and_config_keys_win() -> None:
    got = s3a_endpoint_conf(
        env={"AWS_ENDPOINT_URL": "https://s3.example.org"}, conf={PATH_STYLE: "false"}
    )
    assert got == {ENDPOINT: "https://s3.example.org"}


def test_no_endpoint_no_settings_and_never_credentials() -> None:
    env = {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET}
    assert s3a_endpoint_conf(env=env, conf={}) == {}
    with_endpoint = s3a_endpoint_conf(env={**env, "AWS_ENDPOINT_URL": "http://h:1"}, conf={})
    assert FAKE_SECRET not in json.dumps(with_endpoint)
    assert FAKE_KEY_ID not in json.dumps(with_endpoint)


def test_extra_jars_folder_without_jars_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^spark\.extra_jars_dirs: no jars in .*make setup"):
        resolve_extra_jars([str(tmp_path)])
    (tmp_path / "hadoop-aws-3.4.1.jar").write_bytes(b"")
    assert resolve_extra_jars([str(tmp_path)]) == [str(tmp_path / "hadoop-aws-3.4.1.jar")]


def test_side_files_round_trip_on_s3a(
    s3: S3Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = f"s3a://{s3.bucket}/lake"
    meta = fs.join(root, "ml", "meta.json")
    fs.write_text(meta, '{"a": 1}')
    fs.write_text(fs.join(root, "gold", "x", "part.txt"), "x")
    assert fs.read_text(meta) == '{"a": 1}'
    assert fs.is_file(meta) and fs.exists(fs.join(root, "ml"))
    assert not fs.is_file(fs.join(root, "ml"))
    assert fs.listdir(root) == ["gold", "ml"]
    assert fs.listdir(fs.join(root, "nope")) == []
    # The objects are in the bucket (pyarrow may add empty folder markers ending in "/").
    objects = [k for k in list_keys(s3) if not k.endswith("/")]
    assert objects == ["lake/gold/x/part.txt", "lake/ml/meta.json"]
    fs.delete(fs.join(root, "ml"))
    assert not fs.exists(meta) and fs.listdir(root) == ["gold"]
    fs.delete(fs.join(root, "ml"))  # deleting what is gone is not an error
    assert list(tmp_path.iterdir()) == []  # nothing went to a local "s3a:" folder


def _child_config() -> dict[str, object]:
    conf = {**TEST_SPARK_CONF, "spark.driver.memory": "1g"}
    return {
        "spark": {
            "master": "local[2]",
            "app_name": "shikong-s3a-test",
            "jars_dir": str(REPO_ROOT / ".jars" / "lib"),
            "extra_jars_dirs": [str(REPO_ROOT / ".jars" / "s3a")],
            "log_level": "ERROR",
            "conf": conf,
        },
    }


def _frame(records: list[dict[str, object]]) -> pd.DataFrame:
    out = pd.DataFrame(records)[["shop", "day", "sales", "geom_wkb"]]
    wkb = out.pop("geom_wkb").map(bytes.fromhex)
    out["wkt"] = [shapely.from_wkb(b).wkt for b in wkb]
    return out


def test_delta_merge_and_read_on_s3a(s3: S3Emulator, tmp_path: Path) -> None:
    lakehouse = f"s3a://{s3.bucket}/lake"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {
        **os.environ,
        "SHIKONG_LAKEHOUSE": lakehouse,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT / "lib"), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "s3a_child.py"), json.dumps(_child_config())],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = json.loads(lines[-1].removeprefix("RESULT "))

    # create, one MERGE (1 insert, 1 update), then the same rows again: nothing changes
    # (Delta may or may not commit that empty MERGE, as on local files).
    assert got["writes"][:2] == [["WRITE", 0, 2, 0], ["MERGE", 1, 1, 1]]
    assert got["writes"][2][2:] == [0, 0]
    last_version = got["writes"][2][1]
    expected_now = pd.DataFrame(
        {
            "shop": ["a", "b", "c"],
            "day": ["d1", "d1", "d2"],
            "sales": [1.0, 5.0, 3.0],
            "wkt": ["POINT (-46.6 -23.5)", "POINT (-43.2 -22.9)", "POINT (-51.2 -30)"],
        }
    )
    pd.testing.assert_frame_equal(_frame(got["now"]), expected_now)
    pd.testing.assert_frame_equal(
        _frame(got["first"]), expected_now.iloc[:2].assign(sales=[1.0, 2.0])
    )
    assert got["inside"] == 2
    assert got["tables"] == [["silver.shops", f"{lakehouse}/silver/shops", 3, last_version]]

    # The endpoint came from AWS_ENDPOINT_URL; the credentials stayed in the environment.
    conf = got["conf"]
    assert conf[ENDPOINT] == s3.endpoint
    assert (conf[PATH_STYLE], conf[SSL]) == ("true", "false")
    assert not any(FAKE_SECRET in v or FAKE_KEY_ID in v for v in conf.values())
    assert any(j.endswith(".jar") and "hadoop-aws-" in j for j in conf["spark.jars"].split(","))

    # Everything is in the bucket: Delta's log and partitioned Parquet files...
    keys = list_keys(s3)
    log = [k for k in keys if k.startswith("lake/silver/shops/_delta_log/")]
    assert "lake/silver/shops/_delta_log/00000000000000000000.json" in log
    assert "lake/silver/shops/_delta_log/00000000000000000001.json" in log
    assert any(k.startswith("lake/silver/shops/day=d2/") and k.endswith(".parquet") for k in keys)
    # ... and nothing was written locally under the child's working directory.
    assert list(workdir.iterdir()) == []
