"""The report's figures and page on small inline frames (no Spark): what each draws."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
import shapely

from shikong.report import figures
from shikong.report.page import CHART, MAP, Section, Source, render


def _square(lon: float, lat: float, d: float = 0.01) -> dict:
    return shapely.geometry.mapping(shapely.box(lon, lat, lon + d, lat + d))


def test_hotspot_map_has_a_week_selector_and_opens_on_the_latest_full_week():
    classes = (("hot_99", 3.1), ("not_significant", 0.2), ("cold_95", -2.2))
    cells = pd.DataFrame(
        [
            (week, f"c{i}", _square(-46.6 + i / 100, -23.5), cls, z)
            for week in ("2024-01-01", "2024-01-08")
            for i, (cls, z) in enumerate(classes)
        ]
        # The last week is partial: one cell.
        + [("2024-01-15", "c0", _square(-46.6, -23.5), "hot_90", 1.7)],
        columns=["period", "cell", "geometry", "hotspot_class", "gi_z"],
    )
    fig = figures.hotspot_map(cells)
    # Polygons and centre dots per week.
    assert [t.name for t in fig.data][::2] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert [t.visible for t in fig.data] == [False, False, True, True, False, False]
    assert fig.layout.title.text == "Hot and cold spots, period 2024-01-08"
    # Class -> code: hot_99 top of the colour bar (6), cold_95 second from the bottom (1).
    assert list(fig.data[2].z) == [6.5, 3.5, 1.5]
    assert list(fig.data[3].marker.color) == ["#b2182b", "#bdbdbd", "#67a9cf"]
    dots = fig.data[3]
    assert dots.lon[0] == pytest.approx(-46.595) and dots.lat[0] == pytest.approx(-23.495)
    buttons = fig.layout.updatemenus[0].buttons
    assert buttons[0].args[0]["visible"] == [True, True, False, False, False, False]
    assert fig.layout.updatemenus[0].active == 1
    assert fig.layout.map.style == "white-bg"


def test_map_view_fits_the_points():
    view = figures.map_view([-23.5, -22.9], [-46.6, -43.2])
    assert view["center"] == pytest.approx({"lat": -23.2, "lon": -44.9})
    assert 5 < view["zoom"] < 8
    assert figures.map_view([float("nan")], [1.0]) == {
        "center": {"lat": 0.0, "lon": 0.0},
        "zoom": 1,
    }


def test_route_maps_put_each_solver_in_its_own_map_with_its_total():
    depot = (-46.60, -23.50)
    lines = pd.DataFrame(
        [
            ("ortools", 1, 2, 10.0, [depot, (-46.61, -23.51), (-46.62, -23.52), depot]),
            ("baseline", 1, 1, 7.0, [depot, (-46.61, -23.51), depot]),
            ("baseline", 2, 1, 6.5, [depot, (-46.62, -23.52), depot]),
        ],
        columns=["solver", "vehicle", "n_stops", "distance_km", "coords"],
    )
    fig = figures.route_maps(lines)
    assert [a.text for a in fig.layout.annotations] == [
        "OR-Tools: 10.0 km, 1 vehicles",
        "nearest neighbour: 13.5 km, 2 vehicles",
    ]
    assert [t.subplot for t in fig.data] == ["map", "map2", "map2"]
    assert list(fig.data[0].lon) == [-46.60, -46.61, -46.62, -46.60]


def test_fan_charts_draw_both_bands_and_state_the_mase():
    days = pd.date_range("2024-01-01", periods=5)
    history = pd.DataFrame({"series_id": "s1", "ds": days[:3], "y": [1.0, 2.0, 3.0]})
    fc = pd.DataFrame(
        {
            "series_id": "s1",
            "ds": days[3:],
            "yhat": [2.0, 2.5],
            "lo80": [1.0, 1.2],
            "hi80": [3.0, 3.5],
            "lo95": [0.5, 0.6],
            "hi95": [4.0, 4.4],
        }
    )
    fig = figures.fan_charts(history, fc, {"s1": 0.84}, {"s1": 1.02})
    assert [t.name for t in fig.data] == ["95% interval", "80% interval", "observed", "forecast"]
    assert fig.layout.annotations[0].text == "s1: backtest MASE 0.84, seasonal naive 1.02"
    # The band is the upper bound out and the lower bound back.
    assert list(fig.data[1].y) == [3.0, 3.5, 1.2, 1.0]


def test_quality_chart_stacks_accepted_and_rejected_to_rows_in():
    files = pd.DataFrame(
        {"run_id": ["r1", "r1"], "source": ["a", "b"], "rows_in": [10, 5],
         "rows_accepted": [9, 5], "rows_rejected": [1, 0]}
    )  # fmt: skip
    reasons = pd.DataFrame(
        {"source": ["a"], "source_file": ["a/f.csv"], "reason": ["BAD_PRICE"], "rows": [1]}
    )
    fig = figures.quality_charts(files, reasons)
    by_name = {t.name: list(t.y) for t in fig.data}
    # One bar per run and source, each its rows in.
    totals = [
        a + r for a, r in zip(by_name["rows_accepted"], by_name["rows_rejected"], strict=True)
    ]
    assert totals == [10, 5]
    assert list(fig.data[0].x) == ["a<br>r1", "b<br>r1"]
    assert by_name["BAD_PRICE"] == [1]
    assert fig.layout.barmode == "stack"


def test_page_is_one_offline_file_naming_every_source():
    fig = figures.timings_chart(
        pd.DataFrame(
            {"job": ["ingest", "report"], "seconds": [12.0, 3.0], "status": ["SUCCEEDED"] * 2}
        )
    )
    sections = [
        Section(
            "timings", "Stage timings", CHART, [Source("gold.stage_runs", "r1", 4)], figure=fig
        ),
        Section(
            "routes", "Routes <b>", MAP, [Source("gold.route_sketches", None, None)], empty="none"
        ),
    ]
    html = render(sections, title="t", run_id="r1", lakehouse="/x")
    # No script or stylesheet is fetched: plotly.js is inlined.
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"http", html)
    assert "gold.stage_runs (run r1, Delta version 4)" in html
    assert "gold.route_sketches (run unknown)" in html
    assert "Routes &lt;b&gt;" in html  # escaped
    assert html.count('class="sk-chart"') == 1 and 'class="sk-map"' not in html
    assert re.search(r'Plotly.newPlot\(\s*"fig-timings"', html)
    assert '"type":"bar"' in html


def test_table_figure_formats_numbers():
    df = pd.DataFrame(
        {"model": ["a"], "value": [0.123456], "n": [np.int64(7)], "day": [dt.date(2024, 1, 1)]}
    )
    fig = figures.table_figure(df)
    assert [list(c) for c in fig.data[0].cells.values] == [["a"], ["0.1235"], ["7"], ["2024-01-01"]]
