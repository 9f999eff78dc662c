"""Stage ``report``: the HTML report, its operations summaries and the GeoParquet exports.

Three steps:

1. **Operations summaries.** ``ops.run_log`` and ``bronze.quarantine`` are restricted (file
   names with run errors, raw rejected rows); their counts and timings are summarised into
   the published ``gold.stage_runs``, ``gold.ingest_files`` and ``gold.quarantine_reasons``.
2. **Exports.** Service zones, hot-spot cells and route sketches as GeoParquet with their
   CRS (:mod:`shikong.io.exports`).
3. **Report.** ``<lakehouse>/report/index.html``, drawn from published tables only
   (:func:`published_table` refuses any other): maps of hot spots, service zones, customer
   clusters and one day's routes next to the baseline; forecast fans, the inventory
   replay, the model evaluation, data quality and the run's stage timings. Each figure
   states its tables, the run that wrote each and its Delta version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.decisions import policy_comparison
from shikong.frames import first_row, to_pandas
from shikong.geo_resources import load_states
from shikong.io import exports
from shikong.io.catalog import TABLES
from shikong.io.exports import REPORT_FILE
from shikong.io.runlog import RUN_LOG, WHOLE_JOB
from shikong.report import figures
from shikong.report.page import CHART, MAP, Section, Source, render
from shikong.stages import registry
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)

#: How many weeks of hot spots the map offers, and how many series get a fan chart.
WEEKS, FAN_SERIES = 12, 4


@dataclass(frozen=True)
class ReportResult:
    """Where the report and exports went, and what the report shows."""

    report: str
    exports: dict[str, str]
    sections: dict[str, bool]


def run(ctx: StageContext) -> ReportResult:
    """Summarise operations, export the geometry tables, write the report."""
    with step("report: operations summaries") as done:
        done(summarise_operations(ctx))
    with step("report: GeoParquet exports") as done:
        written = export_geometries(ctx)
        done(len(written))
    with step("report: HTML") as done:
        sections = build_sections(ctx)
        uri = ctx.catalog.location(*REPORT_FILE)
        html = render(
            sections,
            title="shikong report",
            run_id=ctx.run_id,
            lakehouse=ctx.cfg.paths.lakehouse,
        )
        exports.write_report(uri, html)
        done(sum(1 for s in sections if s.figure is not None))
    drawn = {s.key: s.figure is not None for s in sections}
    missing = [k for k, ok in drawn.items() if not ok]
    if missing:
        log.warning("report: nothing to draw for %s", ", ".join(missing))
    return ReportResult(uri, written, drawn)


# -- 1. operations summaries -------------------------------------------------------------


def summarise_operations(ctx: StageContext) -> int:
    """Write the published summaries of the run log and the quarantine; rows written."""
    spark, cat = ctx.spark, ctx.catalog
    runs = ctx.read(RUN_LOG)
    # This report's own row would stay STARTED in the summary: it ends after the summary.
    this_report = (F.col("job") == "report") & (F.col("run_id") == ctx.run_id)
    job_rows = runs.where((F.col("source") == WHOLE_JOB) & ~this_report)
    stage_runs = job_rows.select(
        "job",
        "run_id",
        "started_at",
        "ended_at",
        (F.unix_micros("ended_at") - F.unix_micros("started_at")).alias("_us"),
        "status",
    ).select(
        "job",
        "run_id",
        "started_at",
        "ended_at",
        (F.col("_us") / 1e6).alias("seconds"),
        "status",
    )
    files = runs.where(F.col("source") != WHOLE_JOB).select(
        "job",
        "run_id",
        "source",
        "source_file",
        "started_at",
        "rows_in",
        "rows_accepted",
        "rows_rejected",
        "status",
    )
    quarantine = cat.read_if_exists(spark, "bronze.quarantine")
    reasons = (
        quarantine.groupBy("source", "source_file", "reason").agg(F.count(F.lit(1)).alias("rows"))
        if quarantine is not None
        else spark.createDataFrame(
            [], "source string, source_file string, reason string, rows long"
        )
    )
    written = 0
    for table, df in (
        ("gold.stage_runs", stage_runs),
        ("gold.ingest_files", files),
        ("gold.quarantine_reasons", reasons),
    ):
        result = cat.write(spark, table, df)
        written += result.rows_inserted
    return written


# -- 2. exports ----------------------------------------------------------------------------


def _geometry_tables(ctx: StageContext) -> dict[str, DataFrame]:
    """The published geometry tables as export frames (``geometry``: WGS84 lon/lat)."""
    out: dict[str, DataFrame] = {}
    for name, table in (
        ("service_zones", "gold.service_zones"),
        ("hotspot_cells", "gold.hotspots"),
        ("route_sketches", "gold.route_sketches"),
    ):
        df, _ = published_table(ctx, table)
        if df is None:
            continue
        if "geom_wkb" in df.columns:
            out[name] = df.withColumn("geometry", stc.ST_GeomFromWKB("geom_wkb")).drop("geom_wkb")
        else:  # the hot-spot cells: their H3 polygons
            out[name] = df.withColumn("geometry", h3_polygon(cell_col="cell"))
    return out


def h3_polygon(*, cell_col: str) -> Any:
    """The polygon of an H3 cell given as its hex id (Sedona's ``ST_H3ToGeom``)."""
    cell = F.conv(F.col(cell_col), 16, 10).cast("long")
    return stf.ST_H3ToGeom(F.array(cell))[0]


def export_geometries(ctx: StageContext) -> dict[str, str]:
    """Write each geometry table as GeoParquet; export name -> URI."""
    written = {}
    for name, df in _geometry_tables(ctx).items():
        uri = ctx.catalog.location(exports.EXPORTS_DIR, name)
        written[name] = exports.write_geoparquet(df, uri)
    return written


# -- 3. report -----------------------------------------------------------------------------


class RestrictedTableError(ValueError):
    """The report was asked to read a table that is not published."""


def _writer_jobs() -> dict[str, str]:
    return {table: s.job for s in registry.STAGES for table in s.writes}


def published_table(ctx: StageContext, table: str) -> tuple[DataFrame | None, Source]:
    """A published table and its provenance (``None`` when it does not exist yet).

    Raises:
        RestrictedTableError: For a table that is not published.
    """
    spec = TABLES[table]
    if not spec.published:
        raise RestrictedTableError(f"the report reads published tables only; {table} is not")
    df = ctx.catalog.read_if_exists(ctx.spark, table)
    if df is None:
        return None, Source(table, None, None)
    version = ctx.catalog.version(ctx.spark, table)
    return df, Source(table, _last_run(ctx, _writer_jobs().get(table, "report")), version)


def _last_run(ctx: StageContext, job: str) -> str | None:
    if job == "report":
        return ctx.run_id
    runs = ctx.catalog.read_if_exists(ctx.spark, "gold.stage_runs")
    if runs is None:
        return None
    row = (
        runs.where((F.col("job") == job) & (F.col("status") == "SUCCEEDED"))
        .orderBy(F.col("started_at").desc())
        .select("run_id")
        .first()
    )
    return None if row is None else str(row[0])


def _geojson(col: Any) -> Any:
    return stf.ST_AsGeoJSON(col)


def _states() -> dict[str, Any]:
    import shapely

    states = load_states()
    geoms = shapely.simplify(shapely.from_wkt(states["wkt"].to_numpy()), 0.02)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)}
            for g in geoms
        ],
    }


