"""One writer per lakehouse: the run lock ``<lakehouse>/_lock``.

``shikong run``, every stage command and ``generate`` take the lock before they touch the
lakehouse and give it back when they end, so two runs on one lakehouse never interleave
their writes (two MERGEs into ``ops.run_log`` at once, or one run overwriting a table the
other reads). A second run stops at once with one line naming the holder.

The lock is an exclusive ``flock`` on the lock file, held on an open descriptor for the
whole run; the file's text only names the holder (pid, host, run id, command, start) for
the message. The kernel frees a ``flock`` when its holder ends in any way (``kill -9``
included), so there is no guessing from pids whether a holder is alive: pid reuse, zombie
processes and containers that share a hostname but not a pid namespace cannot fool it. A
lock file left by a killed run is simply locked again by the next run, which says so in a
warning. A child that was forked (not exec'd) while the lock was held shares it and keeps
the lakehouse locked until it ends too.

Release deletes the file while still locked. A run that opened the old file in between
finds, once it holds the lock, that the path no longer names what it locked, and starts
over: of any number of runs started together, exactly one holds the lakehouse.

Object stores (``s3a://``, ``abfss://``...) and the Databricks mounts (``dbfs:``,
``/dbfs``, ``/Volumes``) get no lock file: they have no locks that every writer honours,
and a Databricks job runs its stages as tasks of one task graph, which orders the writers.
There each Delta commit is guarded by Delta's optimistic concurrency (a conflicting
concurrent commit fails with a ``Concurrent...Exception``, it is never half-applied), which
is the guard of last resort everywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from shikong.io import fs

log = logging.getLogger(__name__)

#: The lock file at the lakehouse root.
LOCK_FILE = "_lock"

#: Local paths that are shared mounts of Databricks (no lock, see the module docstring).
_SHARED_MOUNTS = ("/dbfs/", "/Volumes/")

#: Lock files this process holds -> their locked descriptors. Nested commands of one
#: process do not lock again (a second ``flock`` on another descriptor would refuse it).
_held: dict[str, int] = {}


class LakehouseLockedError(RuntimeError):
    """Another live run holds the lakehouse (the message names it and the fix)."""


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the run that holds it."""

    pid: int
    host: str
    run_id: str
    command: str
    started_at: str

    def describe(self) -> str:
        """``run X (shikong run, pid 12 on host h, since 2025-01-01T10:00:00Z)``."""
        return (
            f"run {self.run_id} ({self.command}, pid {self.pid} on host {self.host}, "
            f"since {self.started_at})"
        )


def lock_path(lakehouse: str) -> str | None:
    """The local path of the lakehouse's lock file, ``None`` where no lock is taken."""
    if not fs.is_local(lakehouse) or fs.scheme(lakehouse) == "dbfs":
        return None
    root = fs.local_path(lakehouse)
    if any((root + "/").startswith(m) for m in _SHARED_MOUNTS):
        return None
    return os.path.join(root, LOCK_FILE)


def _holder_of(fd: int) -> Holder | None:
    """The holder named in an open lock file; ``None`` if it names none (empty: a holder
    between lock and write, or killed right there; not JSON: not ours to read)."""
    raw = os.pread(fd, 64 * 1024, 0)
    try:
        doc: dict[str, Any] = json.loads(raw.decode("utf-8"))
        return Holder(
            int(doc["pid"]),
            str(doc["host"]),
            str(doc["run_id"]),
            str(doc.get("command", "?")),
            str(doc.get("started_at", "?")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _still_at(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open on ``fd`` (not released and recreated)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def acquire(lakehouse: str, run_id: str, command: str) -> str | None:
    """Take the lakehouse's lock.

    Returns:
        The lock file's path (give it to :func:`release`), or ``None`` where no lock is
        taken (object stores, Databricks mounts, or this process holds it already).

    Raises:
        LakehouseLockedError: When another live run holds it: one line naming the holder.
    """
    path = lock_path(lakehouse)
    if path is None or path in _held:
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    me = Holder(
        os.getpid(),
        socket.gethostname(),
        run_id,
        command,
        dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_of(fd)
            os.close(fd)
            who = holder.describe() if holder else "another run (starting)"
            raise LakehouseLockedError(
                f"lakehouse {fs.local_path(lakehouse)} is in use by {who}: wait for it to "
                f"finish or stop it; its lock {path} is freed when that process ends"
            ) from None
        if not _still_at(path, fd):
            os.close(fd)  # released (and maybe recreated) between our open and our lock
            continue
        previous = _holder_of(fd)
        if previous is not None:
            log.warning(
                "taking over the stale lock of %s: that process ended without giving it "
                "back (killed?); its unfinished stages stay STARTED in ops.run_log",
                previous.describe(),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(me), indent=1) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
        _held[path] = fd
        return path
    raise LakehouseLockedError(f"could not take the lock {path}: it keeps changing hands")


def release(path: str | None) -> None:
    """Give a lock of this process back (delete the file, then unlock); others: no-op."""
    fd = None if path is None else _held.pop(path, None)
    if path is None or fd is None:
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    finally:
        os.close(fd)


def holds(lakehouse: str) -> bool:
    """Whether this process holds the lakehouse's lock (so no other local run is live)."""
    path = lock_path(lakehouse)
    return path is not None and path in _held


@contextlib.contextmanager
def locked(lakehouse: str, run_id: str, command: str) -> Iterator[None]:
    """Hold the lakehouse's lock for the block (see :func:`acquire`)."""
    path = acquire(lakehouse, run_id, command)
    try:
        yield
    finally:
        release(path)
