"""Ingest of the generated small world reconciles exactly with the generator's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shikong.io.catalog import Catalog


def test_quarantine_counts_equal_ground_truth(spark, small_world):
    cfg = small_world.cfg
    truth = pd.read_csv(Path(cfg.paths.landing_dir) / "_ground_truth" / "dirty_rows.csv")
    truth = truth[truth["count"] > 0]
    q = Catalog(cfg.paths.lakehouse).read(spark, "bronze.quarantine")
    got = q.groupBy("source_file", "reason").count().toPandas()
    got = (
        got.rename(columns={"source_file": "file"})
        .sort_values(["file", "reason"])
        .reset_index(drop=True)
    )
    want = truth[["file", "reason", "count"]].sort_values(["file", "reason"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_accepted_rows_equal_clean_rows(small_world):
    cfg, reports = small_world.cfg, small_world.reports
    world = json.loads((Path(cfg.paths.landing_dir) / "_ground_truth" / "world.json").read_text())
    for name, counts in world["counts"].items():
        report = reports[name]
        assert report.rows_in == counts["total"], name
        assert report.rows_accepted == counts["clean"], name
        assert report.rows_rejected == counts["dirty"], name


def test_run_log_reconciles_per_file(spark, small_world):
    log = Catalog(small_world.cfg.paths.lakehouse).read(spark, "ops.run_log").toPandas()
    # The file rows (a stage's own status rows, source "*", come from the pipeline fixtures).
    log = log[log["source"] != "*"]
    assert not log.empty
    assert (log["rows_in"] == log["rows_accepted"] + log["rows_rejected"]).all()
    files = {
        str(p.relative_to(Path(small_world.cfg.paths.landing_dir)))
        for p in Path(small_world.cfg.paths.landing_dir).rglob("*.*")
        if "_ground_truth" not in p.parts
    }
    assert set(log["source_file"]) == files