def _section(key: str, title: str, kind: str, sources: list[Source], **kw: Any) -> Section:
    return Section(key=key, title=title, kind=kind, sources=sources, **kw)


def _missing(*sources: Source) -> str:
    absent = [s.table for s in sources if s.version is None]
    return f"not produced in this lakehouse: {', '.join(absent)}" if absent else "no rows"


def hotspot_section(ctx: StageContext, states: dict[str, Any]) -> Section:
    df, src = published_table(ctx, "gold.hotspots")
    title, note = (
        "Hot and cold spots (Getis-Ord Gi*)",
        "H3 cells by Gi* class per period (a week by default; FDR-adjusted); pick the period "
        "with the selector.",
    )
    if df is None:
        return _section("hotspots", title, MAP, [src], empty=_missing(src), note=note)
    periods = [
        r[0]
        for r in df.select("period").distinct().orderBy(F.desc("period")).limit(WEEKS).collect()
    ]
    cells = to_pandas(
        df.where(F.col("period").isin(periods)).select(
            "period",
            "cell",
            "hotspot_class",
            F.coalesce("gi_z", F.lit(float("nan"))).alias("gi_z"),
            _geojson(h3_polygon(cell_col="cell")).alias("geometry"),
        )
    )
    if cells.empty:
        return _section("hotspots", title, MAP, [src], empty="no rows", note=note)
    cells["geometry"] = cells["geometry"].map(json.loads)
    fig = figures.hotspot_map(cells, states=states)
    return _section("hotspots", title, MAP, [src], figure=fig, note=note)


