"""One writer per lakehouse: the run lock ``<lakehouse>/_lock``.

``shikong run`` and every stage command take the lock before they touch the lakehouse and
give it back when they end, so two runs on one lakehouse never interleave their writes
(two MERGEs into ``ops.run_log`` at once, or one run overwriting a table the other reads).
A second run stops at once with one line naming the holder and the fix.

On the local filesystem the lock file is created atomically (``O_CREAT | O_EXCL``) and
holds the holder's pid, host, run id, command and start time. A holder killed outright
(``kill -9``, a crashed machine) cannot remove its lock: a lock whose pid is no longer
alive on this host is stale and is taken over with a warning. A lock held from another
host cannot be checked and is never taken over (the message names the file to remove).

Object stores (``s3a://``, ``abfss://``...) and the Databricks mounts (``dbfs:``,
``/dbfs``, ``/Volumes``) get no lock file: they have no atomic create-if-absent that every
writer honours, and a Databricks job runs its stages as tasks of one task graph, which
orders the writers. There each Delta commit is guarded by Delta's optimistic concurrency
(a conflicting concurrent commit fails with a ``Concurrent...Exception``, it is never
half-applied), which is the guard of last resort everywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from shikong.io import fs

log = logging.getLogger(__name__)

#: The lock file at the lakehouse root.
LOCK_FILE = "_lock"

#: Local paths that are shared mounts of Databricks (no lock, see the module docstring).
_SHARED_MOUNTS = ("/dbfs/", "/Volumes/")

#: Lakehouses (lock file paths) this process holds, so nested commands do not re-lock.
_held: set[str] = set()


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


#: Seconds after which a lock file without a readable holder counts as abandoned.
UNREADABLE_GRACE_S = 5.0


def _read(path: str) -> Holder | None:
    """The holder in a lock file; ``None`` if the file is gone.

    A file without a readable holder is a holder between create and write (young file:
    read as alive, pid -1) or one killed right there (older than
    :data:`UNREADABLE_GRACE_S`: pid 0, stale).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    try:
        doc: dict[str, Any] = json.loads(text)
        return Holder(
            int(doc["pid"]),
            str(doc["host"]),
            str(doc["run_id"]),
            str(doc.get("command", "?")),
            str(doc.get("started_at", "?")),
        )
    except (ValueError, KeyError, TypeError):
        pid = 0 if age > UNREADABLE_GRACE_S else -1
        return Holder(pid, socket.gethostname(), "?", "unreadable lock file", "?")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:  # os.kill(0 or -1, ...) would signal a group / every process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def is_stale(holder: Holder) -> bool:
    """A lock of this host whose process is gone (another host's lock is never stale,
    nor one still being written: pid -1)."""
    if holder.host != socket.gethostname() or holder.pid == -1:
        return False
    return not pid_alive(holder.pid)


def _create(path: str, holder: Holder) -> bool:
    """Create the lock file atomically; ``False`` if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(asdict(holder), indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def _take_over(path: str, stale: Holder) -> None:
    """Move a stale lock aside (atomically: of two runs taking it over, one renames it).

    If what was moved is not the stale lock judged (another run replaced it in between),
    it is put back.
    """
    aside = f"{path}.stale-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another run moved it first; try to create ours again
    moved = _read(aside)
    if moved != stale:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    else:
        log.warning(
            "taking over the stale lock of %s: that process is gone (killed?); "
            "its unfinished stages stay STARTED in ops.run_log",
            stale.describe(),
        )
    os.remove(aside)


def acquire(lakehouse: str, run_id: str, command: str) -> str | None:
    """Take the lakehouse's lock.

    Returns:
        The lock file's path (give it to :func:`release`), or ``None`` where no lock is
        taken (object stores, Databricks mounts, or this process holds it already).

    Raises:
        LakehouseLockedError: When another live run holds it: one line naming the holder,
            and the fix (wait for it, or remove the lock file if that run is gone).
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
    for _ in range(10):
        if _create(path, me):
            _held.add(path)
            return path
        holder = _read(path)
        if holder is None:
            continue  # released in between
        if not is_stale(holder):
            raise LakehouseLockedError(
                f"lakehouse {fs.local_path(lakehouse)} is in use by {holder.describe()}: "
                f"wait for it to finish, or remove {path} if that run is gone"
            )
        _take_over(path, holder)
    raise LakehouseLockedError(f"could not take the lock {path}: it keeps changing hands")


def release(path: str | None) -> None:
    """Give a lock back: remove the file if it is still this process's."""
    if path is None:
        return
    _held.discard(path)
    holder = _read(path)
    if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


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
