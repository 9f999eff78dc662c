"""The report stage on the small world's full lakehouse: what it reads, its summaries, its
GeoParquet exports and the route sketches, against pandas, GeoPandas and h3 directly."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from shikong.io.catalog import TABLES, Catalog
from shikong.io.exports import EXPORTS_DIR
from shikong.stages import registry
from shikong.stages import report as report_stage
from shikong.stages.report import RestrictedTableError, published_table

SECTIONS = (
    "hotspots", "zones", "clusters", "routes", "forecasts", "policy", "evaluation", "quality",
    "timings",
)  # fmt: skip


def _read(spark, cfg, table: str) -> pd.DataFrame:
    return Catalog(cfg.paths.lakehouse).read(spark, table).toPandas()


def test_every_section_is_drawn_and_the_report_names_its_sources(report):
    result = report["result"]
    assert result.sections == dict.fromkeys(SECTIONS, True)
    html = Path(result.report).read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'id="{key}"' in html
    # Each source with the run that wrote it (the fixtures' one run) and its Delta version.
    run = report["ctx"].run_id
    for table in registry.REPORT_READS:
        assert re.search(
            rf"(Source: |; ){re.escape(table)} \(run {run}, Delta version \d+\)", html
        ), table


def test_the_report_reads_published_tables_only(report, monkeypatch):
    ctx = report["ctx"]
    assert all(TABLES[t].published for t in registry.REPORT_READS)
    with pytest.raises(RestrictedTableError, match="bronze.orders is not"):
        published_table(ctx, "bronze.orders")
    # Every catalogue read goes through Catalog.read (read_if_exists and ctx.read too).
    read: list[str] = []
    original = Catalog.read

    def spy(self, spark, table):
        read.append(table)
        return original(self, spark, table)

    monkeypatch.setattr(Catalog, "read", spy)
    report_stage.build_sections(ctx)
    assert read and all(TABLES[t].published for t in read), read


def test_operations_summaries_reconcile_with_the_run_log_and_quarantine(spark, report):
    cfg = report["cfg"]
    log = _read(spark, cfg, "ops.run_log")
    files = _read(spark, cfg, "gold.ingest_files")
    want = log[log["source"] != "*"].sort_values(["run_id", "source_file"]).reset_index(drop=True)
    got = files.sort_values(["run_id", "source_file"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[["run_id", "source", "source_file", "rows_in", "rows_accepted", "rows_rejected"]],
        want[["run_id", "source", "source_file", "rows_in", "rows_accepted", "rows_rejected"]],
        check_dtype=False,  # the run log's counts are nullable (null on its status rows)
    )
    assert (got["rows_in"] == got["rows_accepted"] + got["rows_rejected"]).all()
    quarantine = _read(spark, cfg, "bronze.quarantine")
    want_q = (
        quarantine.groupby(["source", "source_file", "reason"]).size().rename("rows").reset_index()
    )
    got_q = _read(spark, cfg, "gold.quarantine_reasons").sort_values(
        ["source", "source_file", "reason"]
    )
    pd.testing.assert_frame_equal(
        got_q.reset_index(drop=True), want_q, check_dtype=False, check_like=True
    )
    assert got_q["rows"].sum() == len(quarantine) > 0
    runs = _read(spark, cfg, "gold.stage_runs")
    fixture_run = runs[runs["run_id"] == report["ctx"].run_id]
    # Every stage the fixtures ran through the runner; not the report summarising itself.
    assert set(fixture_run["job"]) == {
        s.job for s in registry.STAGES if s.name not in ("ingest", "report")
    }
    assert set(fixture_run["status"]) == {"SUCCEEDED"}
    seconds = (runs["ended_at"] - runs["started_at"]).dt.total_seconds()
    assert runs["seconds"].to_numpy() == pytest.approx(seconds.to_numpy(), abs=1e-6)
    assert "error" not in runs.columns


@pytest.mark.parametrize(
    ("export", "table"),
    [
        ("service_zones", "gold.service_zones"),
        ("hotspot_cells", "gold.hotspots"),
        ("route_sketches", "gold.route_sketches"),
    ],
    ids=["service_zones", "hotspot_cells", "route_sketches"],
)
def test_geoparquet_exports_read_back_with_their_crs(spark, report, export, table):
    cfg = report["cfg"]
    path = Path(cfg.paths.lakehouse) / EXPORTS_DIR / export
    assert report["result"].exports[export].endswith(f"{EXPORTS_DIR}/{export}")
    gdf = gpd.read_parquet(path)
    assert gdf.crs is not None and gdf.crs.equals(CRS("OGC:CRS84"))
    assert gdf.geometry.name == "geometry"
    assert len(gdf) == len(_read(spark, cfg, table)) > 0
    assert gdf.geometry.is_valid.all() and not gdf.geometry.is_empty.any()
    if export == "hotspot_cells":
        # The cell polygons are H3's own boundaries (h3 library, lat/lng -> lon/lat).
        for cell, geom in gdf[["cell", "geometry"]].head(20).itertuples(index=False):
            ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
            assert geom.normalize().equals_exact(shapely.Polygon(ring).normalize(), 1e-9), cell
    if export == "service_zones":
        zones = _read(spark, cfg, "gold.service_zones")
        want = shapely.from_wkb(zones.sort_values(["warehouse_id", "uf"])["geom_wkb"].map(bytes))
        got = gdf.sort_values(["warehouse_id", "uf"]).geometry.to_numpy()
        assert all(a.equals_exact(b, 0) for a, b in zip(got, want, strict=True))


def test_route_sketches_follow_both_solvers_through_h3_centroids(spark, report):
    cfg = report["cfg"]
    res = cfg.privacy.location_h3_resolution
    sketches = _read(spark, cfg, "gold.route_sketches")
    groups = _read(spark, cfg, "gold.route_groups")
    orders = _read(spark, cfg, "bronze.orders")
    exact = {
        (round(a, 9), round(b, 9))
        for a, b in orders[["lat", "lon"]].dropna().itertuples(index=False)
    }
    assert set(sketches["solver"]) == {"ortools", "baseline"}
    for wkb in sketches["geom_wkb"]:
        coords = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)))
        assert tuple(coords[0]) == tuple(coords[-1])  # from the depot back to it
        for lon, lat in coords[1:-1]:
            centre = h3.cell_to_latlng(h3.latlng_to_cell(lat, lon, res))
            assert h3.great_circle_distance(centre, (lat, lon), unit="m") < 1.0
            assert (round(lat, 9), round(lon, 9)) not in exact
    km = sketches.pivot_table(
        index=["warehouse_id", "delivery_date"],
        columns="solver",
        values="distance_km",
        aggfunc="sum",
    )
    stops = sketches.groupby(["warehouse_id", "delivery_date", "solver"])["n_stops"].sum()
    merged = groups.set_index(["warehouse_id", "delivery_date"]).join(km, how="inner")
    assert len(merged) == (groups["n_routed"] > 0).sum()
    assert merged["baseline"].to_numpy() == pytest.approx(
        merged["baseline_km"].to_numpy(), rel=1e-9
    )
    chosen_ort = merged[merged["chosen"] == "ortools"]
    assert chosen_ort["ortools"].to_numpy() == pytest.approx(
        chosen_ort["ortools_km"].to_numpy(), rel=1e-9
    )
    for (wh, day), row in merged.iterrows():
        solver = "ortools" if row["chosen"] == "ortools" else "baseline"
        assert stops[(wh, day, solver)] == row["n_routed"]