def zones_section(ctx: StageContext, states: dict[str, Any]) -> Section:
    df, src = published_table(ctx, "gold.service_zones")
    title = "Warehouse service zones"
    note = "Each warehouse's service area, clipped to the state borders (grey lines)."
    if df is None:
        return _section("zones", title, MAP, [src], empty=_missing(src), note=note)
    zones = to_pandas(
        df.select("warehouse_id", _geojson(stc.ST_GeomFromWKB("geom_wkb")).alias("geometry"))
    )
    if zones.empty:
        return _section("zones", title, MAP, [src], empty="no rows", note=note)
    zones["geometry"] = zones["geometry"].map(json.loads)
    return _section(
        "zones", title, MAP, [src], figure=figures.zone_map(zones, states=states), note=note
    )


def clusters_section(ctx: StageContext, states: dict[str, Any]) -> Section:
    df, src = published_table(ctx, "gold.customer_clusters")
    title = "Customer clusters (DBSCAN)"
    note = (
        "Customers at their H3 cell's centroid (the published precision), sized by count and "
        "coloured by DBSCAN cluster; grey: noise."
    )
    if df is None:
        return _section("clusters", title, MAP, [src], empty=_missing(src), note=note)
    cluster = F.when(F.col("dbscan_cluster") < 0, F.lit("noise")).otherwise(
        F.col("dbscan_cluster").cast("string")
    )
    points = to_pandas(
        df.where(F.col("lat").isNotNull())
        .groupBy("lat", "lon", cluster.alias("cluster"))
        .agg(F.count(F.lit(1)).alias("customers"))
    )
    if points.empty:
        return _section("clusters", title, MAP, [src], empty="no rows", note=note)
    fig = figures.cluster_map(points, states=states)
    return _section("clusters", title, MAP, [src], figure=fig, note=note)


def routes_section(ctx: StageContext, states: dict[str, Any]) -> Section:
    groups, gsrc = published_table(ctx, "gold.route_groups")
    sketches, ssrc = published_table(ctx, "gold.route_sketches")
    title = "Delivery routes: OR-Tools next to the nearest-neighbour baseline"
    if groups is None or sketches is None:
        return _section("routes", title, MAP, [gsrc, ssrc], empty=_missing(gsrc, ssrc))
    # The busiest warehouse on the latest routed day.
    best = (
        groups.where(F.col("n_routed") > 0)
        .orderBy(F.desc("delivery_date"), F.desc("n_routed"), "warehouse_id")
        .select("warehouse_id", "delivery_date", "n_routed", "ortools_km", "baseline_km", "chosen")
        .first()
    )
    if best is None:
        return _section("routes", title, MAP, [gsrc, ssrc], empty="no routed orders")
    lines = to_pandas(
        sketches.where(
            (F.col("warehouse_id") == best["warehouse_id"])
            & (F.col("delivery_date") == F.lit(best["delivery_date"]))
        ).select(
            "solver",
            "vehicle",
            "n_stops",
            "distance_km",
            _geojson(stc.ST_GeomFromWKB("geom_wkb")).alias("geometry"),
        )
    )
    if lines.empty:
        return _section("routes", title, MAP, [gsrc, ssrc], empty="no route sketches for that day")
    lines["coords"] = lines["geometry"].map(lambda g: json.loads(g)["coordinates"])
    note = (
        f"Warehouse {best['warehouse_id']} on {best['delivery_date']}: {best['n_routed']} orders; "
        f"the stage kept {best['chosen']}. Stops are drawn at their H3 cell's centroid."
    )
    fig = figures.route_maps(lines, states=states)
    return _section("routes", title, MAP, [gsrc, ssrc], figure=fig, note=note)


