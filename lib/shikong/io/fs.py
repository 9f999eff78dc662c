"""Files under lakehouse URIs: the one place the driver touches storage outside Spark.

Lakehouse locations are URIs, never ``pathlib`` paths: a plain path or ``file:`` URI is
the local filesystem, ``s3a://``/``s3://`` an object store, ``/Volumes/...`` (Unity
Catalog volumes) and ``/dbfs/...`` the FUSE mounts Databricks gives every driver, and
``dbfs:/x`` maps to ``/dbfs/x`` there. Small side files (``meta.json``, checkpoints,
world fingerprints) go through ``pyarrow.fs``, which works on the driver and in training
processes without a JVM, so the same calls work under Spark Connect.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from typing import IO, cast
from urllib.parse import urlparse

import pyarrow.fs as pafs

#: URI schemes pyarrow names differently from Hadoop.
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}


class StorageError(OSError):
    """A lakehouse location that cannot be used, with a one-line reason."""


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for a URI or a path (no ``os.path``: URIs keep their slashes)."""
    out = base.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def scheme(uri: str) -> str:
    """The URI's scheme, ``""`` for a plain path (Windows drive letters count as paths)."""
    s = urlparse(uri).scheme
    return "" if len(s) <= 1 else s.lower()


def is_local(uri: str) -> bool:
    """Whether ``uri`` is on this machine's filesystem (incl. Databricks FUSE mounts)."""
    return scheme(uri) in ("", "file", "dbfs")


def local_path(uri: str) -> str:
    """The local filesystem path of a local URI (absolute).

    Raises:
        StorageError: If ``uri`` is not local (an object store needs :func:`filesystem`).
    """
    s = scheme(uri)
    if s == "":
        return os.path.abspath(uri)
    parsed = urlparse(uri)
    if s == "file":
        return os.path.abspath(parsed.path)
    if s == "dbfs":
        return "/dbfs" + (parsed.path if parsed.path.startswith("/") else "/" + parsed.path)
    raise StorageError(f"{uri}: not a local path ({s}://)")


def spark_uri(uri: str) -> str:
    """The URI Spark should see: local paths become absolute ``file:`` URIs."""
    s = scheme(uri)
    if s == "":
        return "file:" + os.path.abspath(uri)
    return uri


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for ``uri``.

    Raises:
        StorageError: For a scheme pyarrow cannot open, naming it.
    """
    if is_local(uri):
        return pafs.LocalFileSystem(), local_path(uri)
    s = scheme(uri)
    fixed = uri.replace(f"{s}://", f"{_SCHEME_ALIASES.get(s, s)}://", 1)
    try:
        fs, path = pafs.FileSystem.from_uri(fixed)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StorageError(f"{uri}: cannot open {s}:// storage from Python ({exc})") from None
    return fs, path


def exists(uri: str) -> bool:
    """Whether a file or folder exists at ``uri``."""
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_file(uri: str) -> bool:
    """Whether a file exists at ``uri``."""
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type == pafs.FileType.File


def size(uri: str) -> int:
    """Size in bytes of the file at ``uri``."""
    fs, path = filesystem(uri)
    return int(fs.get_file_info(path).size or 0)


def makedirs(uri: str) -> None:
    """Create the folder ``uri`` and its parents (a no-op on object stores)."""
    fs, path = filesystem(uri)
    fs.create_dir(path, recursive=True)


def delete(uri: str) -> None:
    """Remove a file or a whole folder; nothing happens if it does not exist."""
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def listdir(uri: str) -> list[str]:
    """Names directly under the folder ``uri``, sorted (``[]`` if it does not exist)."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return sorted(posixpath.basename(i.path.rstrip("/")) for i in infos)


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[IO[bytes]]:
    """Read a file as a binary stream."""
    fs, path = filesystem(uri)
    with fs.open_input_file(path) as f:
        yield cast(IO[bytes], f)


@contextlib.contextmanager
def open_output(uri: str) -> Iterator[IO[bytes]]:
    """Write a file as a binary stream (parents created; replaces an existing file).

    On the local filesystem the bytes go to a temporary file that is renamed into place
    when the block ends, so a killed writer never leaves half a file under the name.
    """
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                yield f
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    # Object stores publish an object only when the upload completes.
    with fs.open_output_stream(path) as f:
        yield cast(IO[bytes], f)


def read_text(uri: str) -> str:
    """A whole text file (UTF-8)."""
    with open_input(uri) as f:
        return f.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    """Write a whole text file (UTF-8), atomically where the storage allows."""
    with open_output(uri) as f:
        f.write(text.encode("utf-8"))


def check_writable(uri: str) -> None:
    """Write and remove a small probe file in the folder ``uri`` (created if missing).

    Raises:
        StorageError: Naming ``uri`` and the storage's reason, when it cannot be written
            (a missing bucket, no permission, a read-only mount, a scheme without a driver).
    """
    probe = join(uri, f"_write_probe_{uuid.uuid4().hex}")
    try:
        write_text(probe, "shikong write probe\n")
        delete(probe)
    except (OSError, ValueError) as exc:  # pyarrow's errors are OSError / ArrowInvalid
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"{uri} is not writable ({reason})") from None
