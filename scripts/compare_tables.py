#!/usr/bin/env python
"""Snapshot every table of a lakehouse and compare two snapshots (before/after a change).

    compare_tables.py snapshot LAKEHOUSE OUT.json     row count + content checksums per table
    compare_tables.py diff BEFORE.json AFTER.json     exit 1 if any table differs

A table is every Delta table at ``<lakehouse>/<layer>/<name>`` plus the Parquet shards of
the deep models (``ml/training_data/<kind>/<split>``); a table holding the rows of two
stages (``forecast_source``) is snapshot per part. Per table the snapshot holds:

* ``rows`` and the schema;
* ``checksum``: an order-independent sum of xxhash64 over every row, floating-point values
  rounded to ``--digits`` significant digits (so it is equal when the rows are);
* ``exact``: the same without rounding;
* per floating-point column, sum / sum of absolute values / min / max, compared with a
  relative tolerance: two runs that round a last bit differently are "equal within
  tolerance", not "different".

Columns that differ between two runs of the same code by design (run ids, wall-clock
times, durations, throughput, paths holding run ids) are left out; ``VOLATILE`` lists them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

#: Columns whose values change from run to run of the same code (ids, clocks, speeds).
VOLATILE = frozenset(
    {
        "run_id",
        "model_run_id",
        "mlflow_run_id",
        "started_at",
        "ended_at",
        "trained_at",
        "ingested_at",
        "_ingested_at",
        "_ingest_run_id",
        "quarantined_at",
        "seconds",
        "solve_seconds",
        "samples_per_s",
        "path",
    }
)
FLOAT_TYPES = ("double", "float")
#: Columns that split a table into parts snapshot apart (see :func:`snapshot_with`).
SPLIT_BY = ("forecast_source",)


def _tables(spark: Any, lakehouse: str) -> dict[str, str]:
    from shikong.io import fs

    out: dict[str, str] = {}
    for layer in fs.listdir(lakehouse):
        base = fs.join(lakehouse, layer)
        for name in fs.listdir(base):
            if fs.exists(fs.join(base, name, "_delta_log")):
                out[f"{layer}.{name}"] = "delta:" + fs.join(base, name)
    shards = fs.join(lakehouse, "ml", "training_data")
    for kind in fs.listdir(shards):
        for split in fs.listdir(fs.join(shards, kind)):
            path = fs.join(shards, kind, split)
            if fs.exists(path) and not fs.is_file(path):
                out[f"ml.{kind}.{split}"] = "parquet:" + path
    return out


def _rounded(col: Any, dtype: str, digits: int) -> Any:
    from pyspark.sql import functions as F

    if dtype not in FLOAT_TYPES:
        return col
    # Round to `digits` significant digits: scale by the value's own magnitude.
    mag = F.floor(F.log10(F.abs(col)))
    return F.when(col.isNull() | F.isnan(col) | (col == 0), col).otherwise(
        F.round(col / F.pow(F.lit(10.0), mag), digits - 1) * F.pow(F.lit(10.0), mag)
    )


def snapshot_table(df: Any, digits: int) -> dict[str, Any]:
    """Row count, checksums and float summaries of one table."""
    from pyspark.sql import functions as F

    cols = [(f.name, f.dataType.simpleString()) for f in df.schema.fields if f.name not in VOLATILE]
    if not cols:
        return {"rows": df.count(), "schema": [], "checksum": "0", "exact": "0", "floats": {}}

    def row_hash(rounded: bool) -> Any:
        parts = [
            (_rounded(F.col(f"`{c}`"), t, digits) if rounded else F.col(f"`{c}`")).alias(c)
            for c, t in cols
        ]
        # to_json keeps nested types (arrays, structs, maps, binary as base64) hashable.
        return F.xxhash64(F.to_json(F.struct(*parts)))

    floats = [c for c, t in cols if t in FLOAT_TYPES]
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.sum(row_hash(True).cast("decimal(38,0)")).alias("checksum"),
        F.sum(row_hash(False).cast("decimal(38,0)")).alias("exact"),
    ]
    for c in floats:
        v = F.when(~F.isnan(F.col(f"`{c}`")), F.col(f"`{c}`"))
        aggs += [
            F.sum(v).alias(f"{c}__sum"),
            F.sum(F.abs(v)).alias(f"{c}__abs"),
            F.min(v).alias(f"{c}__min"),
            F.max(v).alias(f"{c}__max"),
            F.count(F.when(F.isnan(F.col(f"`{c}`")), 1)).alias(f"{c}__nan"),
        ]
    r = df.agg(*aggs).first().asDict()
    return {
        "rows": int(r["rows"]),
        "schema": [f"{c}:{t}" for c, t in cols],
        "checksum": str(r["checksum"]),
        "exact": str(r["exact"]),
        "floats": {
            c: {k: r[f"{c}__{k}"] for k in ("sum", "abs", "min", "max", "nan")} for c in floats
        },
    }


def snapshot_with(spark: Any, lakehouse: str, digits: int) -> dict[str, Any]:
    """Snapshot of every table under ``lakehouse`` with an existing session (in-process
    callers such as tests: building another would change the running session's settings).

    A table with a ``SPLIT_BY`` column is snapshot once per value of it, as
    ``name[column=value]``: its parts come from different stages (the SARIMA- and the
    fusion-driven policy rows), and a caller may judge a model-driven part apart.
    """
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for name, where in sorted(_tables(spark, lakehouse).items()):
        fmt, path = where.split(":", 1)
        df = spark.read.format(fmt).load(path)
        split = [c for c in SPLIT_BY if c in df.columns]
        if not split:
            out[name] = snapshot_table(df, digits)
            continue
        col = split[0]
        for (value,) in sorted(df.select(col).distinct().collect(), key=lambda r: str(r[0])):
            part = df.where(F.col(col).eqNullSafe(F.lit(value)))
            out[f"{name}[{col}={value}]"] = snapshot_table(part, digits)
    return out


def snapshot(lakehouse: str, digits: int, config: str | None = None) -> dict[str, Any]:
    """Snapshot of every table under ``lakehouse`` (session from ``config``, default the
    embedded local one, in local[2])."""
    import dataclasses

    from shikong.config import load_config
    from shikong.session import build_session

    cfg = load_config(config)
    cfg = dataclasses.replace(
        cfg, spark=dataclasses.replace(cfg.spark, master="local[2]", log_level="ERROR")
    )
    return snapshot_with(build_session(cfg), lakehouse, digits)


def _close(a: Any, b: Any, rel: float) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def diff(before: dict[str, Any], after: dict[str, Any], rel: float) -> list[tuple[str, str]]:
    """One (table, verdict) per table of either snapshot; verdicts start with ``equal``."""
    rows: list[tuple[str, str]] = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            rows.append((name, "only before" if b is None else "only after"))
            continue
        if a["schema"] != b["schema"]:
            rows.append((name, f"DIFFERENT schema: {a['schema']} vs {b['schema']}"))
        elif a["rows"] != b["rows"]:
            rows.append((name, f"DIFFERENT rows: {a['rows']} vs {b['rows']}"))
        elif a["exact"] == b["exact"]:
            rows.append((name, "equal (exact)"))
        elif a["checksum"] == b["checksum"]:
            rows.append((name, "equal (floats equal to the rounding digits)"))
        else:
            off = [
                f"{c}.{k}"
                for c, s in a["floats"].items()
                for k in ("sum", "abs", "min", "max", "nan")
                if not _close(s[k], b["floats"][c][k], rel)
            ]
            verdict = (
                f"DIFFERENT floats: {', '.join(off)}"
                if off
                else "DIFFERENT (non-float content differs)"
                if not a["floats"]
                else "equal within tolerance? float summaries agree, row checksum does not"
            )
            rows.append((name, verdict))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("snapshot")
    p.add_argument("lakehouse")
    p.add_argument("out")
    p.add_argument("--digits", type=int, default=9, help="significant digits of floats")
    p.add_argument("--config", default=None, help="session config (e.g. with .jars/s3a)")
    p = sub.add_parser("diff")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rel-tol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    if args.cmd == "snapshot":
        snap = snapshot(args.lakehouse, args.digits, args.config)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(snap, f, indent=1, sort_keys=True, default=str)
        for name, s in snap.items():
            sys.stdout.write(f"{name:<40} {s['rows']:>10,}  {s['checksum']}\n")
        return 0
    with open(args.before, encoding="utf-8") as f:
        before = json.load(f)
    with open(args.after, encoding="utf-8") as f:
        after = json.load(f)
    rows = diff(before, after, args.rel_tol)
    width = max((len(n) for n, _ in rows), default=5)
    for name, verdict in rows:
        rb = before.get(name, {}).get("rows", "-")
        sys.stdout.write(f"{name:<{width}}  {rb!s:>10}  {verdict}\n")
    bad = [n for n, v in rows if not v.startswith("equal")]
    sys.stdout.write(
        f"\n{len(rows) - len(bad)} of {len(rows)} tables equal"
        + (f"; different: {', '.join(bad)}\n" if bad else "\n")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