def forecast_section(ctx: StageContext) -> Section:
    fc, fsrc = published_table(ctx, "gold.forecasts")
    mt, msrc = published_table(ctx, "gold.forecast_metrics")
    hist, hsrc = published_table(ctx, "silver.sku_daily")
    sources = [fsrc, msrc, hsrc]
    title = "Forecast fans of the busiest series"
    note = "Observed demand, then the forecast median with its 80% and 95% intervals."
    if fc is None or hist is None:
        return _section("forecasts", title, CHART, sources, empty=_missing(*sources), note=note)
    run_date = first_row(fc.agg(F.max("run_date")))[0]
    latest = fc.where(F.col("run_date") == F.lit(run_date))
    busiest = [
        r[0]
        for r in hist.groupBy("series_id")
        .agg(F.sum("y_obs").alias("total"))
        .join(latest.select("series_id").distinct(), "series_id")
        .orderBy(F.desc("total"), "series_id")
        .limit(FAN_SERIES)
        .collect()
    ]
    if not busiest:
        return _section("forecasts", title, CHART, sources, empty="no rows", note=note)
    forecasts = to_pandas(
        latest.where(F.col("series_id").isin(busiest)).select(
            "series_id", "ds", "yhat", "lo80", "hi80", "lo95", "hi95"
        )
    )
    history = to_pandas(
        hist.where(
            F.col("series_id").isin(busiest) & (F.col("ds") >= F.date_sub(F.lit(run_date), 90))
        ).select("series_id", "ds", F.col("y_obs").alias("y"))
    )
    mase: dict[str, float] = {}
    naive: dict[str, float] = {}
    if mt is not None:
        rows = (
            mt.where((F.col("run_date") == F.lit(run_date)) & F.col("series_id").isin(busiest))
            .groupBy("series_id", "model")
            .agg(F.avg("mase").alias("mase"))
            .collect()
        )
        for r in rows:
            if r["mase"] is None:
                continue
            target = (
                mase
                if r["model"] == "chosen"
                else naive
                if r["model"] == "seasonal_naive"
                else None
            )
            if target is not None:
                target[r["series_id"]] = float(r["mase"])
    order = {sid: i for i, sid in enumerate(busiest)}
    forecasts = forecasts.sort_values(
        ["series_id", "ds"], key=lambda s: s.map(order) if s.name == "series_id" else s
    )
    fig = figures.fan_charts(history, forecasts, mase, naive)
    note += f" Run date {run_date}; MASE is the mean over the rolling-origin backtest folds."
    return _section("forecasts", title, CHART, sources, figure=fig, note=note)


def policy_section(ctx: StageContext) -> Section:
    df, src = published_table(ctx, "gold.policy_simulation")
    title = "Inventory policy replay"
    note = (
        "The stock points every policy replayed, over recent demand: naive, SARIMA-driven "
        "and fusion-driven (where the models ran)."
    )
    if df is None:
        return _section("policy", title, CHART, [src], empty=_missing(src), note=note)
    run_date = first_row(df.agg(F.max("run_date")))[0]
    summary = policy_comparison(to_pandas(df.where(F.col("run_date") == F.lit(run_date))))
    if summary.empty:
        return _section("policy", title, CHART, [src], empty="no rows", note=note)
    note += (
        f" Run date {run_date}; fill rate = mean over stock points of units served / demand;"
        " stock-out days and cost summed."
    )
    return _section("policy", title, CHART, [src], figure=figures.policy_chart(summary), note=note)


