"""Delivery routing decisions: coverage, capacity, baseline guarantee, brute force, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

from shikong.decisions import (
    BAD_COORDINATE,
    BAD_DEMAND,
    BAD_DEPOT,
    BAD_TIME_WINDOW,
    DUPLICATE_ORDER_ID,
    EXCEEDS_VEHICLE_CAPACITY,
    FLEET_CAPACITY_EXCEEDED,
    GROUP_SUMMARY_SCHEMA,
    MISSING_ORDER_ID,
    ROUTE_SUMMARY_SCHEMA,
    ROUTES_SCHEMA,
    ROUTING_OUTPUT_SCHEMA,
    TIME_WINDOW_UNREACHABLE,
    UNROUTED_SCHEMA,
    RoutingConfig,
    RoutingResult,
    Solution,
    column_names,
    ddl_fields,
    distance_matrix_m,
    geodesic_m,
    make_routing_fn,
    nearest_neighbor_routes,
    road_matrix_from_frame,
    routing,
    solve_routing_group,
    split_routing_output,
)
from shikong.geodesy import EARTH_RADIUS_M, haversine

# Also run inside the container image (make image-test).
pytestmark = pytest.mark.smoke

DEPOT = (-23.5505, -46.6333)
DAY = dt.date(2024, 5, 2)
# Small work budget: fast, and the solution limit (not the clock) ends the search.
FAST = dict(time_limit_s=10.0, solution_limit=60)
_ARROW = {
    "string": pa.string(),
    "date": pa.date32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


def _arrow_ok(df: pd.DataFrame, ddl: str) -> None:
    assert list(df.columns) == column_names(ddl)
    schema = pa.schema([(n, _ARROW[t]) for n, t in ddl_fields(ddl)])
    pa.Table.from_pandas(df, schema=schema, preserve_index=False, safe=True)


def _stops(n: int, seed: int, *, max_demand: int = 10, spread: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "warehouse_id": "W1",
            "delivery_date": DAY,
            "order_id": [f"o{i:03d}" for i in range(n)],
            "lat": DEPOT[0] + rng.normal(0, spread, n),
            "lon": DEPOT[1] + rng.normal(0, spread, n),
            "demand": rng.integers(1, max_demand + 1, n).astype(float),
            "depot_lat": DEPOT[0],
            "depot_lon": DEPOT[1],
        }
    )


def _check_solution(stops: pd.DataFrame, cfg: RoutingConfig) -> RoutingResult:
    """Invariants every group result must satisfy."""
    res = solve_routing_group(stops, cfg)
    routes, summary, group, unrouted = (
        res.routes,
        res.route_summary,
        res.group_summary,
        res.unrouted,
    )
    # every order exactly once: on a route or unrouted
    seen = list(routes["order_id"]) + list(unrouted["order_id"])
    assert sorted(seen, key=str) == sorted(stops["order_id"], key=str)
    assert len(routes["order_id"]) == len(set(routes["order_id"]))
    g = group.iloc[0]
    assert g["n_orders"] == len(stops)
    assert g["n_routed"] + g["n_unrouted"] == len(stops)
    # capacities and vehicles
    loads = routes.groupby("route_id")["demand"].sum()
    assert (loads <= cfg.capacity + 1e-9).all()
    assert routes["route_id"].nunique() <= cfg.vehicles
    for rid, grp in routes.groupby("route_id"):
        assert grp["stop_seq"].tolist() == list(range(1, len(grp) + 1))
        assert grp["cum_load"].iloc[-1] == pytest.approx(loads[rid])
    # never worse than the nearest-neighbour baseline: more orders delivered, or as many
    # and no longer
    if g["n_routed"]:
        assert g["n_routed"] >= g["baseline_n_routed"]
        if g["n_routed"] == g["baseline_n_routed"]:
            assert g["distance_km"] <= g["baseline_km"] + 1e-9
            assert g["saving_pct"] >= -1e-9
        if g["chosen"] == "ortools":
            assert g["ortools_km"] == pytest.approx(g["distance_km"])
    # summary consistent with the stop rows
    assert summary["distance_km"].sum() == pytest.approx(g["distance_km"])
    assert summary["n_stops"].sum() == g["n_routed"]
    for name, ddl in (
        (routes, ROUTES_SCHEMA),
        (summary, ROUTE_SUMMARY_SCHEMA),
        (group, GROUP_SUMMARY_SCHEMA),
        (unrouted, UNROUTED_SCHEMA),
    ):
        _arrow_ok(name, ddl)
    return res


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"vehicles": 0}, "vehicles", id="no-vehicles"),
        pytest.param({"vehicles": 1.5}, "vehicles", id="fractional-vehicles"),
        pytest.param({"capacity": 0}, "capacity", id="no-capacity"),
        pytest.param({"time_limit_s": 0}, "time_limit_s", id="no-time"),
        pytest.param({"solution_limit": 0}, "solution_limit", id="no-solutions"),
        pytest.param({"speed_kmh": -3}, "speed_kmh", id="negative-speed"),
        pytest.param({"service_time_min": -1}, "service_time_min", id="negative-service"),
        pytest.param({"horizon_min": 0}, "horizon_min", id="no-horizon"),
        pytest.param({"demand_scale": 0}, "demand_scale", id="no-scale"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RoutingConfig(**kwargs)


def test_missing_required_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="lacks columns.*demand"):
        solve_routing_group(_stops(3, 0).drop(columns="demand"), RoutingConfig())


# ------------------------------------------------------------------------------ distances


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        pytest.param((0.0, 0.0), (1.0, 0.0), EARTH_RADIUS_M * math.pi / 180, id="1-deg-lat"),
        pytest.param((0.0, 0.0), (0.0, 1.0), EARTH_RADIUS_M * math.pi / 180, id="1-deg-lon-eq"),
        pytest.param(
            (60.0, 0.0),
            (60.0, 1.0),
            2 * EARTH_RADIUS_M * math.asin(0.5 * math.sin(math.radians(0.5))),
            id="1-deg-lon-at-60N",
        ),
        pytest.param((10.0, 20.0), (10.0, 20.0), 0.0, id="same-point"),
    ],
)
def test_haversine(a: tuple[float, float], b: tuple[float, float], expected_m: float) -> None:
    assert float(haversine(a[0], a[1], b[0], b[1], radius=EARTH_RADIUS_M)) == pytest.approx(
        expected_m, rel=1e-9, abs=1e-6
    )


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        # WGS84 reference lengths: one degree of latitude at the equator / of longitude on it.
        pytest.param((0.0, 0.0), (1.0, 0.0), 110_574.389, id="1-deg-lat-equator"),
        pytest.param((0.0, 0.0), (0.0, 1.0), 111_319.491, id="1-deg-lon-equator"),
    ],
)
def test_geodesic_uses_the_spheroid(
    a: tuple[float, float], b: tuple[float, float], expected_m: float
) -> None:
    assert float(geodesic_m(a[0], a[1], b[0], b[1])) == pytest.approx(expected_m, abs=0.01)


def test_matrix_is_integer_symmetric_zero_diagonal() -> None:
    s = _stops(6, 1)
    m = distance_matrix_m(s["lat"], s["lon"])
    assert m.dtype == np.int64
    assert (m == m.T).all() and (np.diag(m) == 0).all()


def test_nearest_neighbour_by_hand() -> None:
    # depot at lon 0, stops at lon 1, 2, 3 on the equator; capacity 2 -> (1, 2) then (3)
    m = distance_matrix_m([0, 0, 0, 0], [0, 1, 2, 3])
    sol = nearest_neighbor_routes(m, [0, 1, 1, 1], capacity=2, vehicles=2)
    assert sol.routes == ((1, 2), (3,))
    assert sol.dropped == ()
    assert sol.distance_m == int(m[0, 1] + m[1, 2] + m[2, 0] + 2 * m[0, 3])
    one = nearest_neighbor_routes(m, [0, 1, 1, 1], capacity=2, vehicles=1)
    assert one.routes == ((1, 2),) and one.dropped == (3,)


# ------------------------------------------------------------------------------ solutions


@pytest.mark.parametrize(
    ("n", "seed", "vehicles", "capacity"),
    [
        pytest.param(1, 0, 1, 10.0, id="single-stop"),
        pytest.param(12, 1, 3, 25.0, id="12-stops-3-vehicles"),
        pytest.param(25, 2, 4, 45.0, id="25-stops-tight"),
        pytest.param(40, 3, 6, 60.0, id="40-stops"),
        pytest.param(40, 4, 1, 1000.0, id="40-stops-tsp"),
    ],
)
def test_every_stop_once_capacity_and_never_worse_than_baseline(
    n: int, seed: int, vehicles: int, capacity: float
) -> None:
    stops = _stops(n, seed)
    cfg = RoutingConfig(vehicles=vehicles, capacity=capacity, **FAST)
    res = _check_solution(stops, cfg)
    g = res.group_summary.iloc[0]
    if stops["demand"].sum() <= 0.8 * vehicles * capacity:
        assert g["n_unrouted"] == 0


def _brute_force_m(stops: pd.DataFrame) -> int:
    m = distance_matrix_m(np.r_[DEPOT[0], stops["lat"]], np.r_[DEPOT[1], stops["lon"]])
    best = None
    for perm in itertools.permutations(range(1, len(stops) + 1)):
        path = (0, *perm, 0)
        d = sum(int(m[a, b]) for a, b in itertools.pairwise(path))
        best = d if best is None or d < best else best
    assert best is not None
    return best


@pytest.mark.parametrize(
    ("n", "seed"),
    [
        pytest.param(3, 10, id="3-stops"),
        pytest.param(5, 11, id="5-stops"),
        pytest.param(6, 12, id="6-stops"),
        pytest.param(7, 13, id="7-stops"),
        pytest.param(7, 14, id="7-stops-b"),
    ],
)
def test_tiny_instance_matches_brute_force(n: int, seed: int) -> None:
    stops = _stops(n, seed, spread=0.08)
    cfg = RoutingConfig(vehicles=1, capacity=1e6, **FAST)
    res = _check_solution(stops, cfg)
    g = res.group_summary.iloc[0]
    assert g["distance_km"] == pytest.approx(_brute_force_m(stops) / 1000.0, abs=1e-6)
    assert g["n_vehicles_used"] == 1


def test_route_geometry_and_legs() -> None:
    stops = _stops(15, 21)
    res = _check_solution(stops, RoutingConfig(vehicles=3, capacity=40.0, **FAST))
    for r in res.route_summary.itertuples():
        line = shapely.from_wkt(r.route_wkt)
        coords = list(line.coords)
        assert coords[0] == pytest.approx((DEPOT[1], DEPOT[0]))
        assert coords[-1] == pytest.approx((DEPOT[1], DEPOT[0]))
        assert len(coords) == r.n_stops + 2
        legs = res.routes.loc[res.routes["route_id"] == r.route_id]
        inner = np.array(coords[1:-1])
        assert inner[:, 1] == pytest.approx(legs["lat"].to_numpy(), abs=1e-7)
        assert inner[:, 0] == pytest.approx(legs["lon"].to_numpy(), abs=1e-7)
        last = legs.iloc[-1]
        back = round(float(geodesic_m(last["lat"], last["lon"], *DEPOT))) / 1000.0
        assert r.distance_km == pytest.approx(legs["leg_km"].sum() + back, abs=1e-9)
        assert (legs["service_start_min"].diff().dropna() > 0).all()


def test_deterministic_and_independent_of_row_order() -> None:
    stops = _stops(30, 31)
    fn = make_routing_fn(RoutingConfig(vehicles=4, capacity=50.0, **FAST))
    a = fn(stops)
    b = fn(stops.sample(frac=1.0, random_state=1).reset_index(drop=True))
    assert (a.loc[a["record_type"] == "group", "stop_reason"] == "solution_limit").all()
    pd.testing.assert_frame_equal(a.drop(columns="solve_seconds"), b.drop(columns="solve_seconds"))


# ------------------------------------------------------------------------------ infeasible input


def _reasons(res: RoutingResult) -> dict[str, str]:
    return dict(zip(res.unrouted["order_id"].fillna("<null>"), res.unrouted["reason"], strict=True))


def test_fleet_overflow_goes_to_unrouted() -> None:
    stops = _stops(10, 41)
    stops["demand"] = 10.0  # 100 units, fleet carries 2 x 30
    res = _check_solution(stops, RoutingConfig(vehicles=2, capacity=30.0, **FAST))
    g = res.group_summary.iloc[0]
    assert (g["n_routed"], g["n_unrouted"]) == (6, 4)
    assert set(_reasons(res).values()) == {FLEET_CAPACITY_EXCEEDED}


DIRTY_CASES = [
    pytest.param(
        {"o000": {"demand": 500.0}},
        {"o000": EXCEEDS_VEHICLE_CAPACITY},
        id="stop-larger-than-vehicle",
    ),
    pytest.param(
        {"o001": {"lat": 95.0}, "o002": {"lon": np.nan}},
        {"o001": BAD_COORDINATE, "o002": BAD_COORDINATE},
        id="bad-coordinates",
    ),
    pytest.param(
        {"o003": {"demand": -1.0}, "o004": {"demand": np.nan}},
        {"o003": BAD_DEMAND, "o004": BAD_DEMAND},
        id="bad-demand",
    ),
    pytest.param({"o005": {"order_id": "o006"}}, {"o006": DUPLICATE_ORDER_ID}, id="duplicate-id"),
    pytest.param({"o007": {"order_id": None}}, {"<null>": MISSING_ORDER_ID}, id="null-id"),
]


@pytest.mark.parametrize(("edits", "expected"), DIRTY_CASES)
def test_bad_rows_are_unrouted_with_reason(edits: dict, expected: dict) -> None:
    stops = _stops(12, 51)
    for oid, changes in edits.items():
        for col, value in changes.items():
            stops.loc[stops["order_id"] == oid, col] = value
    res = _check_solution(stops, RoutingConfig(vehicles=3, capacity=60.0, **FAST))
    assert _reasons(res) == expected
    assert res.group_summary.iloc[0]["n_routed"] == len(stops) - len(expected)


def test_bad_depot_unroutes_everything() -> None:
    stops = _stops(5, 61)
    stops["depot_lat"] = np.nan
    res = _check_solution(stops, RoutingConfig(**FAST))
    assert set(_reasons(res).values()) == {BAD_DEPOT}
    g = res.group_summary.iloc[0]
    assert g["solver_status"] == "SKIPPED_NO_ROUTABLE_STOPS" and g["n_unrouted"] == 5


def test_time_windows_are_respected() -> None:
    stops = _stops(10, 71)
    stops["tw_start"] = [0, 0, 60, 60, 120, 120, 0, 30, 0, 200.0]
    stops["tw_end"] = [600, 90, 180, 600, 240, 600, 45, 600, 1, 100.0]
    # o008 must be served within a minute of leaving (it is km away), o009 closes before
    # it opens.
    cfg = RoutingConfig(vehicles=3, capacity=60.0, speed_kmh=25.0, service_time_min=5.0, **FAST)
    res = _check_solution(stops, cfg)
    assert _reasons(res) == {"o008": TIME_WINDOW_UNREACHABLE, "o009": BAD_TIME_WINDOW}
    merged = res.routes.merge(stops[["order_id", "tw_start", "tw_end"]], on="order_id")
    assert (merged["service_start_min"] >= merged["tw_start"] - 1e-9).all()
    assert (merged["service_start_min"] <= merged["tw_end"] + 1e-9).all()


# ------------------------------------------------------------------------------ fallback


def _worse(*args: object, **kwargs: object) -> tuple[Solution | None, str, str, float]:
    matrix, dem, cap, vehicles = args[:4]
    base = nearest_neighbor_routes(matrix, dem, cap, vehicles)  # type: ignore[arg-type]
    return (
        Solution(base.routes, base.dropped, base.distance_m + 1),
        "ROUTING_SUCCESS",
        "solution_limit",
        0.0,
    )


def _fails(*args: object, **kwargs: object) -> tuple[Solution | None, str, str, float]:
    return None, "ROUTING_FAIL", "time_limit", 0.0


def _raises(*args: object, **kwargs: object) -> tuple[Solution | None, str, str, float]:
    raise RuntimeError("solver crashed")


@pytest.mark.parametrize(
    ("fake", "status"),
    [
        pytest.param(_worse, "ROUTING_SUCCESS", id="ortools-worse"),
        pytest.param(_fails, "ROUTING_FAIL", id="ortools-no-solution"),
        pytest.param(_raises, "ERROR:RuntimeError", id="ortools-raises"),
    ],
)
def test_baseline_is_used_and_flagged_when_ortools_is_worse_or_fails(
    monkeypatch: pytest.MonkeyPatch, fake: object, status: str
) -> None:
    monkeypatch.setattr(routing, "solve_ortools", fake)
    res = _check_solution(_stops(15, 81), RoutingConfig(vehicles=3, capacity=50.0, **FAST))
    g = res.group_summary.iloc[0]
    assert g["chosen"] == "baseline" and g["solver_status"] == status
    assert g["distance_km"] == pytest.approx(g["baseline_km"]) and g["saving_pct"] == 0.0


# ------------------------------------------------------------------------------ wiring


def test_long_output_schema_and_split_round_trip() -> None:
    stops = _stops(20, 91)
    stops.loc[0, "demand"] = 999.0
    cfg = RoutingConfig(vehicles=2, capacity=60.0, **FAST)
    before = stops.copy(deep=True)
    long = make_routing_fn(cfg)(stops)
    pd.testing.assert_frame_equal(stops, before)  # pure: the input is untouched
    _arrow_ok(long, ROUTING_OUTPUT_SCHEMA)
    long_types = dict(ddl_fields(ROUTING_OUTPUT_SCHEMA))
    for ddl in (ROUTES_SCHEMA, ROUTE_SUMMARY_SCHEMA, GROUP_SUMMARY_SCHEMA, UNROUTED_SCHEMA):
        for name, typ in ddl_fields(ddl):
            assert long_types[name] == typ
    parts = split_routing_output(long)
    direct = solve_routing_group(stops, cfg)
    assert (long["record_type"] == "group").sum() == 1
    for got, want in (
        (parts.routes, direct.routes),
        (parts.unrouted, direct.unrouted),
        (parts.route_summary, direct.route_summary),
    ):
        pd.testing.assert_frame_equal(got, want)


def test_road_matrix_is_used_and_missing_file_ignored(tmp_path: object) -> None:
    from shikong.io.reference import road_matrix as read_road_matrix

    stops = _stops(5, 101)
    ids = ["W1", *stops["order_id"]]
    m = distance_matrix_m(np.r_[DEPOT[0], stops["lat"]], np.r_[DEPOT[1], stops["lon"]])
    rows = [
        {"from_id": a, "to_id": b, "distance_m": 2 * int(m[i, j])}
        for i, a in enumerate(ids)
        for j, b in enumerate(ids)
        if i != j
    ]
    path = tmp_path / "road.csv"  # type: ignore[operator]
    pd.DataFrame(rows).to_csv(path, index=False)
    cfg = RoutingConfig(vehicles=1, capacity=1e6, **FAST)
    plain = solve_routing_group(stops, cfg).group_summary.iloc[0]
    road_matrix = road_matrix_from_frame(read_road_matrix(str(path)))
    assert road_matrix == road_matrix_from_frame(pd.DataFrame(rows))
    road = solve_routing_group(stops, cfg, road_matrix=road_matrix)
    assert road.group_summary.iloc[0]["distance_km"] == pytest.approx(2 * plain["distance_km"])
    # The grouped function carries the lookup built on the driver; it reads no file.
    long = make_routing_fn(cfg, road_matrix=road_matrix)(stops)
    assert split_routing_output(long).group_summary.iloc[0]["distance_km"] == pytest.approx(
        2 * plain["distance_km"]
    )
    assert read_road_matrix(str(path) + ".missing") is None
    with pytest.raises(ValueError, match="lacks columns"):
        road_matrix_from_frame(pd.DataFrame(rows).drop(columns="distance_m"))


# ------------------------------------------------------------------------------ freight

#: (id, freight charged per order o000..o005, or None: the input has no such column).
#: o005 is larger than a vehicle: unrouted, its freight is in no total.
FREIGHT_CASES = [
    ("all-known", [1.5, 2.0, 0.0, 3.25, 4.0, 10.0]),
    ("some-unknown", [1.5, None, 0.0, None, 4.0, 10.0]),
    ("only-the-unrouted-known", [None, None, None, None, None, 10.0]),
    ("none-known", [None] * 6),
    ("no-column", None),
]


def _known_total(values: pd.Series) -> float | None:
    known = values.dropna()
    return float(known.sum()) if len(known) else None


@pytest.mark.parametrize(("case", "freight"), FREIGHT_CASES, ids=[c for c, _ in FREIGHT_CASES])
def test_freight_totals_per_stop_route_and_group(case: str, freight: list | None) -> None:
    stops = _stops(6, 7)
    stops.loc[5, "demand"] = 500.0
    if freight is not None:
        stops["freight_value"] = pd.array(freight, dtype="Float64")
    res = _check_solution(stops, RoutingConfig(vehicles=3, capacity=12.0, **FAST))
    assert res.unrouted["order_id"].tolist() == ["o005"]
    charged = (
        stops.set_index("order_id")["freight_value"].astype(float)
        if freight is not None
        else pd.Series(np.nan, index=stops["order_id"])
    )
    stop_freight = res.routes["order_id"].map(charged)
    pd.testing.assert_series_equal(
        res.routes["freight_value"].astype(float), stop_freight, check_names=False
    )
    for route in res.route_summary.itertuples():
        on_route = res.routes.loc[res.routes["route_id"] == route.route_id, "order_id"]
        want = _known_total(charged[on_route])
        assert (None if pd.isna(route.freight_value) else route.freight_value) == want
    group = res.group_summary.iloc[0]["freight_value"]
    want = _known_total(charged[res.routes["order_id"]])
    assert (None if pd.isna(group) else group) == (None if want is None else pytest.approx(want))


def test_route_tables_report_the_freight_of_the_routed_orders(spark, cfg) -> None:
    """The routes stage on inline bronze: an order's freight is the sum of its lines' (null
    when a line's is unknown); gold.route_groups and gold.routes hold the total over their
    routed orders, which an independent pandas computation repeats."""
    from shikong.io.catalog import Catalog
    from shikong.stages import delivery_routes
    from shikong.stages.context import StageContext

    cat = Catalog(cfg.paths.lakehouse)
    days = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    rng = np.random.default_rng(5)
    ids = [f"O{i}" for i in range(10)]
    ts = [dt.datetime.combine(days[i % 2], dt.time(10)) for i in range(10)]
    orders = pd.DataFrame(
        {
            "order_id": ids,
            "customer_id": "C1",
            "order_ts": ts,
            "warehouse_id": "W1",
            "lat": DEPOT[0] + rng.uniform(-0.05, 0.05, 10),
            "lon": DEPOT[1] + rng.uniform(-0.05, 0.05, 10),
            # O8 is cancelled: no stop at all
            "status": ["canceled" if i == 8 else "delivered" for i in range(10)],
            "order_date": [t.date() for t in ts],
            "order_month": "2024-03",
        }
    )

    # Two lines an order; O2 has a line without freight, O3 none at all; O4 needs more
    # than a vehicle carries (unrouted, its freight in no total).
    def freight(order_id: str, line_no: int) -> float | None:
        unknown = order_id == "O3" or (order_id, line_no) == ("O2", 2)
        return None if unknown else round(float(rng.uniform(0, 30)), 2)

    lines = pd.DataFrame(
        [
            (oid, n, t, "S1", 500 if oid == "O4" else 2, 10.0, freight(oid, n))
            for oid, t in zip(ids, ts, strict=True)
            for n in (1, 2)
        ],
        columns=[
            "order_id",
            "line_no",
            "order_ts",
            "sku",
            "quantity",
            "unit_price",
            "freight_value",
        ],
    ).assign(order_date=lambda d: d["order_ts"].dt.date, order_month="2024-03")
    lineage = {
        "_source_file": "inline",
        "_ingest_run_id": "r1",
        "_ingested_at": dt.datetime(2024, 4, 1),
    }
    warehouses = pd.DataFrame(
        [("W1", "sao paulo", "SP", *DEPOT, 50.0)],
        columns=["warehouse_id", "city", "state", "lat", "lon", "service_radius_km"],
    )
    for name, frame in (("warehouses", warehouses), ("orders", orders), ("order_lines", lines)):
        cat.write(spark, f"bronze.{name}", spark.createDataFrame(frame.assign(**lineage)))

    fast = dataclasses.replace(cfg.decisions, route_time_limit_s=1.0, vehicle_capacity=20.0)
    delivery_routes.run(
        StageContext.create(spark, dataclasses.replace(cfg, decisions=fast)), days=0
    )

    groups = cat.read(spark, "gold.route_groups").toPandas()
    routes = cat.read(spark, "gold.routes").toPandas()
    stops = cat.read(spark, "gold.route_stops").toPandas()
    assert "O4" not in set(stops["order_id"]) and "O8" not in set(stops["order_id"])
    # The oracle: freight per order from the lines, then totals over the routed orders.
    per_order = lines.groupby("order_id")["freight_value"].agg(
        lambda f: f.sum() if f.notna().all() else np.nan
    )
    routed = stops.assign(charged=stops["order_id"].map(per_order))
    assert routed["charged"].isna().sum() == 2  # O2 and O3
    for keys, table in (
        (["warehouse_id", "delivery_date"], groups),
        (["route_id"], routes),
    ):
        oracle = routed.groupby(keys)["charged"].sum(min_count=1)
        got = table.set_index(keys)["freight_value"]
        assert len(got) == len(oracle)
        pd.testing.assert_series_equal(
            got.sort_index(), oracle.sort_index(), check_names=False, rtol=1e-12
        )
    assert groups["freight_value"].notna().all()
