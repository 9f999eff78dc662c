"""The report's figures: plotly figures from small pandas frames (no Spark, no storage).

Maps are plotly ``map`` subplots (MapLibre) on the ``white-bg`` style with the state borders
drawn as a layer from the packaged state polygons: no tile server, so a report opens
offline. Charts are plain plotly (SVG). Each function takes the columns it names and
returns one figure; the stage (:mod:`shikong.stages.report`) builds the frames from the
published tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

#: Gi* classes, hottest first, with the colour each is drawn in (a diverging scheme).
HOTSPOT_CLASSES: tuple[tuple[str, str], ...] = (
    ("hot_99", "#b2182b"),
    ("hot_95", "#ef8a62"),
    ("hot_90", "#fddbc7"),
    ("not_significant", "#bdbdbd"),
    ("cold_90", "#d1e5f0"),
    ("cold_95", "#67a9cf"),
    ("cold_99", "#2166ac"),
)
#: Colours of categories (clusters, warehouses, routes), repeated when there are more.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_NOISE_COLOUR = "#9e9e9e"
_MAP_HEIGHT = 560


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def map_view(
    lats: Sequence[float] | np.ndarray,
    lons: Sequence[float] | np.ndarray,
    *,
    width_px: int = 600,
    height_px: int = 500,
) -> dict[str, Any]:
    """Centre and zoom that fit the points into a map of about ``width_px`` x ``height_px``.

    MapLibre draws the world 512 px wide at zoom 0, doubling per level; latitude spans are
    stretched by about 1.1 at Brazil's latitudes (Mercator), hence the factor.
    """
    lat = np.asarray(lats, dtype=float)
    lon = np.asarray(lons, dtype=float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        return {"center": {"lat": 0.0, "lon": 0.0}, "zoom": 1}
    lat, lon = lat[ok], lon[ok]
    lon_span = max(float(lon.max() - lon.min()), 1e-3)
    lat_span = max(float(lat.max() - lat.min()) * 1.1, 1e-3)
    zoom = min(
        math.log2(width_px * 360.0 / (512.0 * lon_span)),
        math.log2(height_px * 360.0 / (512.0 * lat_span)),
    )
    centre = {"lat": float((lat.max() + lat.min()) / 2), "lon": float((lon.max() + lon.min()) / 2)}
    return {"center": centre, "zoom": round(min(max(zoom - 0.2, 1.0), 14.0), 2)}


def _map_layout(states: Mapping[str, Any] | None, view: Mapping[str, Any]) -> dict[str, Any]:
    layers = []
    if states:
        layers.append(
            {
                "sourcetype": "geojson",
                "source": dict(states),
                "type": "line",
                "color": "#757575",
                "line": {"width": 1},
                "below": "traces",
            }
        )
    return {"style": "white-bg", "layers": layers, **view}


def _coords(geometry: Mapping[str, Any]) -> np.ndarray:
    """Every (lon, lat) vertex of a GeoJSON geometry."""
    out: list[Any] = []

    def walk(c: Any) -> None:
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            out.append(c[:2])
        elif isinstance(c, (list, tuple)):
            for part in c:
                walk(part)

    walk(geometry.get("coordinates", []))
    return np.asarray(out, dtype=float).reshape(-1, 2)


def _feature_collection(ids: Sequence[str], geometries: Sequence[Any]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": i, "properties": {}, "geometry": g}
            for i, g in zip(ids, geometries, strict=True)
        ],
    }


def _view_of_geometries(geometries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pts = np.concatenate([_coords(g) for g in geometries]) if geometries else np.empty((0, 2))
    return map_view(pts[:, 1], pts[:, 0])


def default_period(cells: pd.DataFrame) -> str:
    """The week a hot-spot map opens on: the latest with at least half the cells of the
    fullest week (the last week of the data is often partial)."""
    counts = cells.groupby("period")["cell"].nunique().sort_index()
    return str(counts[counts >= counts.max() / 2].index[-1])


def hotspot_map(cells: pd.DataFrame, *, states: Mapping[str, Any] | None = None) -> go.Figure:
    """H3 cells coloured by Gi* class, one week at a time (a selector switches weeks).

    Each week is two traces: the cell polygons, and a dot at each cell's centre in the same
    colour, because at country scale a cell is smaller than a pixel.

    Args:
        cells: ``period`` (week), ``cell`` (H3 id), ``geometry`` (GeoJSON polygon),
            ``hotspot_class`` and ``gi_z``.
        states: State borders (GeoJSON) drawn under the cells.
    """
    n = len(HOTSPOT_CLASSES)
    # Hottest on top of the colour bar: code n - 1 for hot_99 ... 0 for cold_99.
    codes = {name: n - 1 - i for i, (name, _) in enumerate(HOTSPOT_CLASSES)}
    colours = dict(HOTSPOT_CLASSES)
    # A stepped scale: code c takes its class's colour over [c, c + 1) / n.
    scale = [
        [edge, colour]
        for name, colour in reversed(HOTSPOT_CLASSES)
        for edge in (codes[name] / n, (codes[name] + 1) / n)
    ]
    periods = sorted(cells["period"].unique())
    shown = default_period(cells) if periods else None
    fig = go.Figure()
    for period in periods:
        week = cells[cells["period"] == period]
        info = np.stack([week["hotspot_class"], week["gi_z"].round(2)], axis=-1)
        hover = "%{customdata[0]}<br>Gi* z %{customdata[1]}<extra></extra>"
        fig.add_trace(
            go.Choroplethmap(
                geojson=_feature_collection(week["cell"].tolist(), week["geometry"].tolist()),
                locations=week["cell"],
                z=week["hotspot_class"].map(codes).astype(float) + 0.5,
                zmin=0,
                zmax=n,
                colorscale=scale,
                marker={"opacity": 0.75, "line": {"width": 0.3, "color": "#616161"}},
                customdata=info,
                hovertemplate="%{location}<br>" + hover,
                colorbar={
                    "tickvals": [codes[name] + 0.5 for name, _ in HOTSPOT_CLASSES],
                    "ticktext": [name for name, _ in HOTSPOT_CLASSES],
                    "title": {"text": "Gi*"},
                },
                name=str(period),
                visible=period == shown,
            )
        )
        centres = np.array([_coords(g)[:-1].mean(axis=0) for g in week["geometry"]])
        fig.add_trace(
            go.Scattermap(
                lon=centres[:, 0],
                lat=centres[:, 1],
                mode="markers",
                marker={"size": 8, "color": week["hotspot_class"].map(colours).tolist()},
                customdata=info,
                hovertemplate=hover,
                name=f"{period} (cell centres)",
                showlegend=False,
                visible=period == shown,
            )
        )
    buttons = [
        {
            "label": str(period),
            "method": "update",
            "args": [
                {"visible": [p == period for p in periods for _ in range(2)]},
                {"title": {"text": f"Hot and cold spots, period {period}"}},
            ],
        }
        for period in periods
    ]
    fig.update_layout(
        map=_map_layout(states, _view_of_geometries(cells["geometry"].tolist())),
        height=_MAP_HEIGHT,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        title={"text": f"Hot and cold spots, period {shown}" if periods else ""},
        updatemenus=[
            {
                "buttons": buttons,
                "active": periods.index(shown) if periods else 0,
                "x": 0.0,
                "y": 1.0,
            }
        ],
    )
    return fig


def zone_map(zones: pd.DataFrame, *, states: Mapping[str, Any] | None = None) -> go.Figure:
    """Warehouse service zones (already clipped to the state borders), one colour each.

    Args:
        zones: ``warehouse_id`` and ``geometry`` (GeoJSON polygon or multipolygon).
        states: State borders (GeoJSON).
    """
    # One feature per row (a zone clipped to several states has a piece in each).
    ids = [f"{w} #{i}" for i, w in enumerate(zones["warehouse_id"].astype(str))]
    warehouses = sorted(set(zones["warehouse_id"].astype(str)))
    index = {w: i for i, w in enumerate(warehouses)}
    n = len(warehouses)
    fig = go.Figure(
        go.Choroplethmap(
            geojson=_feature_collection(ids, zones["geometry"].tolist()),
            locations=ids,
            z=[index[w] + 0.5 for w in zones["warehouse_id"].astype(str)],
            zmin=0,
            zmax=n,
            colorscale=[[e, _colour(i)] for i in range(n) for e in (i / n, (i + 1) / n)],
            showscale=False,
            marker={"opacity": 0.45, "line": {"width": 1, "color": "#424242"}},
            customdata=zones["warehouse_id"],
            hovertemplate="service zone of %{customdata}<extra></extra>",
            name="service zones",
        )
    )
    fig.update_layout(
        map=_map_layout(states, _view_of_geometries(zones["geometry"].tolist())),
        height=_MAP_HEIGHT,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
    )
    return fig


def cluster_map(points: pd.DataFrame, *, states: Mapping[str, Any] | None = None) -> go.Figure:
    """Customers (coarsened to H3 centroids, counted per point) coloured by DBSCAN cluster.

    Args:
        points: ``lat``, ``lon``, ``cluster`` (``noise`` for DBSCAN noise) and ``customers``.
        states: State borders (GeoJSON).
    """
    fig = go.Figure()
    for i, (cluster, part) in enumerate(sorted(points.groupby("cluster"), key=lambda kv: kv[0])):
        noise = cluster == "noise"
        fig.add_trace(
            go.Scattermap(
                lat=part["lat"],
                lon=part["lon"],
                mode="markers",
                marker={
                    "size": np.clip(4 + 2 * np.sqrt(part["customers"]), 4, 18),
                    "color": _NOISE_COLOUR if noise else _colour(i),
                    "opacity": 0.5 if noise else 0.8,
                },
                customdata=part["customers"],
                hovertemplate=f"cluster {cluster}<br>%{{customdata}} customers<extra></extra>",
                name=str(cluster),
            )
        )
    fig.update_layout(
        map=_map_layout(states, map_view(points["lat"], points["lon"])),
        height=_MAP_HEIGHT,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        legend={"title": {"text": "cluster"}},
    )
    return fig


def route_maps(lines: pd.DataFrame, *, states: Mapping[str, Any] | None = None) -> go.Figure:
    """One warehouse-day's routes: OR-Tools (left) next to the nearest-neighbour baseline.

    Args:
        lines: ``solver`` (``ortools``/``baseline``), ``vehicle``, ``distance_km``,
            ``n_stops`` and ``coords`` (a list of (lon, lat), depot first and last).
        states: State borders (GeoJSON).
    """
    solvers = [s for s in ("ortools", "baseline") if s in set(lines["solver"])]
    titles = [
        f"{'OR-Tools' if s == 'ortools' else 'nearest neighbour'}: "
        f"{lines.loc[lines['solver'] == s, 'distance_km'].sum():.1f} km, "
        f"{int((lines['solver'] == s).sum())} vehicles"
        for s in solvers
    ]
    fig = make_subplots(
        rows=1,
        cols=max(len(solvers), 1),
        specs=[[{"type": "map"}] * max(len(solvers), 1)],
        subplot_titles=titles,
        horizontal_spacing=0.02,
    )
    all_pts = np.concatenate([np.asarray(c, dtype=float) for c in lines["coords"]])
    view = map_view(all_pts[:, 1], all_pts[:, 0])
    for col, solver in enumerate(solvers, start=1):
        for _, route in lines[lines["solver"] == solver].sort_values("vehicle").iterrows():
            xy = np.asarray(route["coords"], dtype=float)
            fig.add_trace(
                go.Scattermap(
                    lon=xy[:, 0],
                    lat=xy[:, 1],
                    mode="lines+markers",
                    line={"width": 2, "color": _colour(int(route["vehicle"]) - 1)},
                    marker={"size": 5},
                    name=f"{solver} vehicle {int(route['vehicle'])}",
                    hovertemplate=f"vehicle {int(route['vehicle'])}: "
                    f"{int(route['n_stops'])} stops, {route['distance_km']:.1f} km<extra></extra>",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
        key = "map" if col == 1 else f"map{col}"
        fig.update_layout({key: _map_layout(states, view)})
    fig.update_layout(height=_MAP_HEIGHT, margin={"l": 0, "r": 0, "t": 40, "b": 0})
    return fig


def fan_charts(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    mase: Mapping[str, float],
    baseline_mase: Mapping[str, float] | None = None,
) -> go.Figure:
    """Forecast fans (80% and 95% intervals) after the recent history, one panel a series.

    Args:
        history: ``series_id``, ``ds``, ``y`` (recent observations).
        forecasts: ``series_id``, ``ds``, ``yhat``, ``lo80``, ``hi80``, ``lo95``, ``hi95``.
        mase: Backtest MASE of the chosen model per series (the panel title states it).
        baseline_mase: The seasonal-naive MASE on the same folds, stated next to it.
    """
    ids = list(dict.fromkeys(forecasts["series_id"]))
    base = baseline_mase or {}

    def title(sid: str) -> str:
        if sid not in mase:
            return f"{sid} (no backtest)"
        naive = f", seasonal naive {base[sid]:.2f}" if sid in base else ""
        return f"{sid}: backtest MASE {mase[sid]:.2f}{naive}"

    titles = [title(sid) for sid in ids]
    fig = make_subplots(rows=len(ids), cols=1, subplot_titles=titles, vertical_spacing=0.08)
    for row, sid in enumerate(ids, start=1):
        h = history[history["series_id"] == sid].sort_values("ds")
        f = forecasts[forecasts["series_id"] == sid].sort_values("ds")
        first = row == 1
        for lo, hi, colour, name in (
            ("lo95", "hi95", "rgba(31,119,180,0.15)", "95% interval"),
            ("lo80", "hi80", "rgba(31,119,180,0.35)", "80% interval"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=pd.concat([f["ds"], f["ds"][::-1]]),
                    y=pd.concat([f[hi], f[lo][::-1]]),
                    fill="toself",
                    fillcolor=colour,
                    line={"width": 0},
                    hoverinfo="skip",
                    name=name,
                    legendgroup=name,
                    showlegend=first,
                ),
                row=row,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=h["ds"], y=h["y"], mode="lines", line={"color": "#424242", "width": 1},
                name="observed", legendgroup="observed", showlegend=first,
            ),
            row=row,
            col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=f["ds"], y=f["yhat"], mode="lines", line={"color": "#1f77b4", "width": 2},
                name="forecast", legendgroup="forecast", showlegend=first,
            ),
            row=row,
            col=1,
        )  # fmt: skip
    fig.update_layout(height=260 * max(len(ids), 1), margin={"l": 50, "r": 20, "t": 40, "b": 30})
    return fig


def policy_chart(summary: pd.DataFrame) -> go.Figure:
    """The inventory replay per policy: fill rate, stock-out days and total cost.

    Args:
        summary: One row per ``policy`` with ``fill_rate``, ``stockout_days`` and
            ``total_cost``.
    """
    panels = (
        ("fill_rate", "fill rate"),
        ("stockout_days", "stock-out days"),
        ("total_cost", "total cost"),
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels])
    for col, (column, _) in enumerate(panels, start=1):
        fig.add_trace(
            go.Bar(
                x=summary["policy"],
                y=summary[column],
                marker={"color": [_colour(i) for i in range(len(summary))]},
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(height=340, margin={"l": 50, "r": 20, "t": 40, "b": 30})
    return fig


def table_figure(df: pd.DataFrame, *, formats: Mapping[str, str] | None = None) -> go.Figure:
    """A table (e.g. the model evaluation), numbers formatted per column."""
    formats = formats or {}
    cells = [
        [formats.get(c, "{:.4g}").format(v) if isinstance(v, float) else str(v) for v in df[c]]
        for c in df.columns
    ]
    fig = go.Figure(
        go.Table(
            header={"values": list(df.columns), "fill": {"color": "#eeeeee"}, "align": "left"},
            cells={"values": cells, "align": "left"},
        )
    )
    fig.update_layout(
        height=min(80 + 28 * len(df), 900), margin={"l": 10, "r": 10, "t": 10, "b": 10}
    )
    return fig


def quality_charts(files: pd.DataFrame, reasons: pd.DataFrame) -> go.Figure:
    """Data quality: rows in / accepted / rejected per ingest run, quarantine by reason and file.

    Args:
        files: One row per ``run_id`` x ``source`` with ``rows_in``, ``rows_accepted`` and
            ``rows_rejected``.
        reasons: ``source``, ``source_file``, ``reason``, ``rows``.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        subplot_titles=[
            "rows per ingest run and source (accepted + rejected = rows in)",
            "quarantined rows by landing file and reason",
        ],
        vertical_spacing=0.32,
    )
    # One bar per run and source (the run id under the source).
    per_run = files.groupby(["run_id", "source"], as_index=False)[
        ["rows_in", "rows_accepted", "rows_rejected"]
    ].sum()
    label = per_run["source"] + "<br>" + per_run["run_id"]
    for i, column in enumerate(("rows_accepted", "rows_rejected")):
        fig.add_trace(
            go.Bar(
                x=label,
                y=per_run[column],
                customdata=per_run["rows_in"],
                hovertemplate=f"{column} %{{y}} of %{{customdata}}<extra></extra>",
                name=column,
                marker_color=_colour(i),
            ),
            row=1,
            col=1,
        )
    # Reasons get colours of their own (the run bars use the first two of PALETTE).
    reason_colours = qualitative.Dark24
    for i, (reason, part) in enumerate(reasons.groupby("reason")):
        fig.add_trace(
            go.Bar(
                x=part["source_file"],
                y=part["rows"],
                name=str(reason),
                marker_color=reason_colours[i % len(reason_colours)],
            ),
            row=2,
            col=1,
        )
    # Stacked: a run's bar is its rows in; a file's bar its quarantined rows.
    fig.update_layout(barmode="stack", height=760, margin={"l": 50, "r": 20, "t": 40, "b": 30})
    fig.update_xaxes(type="category")
    return fig


def timings_chart(stages: pd.DataFrame) -> go.Figure:
    """Seconds per stage of one run, in pipeline order.

    Args:
        stages: ``job``, ``seconds`` and ``status``, in the order to show.
    """
    fig = go.Figure(
        go.Bar(
            y=stages["job"],
            x=stages["seconds"],
            orientation="h",
            text=[
                f"{s:.0f} s ({st})"
                for s, st in zip(stages["seconds"], stages["status"], strict=True)
            ],
            marker={
                "color": ["#2ca02c" if s == "SUCCEEDED" else "#d62728" for s in stages["status"]]
            },
        )
    )
    fig.update_layout(
        height=80 + 32 * len(stages),
        margin={"l": 160, "r": 20, "t": 10, "b": 30},
        yaxis={"autorange": "reversed"},
        xaxis={"title": {"text": "seconds"}},
    )
    return fig