def evaluation_section(ctx: StageContext) -> Section:
    df, src = published_table(ctx, "gold.model_evaluation")
    title = "Model evaluation (test split)"
    if df is None:
        return _section("evaluation", title, CHART, [src], empty=_missing(src))
    latest = df.groupBy("model_kind").agg(F.max("model_run_id").alias("model_run_id"))
    table = to_pandas(
        df.join(latest, ["model_kind", "model_run_id"]).select(
            "model_kind", "model_run_id", "model", "metric", "value", "n"
        )
    )
    if table.empty:
        return _section("evaluation", title, CHART, [src], empty="no rows")
    table = table.sort_values(["model_kind", "metric", "model"]).reset_index(drop=True)
    note = "The latest trained model of each kind against its baselines on the same test cells."
    return _section(
        "evaluation", title, CHART, [src], figure=figures.table_figure(table), note=note
    )


def quality_section(ctx: StageContext) -> Section:
    files, fsrc = published_table(ctx, "gold.ingest_files")
    reasons, rsrc = published_table(ctx, "gold.quarantine_reasons")
    title = "Data quality"
    if files is None or reasons is None:
        return _section("quality", title, CHART, [fsrc, rsrc], empty=_missing(fsrc, rsrc))
    per_run = to_pandas(
        files.where(F.col("job") == "ingest")
        .groupBy("run_id", "source")
        .agg(
            F.sum("rows_in").alias("rows_in"),
            F.sum("rows_accepted").alias("rows_accepted"),
            F.sum("rows_rejected").alias("rows_rejected"),
        )
        .orderBy("run_id", "source")
    )
    by_reason = to_pandas(reasons.orderBy("source", "source_file", "reason"))
    if per_run.empty:
        return _section("quality", title, CHART, [fsrc, rsrc], empty="no ingest runs")
    note = (
        f"{int(per_run['rows_in'].sum()):,} rows read, {int(per_run['rows_accepted'].sum()):,} "
        f"accepted, {int(per_run['rows_rejected'].sum()):,} quarantined over "
        f"{per_run['run_id'].nunique()} ingest run(s)."
    )
    return _section(
        "quality",
        title,
        CHART,
        [fsrc, rsrc],
        figure=figures.quality_charts(per_run, by_reason),
        note=note,
    )


def timings_section(ctx: StageContext) -> Section:
    df, src = published_table(ctx, "gold.stage_runs")
    title = "Stage timings"
    if df is None:
        return _section("timings", title, CHART, [src], empty=_missing(src))
    # This run's stages when it ran others (``shikong run``); otherwise (a report run
    # alone, or a Databricks job whose tasks each have their own run id) the latest run of
    # each stage.
    others = df.where(F.col("job") != "report")
    here = others.where(F.col("run_id") == ctx.run_id)
    if not here.isEmpty():
        runs, note = here, f"Run {ctx.run_id}"
    else:
        latest = Window.partitionBy("job").orderBy(F.desc("started_at"))
        runs = others.withColumn("_n", F.row_number().over(latest)).where(F.col("_n") == 1)
        note = "The latest run of each stage"
    stages = to_pandas(runs.select("job", "run_id", "seconds", "status"))
    if stages.empty:
        return _section("timings", title, CHART, [src], empty="no stage runs")
    order = {s.job: i for i, s in enumerate(registry.STAGES)}
    stages = stages.sort_values(
        "job", key=lambda s: s.map(lambda j: order.get(j, len(order)))
    ).reset_index(drop=True)
    note += f": {stages['seconds'].sum():.0f} s over {len(stages)} stage(s)."
    if stages["run_id"].nunique() > 1:
        pairs = zip(stages["job"], stages["run_id"], strict=True)
        note += " Runs: " + ", ".join(f"{job} {run}" for job, run in pairs)
    return _section("timings", title, CHART, [src], figure=figures.timings_chart(stages), note=note)


def build_sections(ctx: StageContext) -> list[Section]:
    """Every section of the report, in reading order."""
    states = _states()
    return [
        hotspot_section(ctx, states),
        zones_section(ctx, states),
        clusters_section(ctx, states),
        routes_section(ctx, states),
        forecast_section(ctx),
        policy_section(ctx),
        evaluation_section(ctx),
        quality_section(ctx),
        timings_section(ctx),
    ]
