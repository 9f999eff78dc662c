"""Corruption corpus: every physical record of a damaged landing file is accounted for.

The corpus is built here from the generator's small-world files, damaged the ways upstream
files break (cut short, other encodings, changed headers, duplicates, foreign date formats,
nothing in them). Each damage gets its own file of distinct clean records. Per file, the
test reads the records from the file's bytes itself (Python's csv and json, not Spark) and
checks: rows in = accepted + quarantined = that count; every accepted row is one of the
file's records (nothing invented); every quarantined row keeps one record's raw values;
the damage gets its reason. One small ingest serves every case.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from shikong import schemas as S
from shikong.config import Paths
from shikong.generator.dirty import FRESH_KEY_BASE
from shikong.io.catalog import Catalog
from shikong.stages.context import StageContext
from shikong.stages.generate import run as generate
from shikong.stages.ingest import ingest_landing

#: Clean records per damaged file: enough for every damage, few for speed.
SLICE = 10

Damage = Callable[[str, list[str]], bytes]


def _csv(
    header: str, lines: list[str], *, sep: str = "\n", end: str = "\n", enc: str = "utf-8"
) -> bytes:
    return (sep.join([header, *lines]) + end).encode(enc)


def _columns(line: str, fn: Callable[[list[str]], list[str]]) -> str:
    return ",".join(fn(line.split(",")))


def _cut(line: str) -> str:
    # Ends two characters into the fourth field: too few fields, whatever the values.
    at = [m.start() for m in re.finditer(",", line)][2]
    return line[: at + 3]


def _swap_lat_lon(v: list[str]) -> list[str]:
    return [*v[:3], v[4], v[3], *v[5:]]


def _drop_state(v: list[str]) -> list[str]:
    return [*v[:2], *v[3:]]


def _reshaped(fn: Callable[[list[str]], list[str]]) -> Damage:
    """The same change of columns in the header and in every record."""
    return lambda h, ls: _csv(_columns(h, fn), [_columns(x, fn) for x in ls])


def _other_dates(lines: list[str]) -> list[str]:
    styles = ("%d/%m/%Y", "%Y/%m/%d", "%Y%m%d", "%d %b %Y")
    out = list(lines)
    for i, style in enumerate(styles):
        *rest, day = out[i].split(",")
        out[i] = ",".join([*rest, dt.date.fromisoformat(day).strftime(style)])
    return out


def _drop_event_id(lines: list[str]) -> list[str]:
    first = json.loads(lines[0])
    del first["event_id"]
    return [json.dumps(first, separators=(",", ":")), *lines[1:]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One damaged file.

    Attributes:
        id: Case id, also the file's name.
        source: ``customers`` (CSV) or ``events`` (JSON lines).
        damage: (header, clean record lines) -> the file's bytes.
        reasons: Quarantined rows by reason, from the clean lines the file was made of.
        encoding: What the bytes really are (how the oracle reads the records).
    """

    id: str
    source: str
    damage: Damage
    reasons: Callable[[list[str]], dict[str, int]]
    encoding: str = "utf-8"

    @property
    def file(self) -> str:
        return f"{self.source}/{self.id}.{'csv' if self.source == 'customers' else 'jsonl'}"


def _none(_: list[str]) -> dict[str, int]:
    return {}


def _all(reason: str) -> Callable[[list[str]], dict[str, int]]:
    return lambda lines: {reason: len(lines)}


def _n(reason: str, n: int) -> Callable[[list[str]], dict[str, int]]:
    return lambda _: {reason: n}


