"""Lakehouse URIs: local paths, file:, dbfs: and object stores through one small API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shikong.io import fs


@pytest.mark.parametrize(
    ("uri", "scheme", "local"),
    [
        ("lakehouse", "", True),
        ("/data/lake", "", True),
        ("file:/data/lake", "file", True),
        ("file:///data/lake", "file", True),
        ("dbfs:/mnt/lake", "dbfs", True),
        ("/Volumes/main/shikong/lake", "", True),
        ("s3a://bucket/lake", "s3a", False),
        ("abfss://c@acct.dfs.core.windows.net/lake", "abfss", False),
    ],
    ids=["relative", "absolute", "file-1", "file-3", "dbfs", "uc-volume", "s3a", "abfss"],
)
def test_scheme_and_locality(uri: str, scheme: str, local: bool) -> None:
    assert fs.scheme(uri) == scheme
    assert fs.is_local(uri) is local


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:/data/lake", "/data/lake"),
        ("file:///data/lake", "/data/lake"),
        ("dbfs:/mnt/lake", "/dbfs/mnt/lake"),
        ("/Volumes/main/s/lake", "/Volumes/main/s/lake"),
    ],
    ids=["file-1", "file-3", "dbfs", "uc-volume"],
)
def test_local_path(uri: str, path: str) -> None:
    assert fs.local_path(uri) == path


def test_relative_paths_resolve_against_the_working_directory(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert fs.local_path("lake/x") == str(tmp_path / "lake" / "x")
        assert fs.spark_uri("lake") == f"file:{tmp_path / 'lake'}"
    finally:
        os.chdir(cwd)


def test_join_keeps_uri_slashes() -> None:
    assert fs.join("s3a://b/lake/", "gold", "/hotspots/") == "s3a://b/lake/gold/hotspots"
    assert fs.join("file:/x", "y") == "file:/x/y"


def test_an_object_store_is_not_a_local_path() -> None:
    with pytest.raises(fs.StorageError, match="not a local path"):
        fs.local_path("s3a://bucket/lake")


def test_files_round_trip_and_listing(tmp_path: Path) -> None:
    root = f"file:{tmp_path}/lake"
    fs.write_text(fs.join(root, "ml", "meta.json"), '{"a": 1}')
    fs.makedirs(fs.join(root, "gold"))
    assert fs.read_text(fs.join(root, "ml", "meta.json")) == '{"a": 1}'
    assert fs.is_file(fs.join(root, "ml", "meta.json"))
    assert fs.exists(fs.join(root, "gold")) and not fs.is_file(fs.join(root, "gold"))
    assert fs.listdir(root) == ["gold", "ml"]
    assert fs.listdir(fs.join(root, "nope")) == []
    # The write went through a temporary name: nothing else is left beside the file.
    assert os.listdir(tmp_path / "lake" / "ml") == ["meta.json"]
    fs.delete(fs.join(root, "ml"))
    assert not fs.exists(fs.join(root, "ml"))
    fs.delete(fs.join(root, "ml"))  # deleting what is gone is not an error


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = str(tmp_path / "x.json")
    with pytest.raises(RuntimeError), fs.open_output(target) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert os.listdir(tmp_path) == []
