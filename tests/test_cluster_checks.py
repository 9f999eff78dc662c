"""The one-line diagnoses of a mis-submitted cluster run (no cluster needed here; the
cluster test submits the broken runs for real)."""

from __future__ import annotations

import socket

import pytest

from shikong import cluster_checks
from shikong.io import fs


@pytest.mark.parametrize(
    ("entry", "local"),
    [
        ("dist/env.tar.gz#environment", "dist/env.tar.gz"),
        ("/abs/env.tar.gz", "/abs/env.tar.gz"),
        ("file:/abs/env.tar.gz#environment", "/abs/env.tar.gz"),
        ("local:/opt/env.tar.gz#environment", "/opt/env.tar.gz"),
        ("s3a://bucket/env.tar.gz#environment", None),
        ("hdfs:///envs/env.tar.gz", None),
    ],
    ids=["relative", "absolute", "file-uri", "local-uri", "s3a", "hdfs"],
)
def test_local_archive_of_an_archives_entry(entry, local):
    assert cluster_checks._local_archive(entry) == local


def test_unreachable_master_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        why = cluster_checks._unreachable(f"spark://127.0.0.1:{port}")
    assert why is not None and f"127.0.0.1:{port}" in why


def test_reachable_master_is_not_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        # The second of two masters (standalone HA) answers: reachable.
        assert cluster_checks._unreachable(f"spark://127.0.0.1:1,127.0.0.1:{port}") is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('java.io.IOException: Cannot run program "./environment/bin/python": error=2, '
         "No such file or directory", "Cannot run program"),
        ("Traceback ...\nModuleNotFoundError: No module named 'shikong'\n\tat x",
         "ModuleNotFoundError: No module named 'shikong'"),
        ("[PYTHON_VERSION_MISMATCH] Python in worker has different version: 3.12 than "
         "that in driver: 3.11", "PYTHON_VERSION_MISMATCH"),
        ("first\nsomething else went wrong", "something else went wrong"),
    ],
    ids=["no-interpreter", "no-shikong", "version-mismatch", "other"],
)
def test_executor_failure_picks_the_telling_line(text, line):
    assert line in cluster_checks._executor_failure(text)


def test_check_writable_passes_on_a_writable_folder(tmp_path):
    fs.check_writable(str(tmp_path / "lakehouse"))
    assert fs.listdir(str(tmp_path / "lakehouse")) == []  # the probe is gone


@pytest.mark.parametrize(
    "uri", ["/proc/shikong-lakehouse", "s3a://bucket-without-endpoint/x"], ids=["proc", "s3a"]
)
def test_check_writable_names_the_uri(uri, monkeypatch):
    # No endpoint, no credentials, no metadata lookups: an s3a URI that cannot be written.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(fs.StorageError, match="is not writable") as err:
        fs.check_writable(uri)
    assert uri in str(err.value) and "\n" not in str(err.value)