CASES = [
    Case(
        "truncated-last-line",
        "customers",
        lambda h, ls: _csv(h, [*ls[:-1], _cut(ls[-1])], end=""),
        _n("MALFORMED_ROW", 1),
    ),
    Case("utf8-bom", "customers", lambda h, ls: b"\xef\xbb\xbf" + _csv(h, ls), _none),
    Case(
        "latin1-bytes",
        "customers",
        lambda h, ls: _csv(h, ls, enc="latin-1"),
        lambda ls: {"MALFORMED_ROW": sum(not line.isascii() for line in ls)},
        encoding="latin-1",
    ),
    Case(
        "extra-column",
        "customers",
        lambda h, ls: _csv(h + ",note", [line + ",x" for line in ls]),
        _all("BAD_HEADER"),
    ),
    Case("missing-column", "customers", _reshaped(_drop_state), _all("BAD_HEADER")),
    Case(
        "renamed-header",
        "customers",
        lambda h, ls: _csv(h.replace("signup_date", "signup_day"), ls),
        _all("BAD_HEADER"),
    ),
    Case("reordered-columns", "customers", _reshaped(_swap_lat_lon), _all("BAD_HEADER")),
    Case(
        "duplicated-rows",
        "customers",
        lambda h, ls: _csv(h, [*ls, *ls[:3]]),
        _n("DUPLICATE", 3),
    ),
    Case(
        "other-date-formats",
        "customers",
        lambda h, ls: _csv(h, _other_dates(ls)),
        _n("BAD_TIMESTAMP", 4),
    ),
    Case(
        "extra-field-in-a-row",
        "customers",
        lambda h, ls: _csv(h, [ls[0] + ",x", *ls[1:]]),
        _n("MALFORMED_ROW", 1),
    ),
    Case(
        "crlf-and-blank-lines",
        "customers",
        lambda h, ls: _csv(h, [x for line in ls for x in (line, "")], sep="\r\n", end="\r\n"),
        _none,
    ),
    Case("empty-file", "customers", lambda h, ls: b"", _none),
    Case("header-only", "customers", lambda h, ls: _csv(h, []), _none),
    Case(
        "jsonl-truncated-last-line",
        "events",
        lambda h, ls: "\n".join([*ls[:-1], ls[-1][: len(ls[-1]) // 2]]).encode(),
        _n("MALFORMED_ROW", 1),
    ),
    Case(
        "jsonl-utf8-bom",
        "events",
        lambda h, ls: ("\ufeff" + "\n".join(ls) + "\n").encode(),
        _none,
    ),
    Case(
        "jsonl-duplicated-rows",
        "events",
        lambda h, ls: "\n".join([*ls, *ls[:2]]).encode() + b"\n",
        _n("DUPLICATE", 2),
    ),
    Case(
        "jsonl-missing-key",
        "events",
        lambda h, ls: "\n".join(_drop_event_id(ls)).encode() + b"\n",
        _n("MISSING_KEY", 1),
    ),
    Case("jsonl-empty-file", "events", lambda h, ls: b"", _none),
]

COLUMNS = {"customers": S.CUSTOMERS.columns, "events": S.EVENTS.columns}


# --- the test's own reading of a file: records straight from its bytes -------------------


def _records(source: str, data: bytes, encoding: str) -> list[list[str] | dict | str]:
    """The file's records: CSV rows after the header, JSON objects (or the line when it is
    not one), blank lines skipped."""
    text = data.decode(encoding, errors="replace").removeprefix("\ufeff")
    if source == "events":
        out: list[list[str] | dict | str] = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    out.append(line)
        return out
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return list(rows[1:])


def _lines(data: bytes) -> set[str]:
    """The file's non-blank lines as a UTF-8 reader sees them (for lines kept whole)."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    return {line for line in text.splitlines() if line.strip()}


def _norm(v: object) -> object:
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)


def _as_row(source: str, record: list[str] | dict | str) -> tuple[object, ...] | None:
    """A record as a tuple of normalised landing values (None if it has no such shape)."""
    cols = COLUMNS[source]
    if isinstance(record, dict):
        return tuple(_norm(record.get(c)) for c in cols)
    if isinstance(record, list) and len(record) == len(cols):
        return tuple(_norm(v) for v in record)
    return None


# --- one corpus, one ingest ---------------------------------------------------------------


def _clean_records(landing: Path, source: str) -> list[str]:
    """Clean record lines of a generated file: not one of the generator's dirty copies
    (those carry fresh keys from a reserved range, or repeat a clean line)."""
    if source == "customers":
        lines = (landing / "customers" / "customers.csv").read_text("utf-8").splitlines()[1:]
        keys = [line.split(",")[0] for line in lines]
        prefix, base = "C", FRESH_KEY_BASE["customers"]
    else:
        lines = (landing / "events" / "events-2023-01.jsonl").read_text("utf-8").splitlines()
        keys = [json.loads(line).get("event_id") or "" for line in lines]
        prefix, base = "E", FRESH_KEY_BASE["events"]
    seen: set[str] = set()
    out = []
    for key, line in zip(keys, lines, strict=True):
        if re.fullmatch(rf"{prefix}\d+", key) and int(key[1:]) < base and key not in seen:
            seen.add(key)
            out.append(line)
    return out


@dataclasses.dataclass(frozen=True)
class Corpus:
    data: dict[str, bytes]  # file -> bytes written
    clean: dict[str, list[str]]  # file -> the clean lines it was made of
    log: dict[str, tuple[int, int, int]]  # file -> rows in, accepted, quarantined
    accepted: dict[str, list[tuple[object, ...]]]  # file -> accepted rows, normalised
    quarantined: dict[str, list[tuple[str, dict]]]  # file -> (reason, raw values)


@pytest.fixture(scope="module")
def corpus(spark, base_config, tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("corruption")
    world = dataclasses.replace(base_config, paths=Paths(lakehouse=str(root / "world")))
    generate(world, scale="small", seed=5)
    generated = Path(world.paths.landing_dir)
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(root / "lakehouse")))
    landing = Path(cfg.paths.landing_dir)

    # The catalogue as generated: the events' SKUs must be known.
    (landing / "products").mkdir(parents=True)
    products = (generated / "products" / "products.csv").read_bytes()
    (landing / "products" / "products.csv").write_bytes(products)
    header = (generated / "customers" / "customers.csv").read_text("utf-8").splitlines()[0]
    pools = {s: _clean_records(generated, s) for s in COLUMNS}
    data, clean = {}, {}
    for i, case in enumerate(CASES):
        lines = pools[case.source][i * SLICE : (i + 1) * SLICE]
        assert len(lines) == SLICE, f"{case.id}: the small world has too few clean records"
        path = landing / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        data[case.file] = case.damage(header if case.source == "customers" else "", lines)
        path.write_bytes(data[case.file])
        clean[case.file] = lines

    ingest_landing(StageContext.create(spark, cfg), sources=("products", *COLUMNS))
    catalog = Catalog(cfg.paths.lakehouse)
    log = {
        r["source_file"]: (r["rows_in"], r["rows_accepted"], r["rows_rejected"])
        for r in catalog.read(spark, "ops.run_log").collect()
    }
    accepted: dict[str, list[tuple[object, ...]]] = {}
    for source, cols in COLUMNS.items():
        table = catalog.read(spark, f"bronze.{source}")
        # Timestamps as the files write them (not through the Python process's time zone).
        as_text = {
            f.name: F.date_format(f.name, "yyyy-MM-dd'T'HH:mm:ss")
            for f in table.schema.fields
            if isinstance(f.dataType, TimestampType)
        }
        for r in table.withColumns(as_text).select(*cols, "_source_file").collect():
            accepted.setdefault(r["_source_file"], []).append(tuple(_norm(r[c]) for c in cols))
    quarantined: dict[str, list[tuple[str, dict]]] = {}
    for r in catalog.read(spark, "bronze.quarantine").collect():
        quarantined.setdefault(r["source_file"], []).append((r["reason"], json.loads(r["raw"])))
    return Corpus(data, clean, log, accepted, quarantined)


IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_record_is_accounted_for(corpus, case):
    n = len(_records(case.source, corpus.data[case.file], case.encoding))
    assert corpus.log[case.file] == (
        n,
        len(corpus.accepted.get(case.file, [])),
        len(corpus.quarantined.get(case.file, [])),
    )
    rows_in, accepted, quarantined = corpus.log[case.file]
    assert rows_in == accepted + quarantined


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_damage_gets_its_reason(corpus, case):
    want = case.reasons(corpus.clean[case.file])
    got = Counter(reason for reason, _ in corpus.quarantined.get(case.file, []))
    assert dict(got) == {k: v for k, v in want.items() if v}
    if case.id == "latin1-bytes":  # the slice must hold both kinds of record
        assert 0 < want["MALFORMED_ROW"] < SLICE


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nothing_is_invented(corpus, case):
    records = _records(case.source, corpus.data[case.file], case.encoding)
    known = Counter(_as_row(case.source, r) for r in records)
    got = Counter(corpus.accepted.get(case.file, []))
    assert not got - known, f"{case.id}: accepted rows that are not records of the file"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_quarantine_keeps_the_raw_record(corpus, case):
    # The raw values as a UTF-8 reader sees the bytes: what the quarantine can keep.
    data = corpus.data[case.file]
    records = Counter(_as_row(case.source, r) for r in _records(case.source, data, "utf-8"))
    lines = _lines(data)
    for reason, raw in corpus.quarantined.get(case.file, []):
        if raw.get(S.CORRUPT) is not None:
            assert raw[S.CORRUPT] in lines, (reason, raw)
        else:
            values = tuple(_norm(raw.get(c)) for c in COLUMNS[case.source])
            assert records[values] > 0, (reason, raw)
