"""Which demo world a lakehouse holds: a fingerprint recorded beside the tables.

Insert-only MERGEs keep every row they ever saw, so ingesting a second, different world
(another seed, scale or start date) into the same lakehouse would mix the two and log
the newcomers as accepted. The fingerprint of the generated world (from the generator's
``_ground_truth/world.json``) is recorded at ``<lakehouse>/_world.json`` by the first
ingest; a different world is refused with a one-line error naming the fix. Landing
folders without a ``world.json`` (real upstream data) carry no fingerprint and are not
checked. The Olist files ingested into a lakehouse's own ``bronze`` (``shikong run
--source olist``) are recorded as :func:`olist`, so neither that data nor a generated
world, nor another set of Olist files, can be mixed into it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from shikong.io import fs
from shikong.schemas import GROUND_TRUTH_DIR

#: The fingerprint file at the lakehouse root.
RECORD = "_world.json"


class WorldMismatchError(RuntimeError):
    """The lakehouse holds another world than the one about to be ingested."""


def identity(seed: int, scale: dict[str, Any], start_date: str) -> dict[str, Any]:
    """What makes a world the same world: seed, scale parameters and start date."""
    return {"seed": int(seed), "scale": scale, "start_date": start_date}


def olist(files: Mapping[str, int]) -> dict[str, Any]:
    """The identity of the Olist files (name -> size in bytes) in a lakehouse's ``bronze``:
    another set of Olist files (the full data set, another subset) is another world."""
    return {"source": "olist", "files": dict(sorted(files.items()))}


def fingerprint(ident: dict[str, Any]) -> str:
    """A short, stable digest of a world identity."""
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def describe(ident: dict[str, Any]) -> str:
    """``seed 42, scale default, from 2023-01-01`` (or ``the Olist data``) for messages."""
    if ident.get("source") == "olist":
        rows = sum(ident.get("files", {}).values())
        return f"the Olist files of {rows:,} bytes"
    scale = ident.get("scale", {})
    name = scale.get("name", "?") if isinstance(scale, dict) else scale
    return f"seed {ident.get('seed')}, scale {name}, from {ident.get('start_date')}"


def landing_world(landing: str) -> dict[str, Any] | None:
    """The identity of the world in a landing folder, or ``None`` (no generated world)."""
    path = fs.join(landing, GROUND_TRUTH_DIR, "world.json")
    if not fs.is_file(path):
        return None
    doc = json.loads(fs.read_text(path))
    return identity(doc["seed"], doc["scale"], doc["start_date"])


def recorded_world(lakehouse: str) -> dict[str, Any] | None:
    """The identity recorded with the lakehouse, or ``None`` (nothing ingested yet)."""
    path = fs.join(lakehouse, RECORD)
    if not fs.is_file(path):
        return None
    doc = json.loads(fs.read_text(path))
    return dict(doc["world"])


def check(lakehouse: str, ident: dict[str, Any]) -> None:
    """Refuse a world other than the one the lakehouse holds.

    Raises:
        WorldMismatchError: One line naming both worlds and the fix.
    """
    held = recorded_world(lakehouse)
    if held is not None and fingerprint(held) != fingerprint(ident):
        raise WorldMismatchError(
            f"lakehouse {lakehouse} holds another world ({describe(held)}) than this one "
            f"({describe(ident)}): give this one a lakehouse of its own (--lakehouse), "
            "rerun with --fresh to replace it, or `make clean` first"
        )


def check_landing(lakehouse: str, ident: dict[str, Any] | None) -> None:
    """Refuse landing files into a lakehouse they do not belong in: another generated world
    (:func:`check`), or any landing file where the Olist data is.

    Raises:
        WorldMismatchError: One line naming the fix.
    """
    if ident is not None:
        check(lakehouse, ident)
        return
    held = recorded_world(lakehouse)
    if held is not None and held.get("source") == "olist":
        raise WorldMismatchError(
            f"lakehouse {lakehouse} holds {describe(held)}: ingest landing files into a "
            "lakehouse of their own (--lakehouse)"
        )


def record(lakehouse: str, ident: dict[str, Any]) -> None:
    """Record the world the lakehouse now holds (after :func:`check`)."""
    doc = {"fingerprint": fingerprint(ident), "world": ident}
    fs.write_text(fs.join(lakehouse, RECORD), json.dumps(doc, indent=2, sort_keys=True))
