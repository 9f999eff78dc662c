"""Delivery routes per warehouse x delivery day: capacitated VRP (OR-Tools) vs nearest neighbour.

Plain pandas/numpy + OR-Tools, so it runs inside a Python worker of Spark's
``groupBy("warehouse_id", "delivery_date").applyInPandas(make_routing_fn(cfg),
ROUTING_OUTPUT_SCHEMA)`` and in unit tests alike.

Input contract (one frame per group, one row per order; :data:`ROUTING_INPUT_SCHEMA`)
    warehouse_id, delivery_date (date), order_id, lat, lon (WGS84 degrees), demand (units or
    weight, >= 0), depot_lat, depot_lon (the warehouse, repeated on every row), optional
    tw_start, tw_end (minutes after the start of the delivery day; null = no window).

Output: ONE long frame (:data:`ROUTING_OUTPUT_SCHEMA`) with a ``record_type`` column, because
the search is stopped by a clock as well as by a work budget and must therefore run once per
group - four separate UDFs would re-solve and could disagree. Rows:

    ``stop``      one per routed order     -> :data:`ROUTES_SCHEMA`
    ``route``     one per vehicle used     -> :data:`ROUTE_SUMMARY_SCHEMA`
    ``group``     exactly one per group    -> :data:`GROUP_SUMMARY_SCHEMA`
    ``unrouted``  one per order not routed -> :data:`UNROUTED_SCHEMA`

Split it with ``filter(record_type == ...)`` + ``select(*column_names(SCHEMA))`` (or
:func:`split_routing_output` in pandas). Every input row ends up in exactly one ``stop`` or
``unrouted`` row.

Distances: geodesics on the WGS84 spheroid (pyproj ``Geod``), rounded to integer metres
(OR-Tools works in integers), or a road-distance file when configured. Travel time is
distance / ``speed_kmh``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from pyproj import Geod

from shikong.decisions._frames import (
    _to_date,
    column_names,
    conform,
    frame_from_records,
    schema_fields,
)

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius R1

RECORD_STOP = "stop"
RECORD_ROUTE = "route"
RECORD_GROUP = "group"
RECORD_UNROUTED = "unrouted"

# Unrouted reason codes; an order gets the FIRST that applies, in this order.
MISSING_ORDER_ID = "MISSING_ORDER_ID"
DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
BAD_DEPOT = "BAD_DEPOT"  # depot coordinates missing/invalid
BAD_COORDINATE = "BAD_COORDINATE"  # stop lat/lon missing or out of range
BAD_DEMAND = "BAD_DEMAND"  # demand missing, negative or infinite
EXCEEDS_VEHICLE_CAPACITY = "EXCEEDS_VEHICLE_CAPACITY"  # one order larger than a vehicle
BAD_TIME_WINDOW = "BAD_TIME_WINDOW"  # tw_start > tw_end
TIME_WINDOW_UNREACHABLE = "TIME_WINDOW_UNREACHABLE"  # cannot be served even by a lone trip
FLEET_CAPACITY_EXCEEDED = "FLEET_CAPACITY_EXCEEDED"  # valid, but the fleet ran out of room
FLEET_CAPACITY_OR_TIME_WINDOWS = "FLEET_CAPACITY_OR_TIME_WINDOWS"  # same, windows in play

#: Column contract of the input rows.
ROUTING_INPUT_SCHEMA = (
    "warehouse_id string, delivery_date date, order_id string, lat double, lon double, "
    "demand double, depot_lat double, depot_lon double, tw_start double, tw_end double"
)
ROUTES_SCHEMA = (
    "warehouse_id string, delivery_date date, route_id string, vehicle int, stop_seq int, "
    "order_id string, lat double, lon double, demand double, cum_load double, leg_km double, "
    "service_start_min double"
)
ROUTE_SUMMARY_SCHEMA = (
    "warehouse_id string, delivery_date date, route_id string, vehicle int, n_stops int, "
    "distance_km double, load double, route_wkt string"
)
GROUP_SUMMARY_SCHEMA = (
    "warehouse_id string, delivery_date date, n_orders int, n_routed int, n_unrouted int, "
    "n_vehicles_used int, ortools_km double, baseline_km double, baseline_n_routed int, "
    "distance_km double, "
    "saving_pct double, chosen string, solver_status string, stop_reason string, "
    "solve_seconds double"
)
UNROUTED_SCHEMA = "warehouse_id string, delivery_date date, order_id string, reason string"


def _long_schema() -> str:
    seen: dict[str, str] = {"record_type": "string"}
    for ddl in (ROUTES_SCHEMA, ROUTE_SUMMARY_SCHEMA, GROUP_SUMMARY_SCHEMA, UNROUTED_SCHEMA):
        for name, typ in schema_fields(ddl):
            if seen.setdefault(name, typ) != typ:
                raise AssertionError(f"column {name} has two types")
    return ", ".join(f"{n} {t}" for n, t in seen.items())


#: The single frame returned by :func:`make_routing_fn` (union of the four, + record_type).
ROUTING_OUTPUT_SCHEMA = _long_schema()

_SCHEMA_BY_RECORD: dict[str, str] = {
    RECORD_STOP: ROUTES_SCHEMA,
    RECORD_ROUTE: ROUTE_SUMMARY_SCHEMA,
    RECORD_GROUP: GROUP_SUMMARY_SCHEMA,
    RECORD_UNROUTED: UNROUTED_SCHEMA,
}
_REQUIRED = (
    "warehouse_id",
    "delivery_date",
    "order_id",
    "lat",
    "lon",
    "demand",
    "depot_lat",
    "depot_lon",
)


@dataclass(frozen=True)
class RoutingConfig:
    """Fleet and solver settings, the same for every group.

    Attributes:
        vehicles: Vehicles available per warehouse and day.
        capacity: Capacity of each vehicle, in the unit of ``demand``.
        time_limit_s: Wall-clock cap of the OR-Tools search per group.
        solution_limit: Work budget of the search (solutions visited by guided local
            search). When it, not the clock, ends the search the result is reproducible
            bit for bit; ``None`` = stop on the clock only (not reproducible).
        speed_kmh: Travel speed for travel times.
        service_time_min: Time spent at each stop.
        horizon_min: Length of the working day; routes must be back by then (only when
            time windows are in play).
        use_time_windows: Honour ``tw_start``/``tw_end`` when the input has them.
        road_matrix_path: Optional CSV/Parquet file (from_id, to_id, distance_m; ids are
            order ids and the warehouse id for the depot). Pairs it lacks fall back to
            haversine; a missing file is logged and ignored. Must be readable on executors.
        demand_scale: Demands are handled as integers ``ceil(demand * demand_scale)`` and
            capacity as ``floor(capacity * demand_scale)``, so rounding never overloads.
    """

    vehicles: int = 10
    capacity: float = 100.0
    time_limit_s: float = 2.0
    solution_limit: int | None = 200
    speed_kmh: float = 30.0
    service_time_min: float = 0.0
    horizon_min: float = 24 * 60.0
    use_time_windows: bool = True
    road_matrix_path: str | None = None
    demand_scale: int = 1000

    def __post_init__(self) -> None:
        if int(self.vehicles) != self.vehicles or self.vehicles < 1:
            raise ValueError(f"vehicles must be an integer >= 1, got {self.vehicles}")
        if not self.capacity > 0:
            raise ValueError(f"capacity must be > 0, got {self.capacity}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if self.solution_limit is not None and self.solution_limit < 1:
            raise ValueError(f"solution_limit must be >= 1 or None, got {self.solution_limit}")
        if not self.speed_kmh > 0:
            raise ValueError(f"speed_kmh must be > 0, got {self.speed_kmh}")
        if self.service_time_min < 0:
            raise ValueError(f"service_time_min must be >= 0, got {self.service_time_min}")
        if not self.horizon_min > 0:
            raise ValueError(f"horizon_min must be > 0, got {self.horizon_min}")
        if int(self.demand_scale) != self.demand_scale or self.demand_scale < 1:
            raise ValueError(f"demand_scale must be an integer >= 1, got {self.demand_scale}")


@dataclass(frozen=True)
class Solution:
    """Routes over matrix nodes (0 = depot, stops 1..n), stops left out, total metres."""

    routes: tuple[tuple[int, ...], ...]
    dropped: tuple[int, ...]
    distance_m: int

    @property
    def key(self) -> tuple[int, int]:
        """Ordering of solutions: fewer orders left out first, then shorter."""
        return (len(self.dropped), self.distance_m)


@dataclass(frozen=True)
class Timing:
    """Time model in whole seconds: travel matrix, service per node, windows, horizon."""

    travel_s: np.ndarray
    service_s: np.ndarray
    tw_start_s: np.ndarray
    tw_end_s: np.ndarray
    horizon_s: int


@dataclass(frozen=True)
class RoutingResult:
    """The four outputs of one group, each conforming to its schema."""

    routes: pd.DataFrame
    route_summary: pd.DataFrame
    group_summary: pd.DataFrame
    unrouted: pd.DataFrame

    def to_long(self) -> pd.DataFrame:
        """Stack into the single :data:`ROUTING_OUTPUT_SCHEMA` frame."""
        parts = [
            frame.assign(record_type=rt)
            for rt, frame in (
                (RECORD_STOP, self.routes),
                (RECORD_ROUTE, self.route_summary),
                (RECORD_GROUP, self.group_summary),
                (RECORD_UNROUTED, self.unrouted),
            )
            if len(frame)
        ]
        stacked = pd.concat(parts, ignore_index=True, sort=False) if parts else pd.DataFrame()
        return conform(stacked, ROUTING_OUTPUT_SCHEMA)


# --------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------


def haversine_m(
    lat1: Any, lon1: Any, lat2: Any, lon2: Any, *, radius_m: float = EARTH_RADIUS_M
) -> np.ndarray:
    """Great-circle distance in metres (vectorised, broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2.0 * radius_m * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


_WGS84 = Geod(ellps="WGS84")


def geodesic_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Geodesic distance on the WGS84 spheroid in metres (vectorised, broadcasting)."""
    a, b, c, d = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2))
    )
    _, _, dist = _WGS84.inv(a.ravel(), b.ravel(), c.ravel(), d.ravel())
    return np.asarray(dist, dtype=float).reshape(a.shape)


def distance_matrix_m(
    lats: Sequence[float] | np.ndarray, lons: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Integer-metre spheroidal matrix between all points (index 0 is the depot by convention)."""
    la = np.asarray(lats, dtype=float)
    lo = np.asarray(lons, dtype=float)
    d = geodesic_m(la[:, None], lo[:, None], la[None, :], lo[None, :])
    return np.rint(d).astype(np.int64)


@functools.lru_cache(maxsize=4)
def _load_road_matrix(path: str, mtime_ns: int, size: int) -> Mapping[tuple[str, str], int]:
    del mtime_ns, size  # cache key only: a rewritten file is re-read
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    missing = {"from_id", "to_id", "distance_m"} - set(frame.columns)
    if missing:
        raise ValueError(f"road matrix {path} lacks columns {sorted(missing)}")
    frame = frame.dropna(subset=["from_id", "to_id", "distance_m"])
    return dict(
        zip(
            zip(frame["from_id"].astype(str), frame["to_id"].astype(str), strict=True),
            np.rint(frame["distance_m"].astype(float)).astype(np.int64).tolist(),
            strict=True,
        )
    )


def load_road_matrix(path: str | None) -> Mapping[tuple[str, str], int] | None:
    """Road distances ``{(from_id, to_id): metres}`` from a file, cached per process.

    Args:
        path: CSV or Parquet with columns from_id, to_id, distance_m; None to skip.

    Returns:
        The lookup, or None when no path is set or the file does not exist.
    """
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        logger.warning("road matrix %s not found; using haversine distances", path)
        return None
    return _load_road_matrix(path, st.st_mtime_ns, st.st_size)


def _matrix(
    ids: Sequence[str],
    lats: np.ndarray,
    lons: np.ndarray,
    road: Mapping[tuple[str, str], int] | None,
) -> np.ndarray:
    d = distance_matrix_m(lats, lons)
    if road:
        missing = 0
        for i, a in enumerate(ids):
            for j, b in enumerate(ids):
                if i != j:
                    v = road.get((a, b))
                    if v is None:
                        missing += 1
                    else:
                        d[i, j] = max(int(v), 0)
        if missing:
            logger.debug(
                "road matrix lacks %d of %d pairs; spheroidal distances used for those",
                missing,
                len(ids) * (len(ids) - 1),
            )
    return d


def route_length_m(matrix: np.ndarray, route: Sequence[int]) -> int:
    """Length of depot -> route -> depot over ``matrix`` (node 0 = depot)."""
    if not route:
        return 0
    path = [0, *route, 0]
    return int(sum(int(matrix[a, b]) for a, b in zip(path[:-1], path[1:], strict=True)))


def _total(matrix: np.ndarray, routes: Sequence[Sequence[int]]) -> int:
    return sum(route_length_m(matrix, r) for r in routes)


# --------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------


def nearest_neighbor_routes(
    matrix: np.ndarray,
    demands: Sequence[int] | np.ndarray,
    capacity: int,
    vehicles: int,
    timing: Timing | None = None,
) -> Solution:
    """Greedy baseline: from the depot always go to the nearest unvisited stop that still fits.

    When no remaining stop fits (capacity, and time windows when ``timing`` is given) the
    vehicle returns to the depot and the next one starts; stops left when the vehicles run
    out are dropped. Ties go to the lower node index, so the result is deterministic.

    Args:
        matrix: Integer distances, node 0 = depot.
        demands: Integer demand per node (index 0 ignored).
        capacity: Integer capacity per vehicle.
        vehicles: Number of vehicles.
        timing: Optional time model.

    Returns:
        The baseline :class:`Solution`.
    """
    n = len(matrix) - 1
    dem = np.asarray(demands, dtype=np.int64)
    left = np.zeros(n + 1, dtype=bool)
    left[1:] = True
    routes: list[tuple[int, ...]] = []
    for _ in range(vehicles):
        if not left.any():
            break
        cur, load, clock = 0, 0, 0
        route: list[int] = []
        while True:
            ok = left & (load + dem <= capacity)
            if timing is not None:
                start = np.maximum(clock + timing.travel_s[cur], timing.tw_start_s)
                back = start + timing.service_s + timing.travel_s[:, 0]
                ok &= (start <= timing.tw_end_s) & (back <= timing.horizon_s)
            cand = np.flatnonzero(ok)
            if cand.size == 0:
                break
            nxt = int(cand[np.argmin(matrix[cur, cand])])
            if timing is not None:
                clock = int(
                    max(clock + timing.travel_s[cur, nxt], timing.tw_start_s[nxt])
                    + timing.service_s[nxt]
                )
            route.append(nxt)
            load += int(dem[nxt])
            left[nxt] = False
            cur = nxt
        if not route:
            break  # identical vehicles: if an empty one cannot take anything, none can
        routes.append(tuple(route))
    dropped = tuple(int(i) for i in np.flatnonzero(left))
    return Solution(tuple(routes), dropped, _total(matrix, routes))


def solve_ortools(
    matrix: np.ndarray,
    demands: Sequence[int] | np.ndarray,
    capacity: int,
    vehicles: int,
    *,
    time_limit_s: float,
    solution_limit: int | None,
    timing: Timing | None = None,
) -> tuple[Solution | None, str, str, float]:
    """Capacitated VRP with OR-Tools: PATH_CHEAPEST_ARC then GUIDED_LOCAL_SEARCH.

    Every stop may be dropped at a penalty larger than any total route length, so the
    search first serves as many orders as it can and then minimises distance; this keeps
    over-full days solvable instead of failing.

    Args:
        matrix: Integer distances, node 0 = depot.
        demands: Integer demand per node (index 0 ignored).
        capacity: Integer capacity per vehicle.
        vehicles: Number of vehicles.
        time_limit_s: Wall-clock cap.
        solution_limit: Work budget (None = clock only).
        timing: Optional time model (adds a time dimension with windows).

    Returns:
        ``(solution or None, status name, stop reason, seconds)``; stop reason is
        ``solution_limit`` (reproducible), ``time_limit`` or ``search_completed``.
    """
    n = len(matrix) - 1
    manager = pywrapcp.RoutingIndexManager(n + 1, vehicles, 0)
    model = pywrapcp.RoutingModel(manager)
    arc = model.RegisterTransitMatrix(matrix.tolist())
    model.SetArcCostEvaluatorOfAllVehicles(arc)
    load = model.RegisterUnaryTransitVector([int(x) for x in demands])
    model.AddDimensionWithVehicleCapacity(load, 0, [int(capacity)] * vehicles, True, "load")
    if timing is not None:
        transit = timing.travel_s + timing.service_s[:, None]
        cb = model.RegisterTransitMatrix(transit.astype(np.int64).tolist())
        model.AddDimension(cb, timing.horizon_s, timing.horizon_s, False, "time")
        dim = model.GetDimensionOrDie("time")
        for node in range(1, n + 1):
            dim.CumulVar(manager.NodeToIndex(node)).SetRange(
                int(timing.tw_start_s[node]), int(timing.tw_end_s[node])
            )
    penalty = (n + vehicles + 1) * max(int(matrix.max()), 1) + 1
    for node in range(1, n + 1):
        model.AddDisjunction([manager.NodeToIndex(node)], penalty)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(1, int(round(time_limit_s * 1000))))
    if solution_limit is not None:
        params.solution_limit = int(solution_limit)
    params.log_search = False

    t0 = time.perf_counter()
    assignment = model.SolveWithParameters(params)
    seconds = time.perf_counter() - t0
    status = routing_enums_pb2.RoutingSearchStatus.Value.Name(model.status())
    if solution_limit is not None and model.solver().Solutions() >= solution_limit:
        stop = "solution_limit"
    elif seconds >= 0.95 * time_limit_s:
        stop = "time_limit"
    else:
        stop = "search_completed"
    if assignment is None:
        return None, status, stop, seconds

    routes: list[tuple[int, ...]] = []
    for v in range(vehicles):
        idx = assignment.Value(model.NextVar(model.Start(v)))
        route: list[int] = []
        while not model.IsEnd(idx):
            route.append(manager.IndexToNode(idx))
            idx = assignment.Value(model.NextVar(idx))
        if route:
            routes.append(tuple(route))
    served = {s for r in routes for s in r}
    dropped = tuple(i for i in range(1, n + 1) if i not in served)
    return Solution(tuple(routes), dropped, _total(matrix, routes)), status, stop, seconds


def _schedule(route: Sequence[int], timing: Timing) -> list[int]:
    """Earliest service start (s) at each stop, leaving the depot at 0 and waiting if early."""
    clock, cur, starts = 0, 0, []
    for node in route:
        clock = max(clock + int(timing.travel_s[cur, node]), int(timing.tw_start_s[node]))
        starts.append(clock)
        clock += int(timing.service_s[node])
        cur = node
    return starts


def _feasible(
    sol: Solution,
    dem: np.ndarray,
    capacity: int,
    vehicles: int,
    timing: Timing | None,
    time_windows: bool,
) -> bool:
    if len(sol.routes) > vehicles:
        return False
    for r in sol.routes:
        if int(dem[list(r)].sum()) > capacity:
            return False
        if time_windows and timing is not None:
            starts = _schedule(r, timing)
            if any(s > timing.tw_end_s[n] for s, n in zip(starts, r, strict=True)):
                return False
            back = starts[-1] + int(timing.service_s[r[-1]]) + int(timing.travel_s[r[-1], 0])
            if back > timing.horizon_s:
                return False
    return True


# --------------------------------------------------------------------------------------
# Group function
# --------------------------------------------------------------------------------------


def _valid_coords(lat: pd.Series, lon: pd.Series) -> pd.Series:
    return lat.between(-90, 90) & lon.between(-180, 180) & np.isfinite(lat) & np.isfinite(lon)


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def _first(series: pd.Series) -> Any:
    vals = series.dropna()
    return vals.iloc[0] if len(vals) else None


def solve_routing_group(stops: pd.DataFrame, cfg: RoutingConfig) -> RoutingResult:
    """Route one warehouse x delivery day.

    Args:
        stops: The group's orders (see module docstring for columns). Not modified.
        cfg: Fleet and solver configuration.

    Returns:
        The four outputs of the group.

    Raises:
        ValueError: If a required column is missing.
    """
    missing = [c for c in _REQUIRED if c not in stops.columns]
    if missing:
        raise ValueError(f"routing input lacks columns {missing}")

    df = pd.DataFrame(
        {
            "order_id": stops["order_id"].map(lambda v: None if pd.isna(v) else str(v)),
            "lat": _num(stops, "lat"),
            "lon": _num(stops, "lon"),
            "demand": _num(stops, "demand"),
            "depot_lat": _num(stops, "depot_lat"),
            "depot_lon": _num(stops, "depot_lon"),
            "tw_start": _num(stops, "tw_start"),
            "tw_end": _num(stops, "tw_end"),
        }
    )
    # Spark hands rows over in no particular order; sorting makes every tie-break (and so the
    # whole answer) independent of it.
    df = df.sort_values(
        ["order_id", "lat", "lon", "demand"], na_position="last", kind="mergesort"
    ).reset_index(drop=True)
    warehouse_id = _first(stops["warehouse_id"])
    warehouse_id = None if warehouse_id is None else str(warehouse_id)
    delivery_date = _to_date(_first(stops["delivery_date"]))
    keys = {"warehouse_id": warehouse_id, "delivery_date": delivery_date}

    depot_ok = _valid_coords(df["depot_lat"], df["depot_lon"])
    depot = None
    if depot_ok.any():
        depot_rows = df.loc[depot_ok, ["depot_lat", "depot_lon"]]
        depot = (float(depot_rows.iloc[0, 0]), float(depot_rows.iloc[0, 1]))
        if len(depot_rows.drop_duplicates()) > 1:
            logger.warning("group %s: several depot locations; using %s", keys, depot)

    scale = cfg.demand_scale
    cap_int = int(math.floor(cfg.capacity * scale + 1e-9))
    dem_int = np.ceil(
        df["demand"].fillna(0.0).clip(lower=0.0).replace(np.inf, 0.0).to_numpy() * scale - 1e-9
    ).astype(np.int64)

    use_tw = bool(cfg.use_time_windows and (df["tw_start"].notna() | df["tw_end"].notna()).any())
    horizon_s = int(round(cfg.horizon_min * 60))
    # Without windows in play the schedule is just "leave at 0, drive, serve".
    tw_lo = df["tw_start"] if use_tw else pd.Series(np.nan, index=df.index)
    tw_hi = df["tw_end"] if use_tw else pd.Series(np.nan, index=df.index)
    tw_start = (tw_lo.fillna(0.0) * 60).round().clip(lower=0).astype(np.int64)
    tw_end = (tw_hi.fillna(cfg.horizon_min) * 60).round().clip(upper=horizon_s).astype(np.int64)

    reason = pd.Series([None] * len(df), dtype=object)

    def flag(mask: pd.Series | np.ndarray, code: str) -> None:
        mask = pd.Series(np.asarray(mask, dtype=bool)) & reason.isna()
        reason[mask] = code

    flag(df["order_id"].isna(), MISSING_ORDER_ID)
    flag(df["order_id"].notna() & df["order_id"].duplicated(keep="first"), DUPLICATE_ORDER_ID)
    if depot is None:
        flag(np.ones(len(df), dtype=bool), BAD_DEPOT)
    flag(~_valid_coords(df["lat"], df["lon"]), BAD_COORDINATE)
    flag(~(np.isfinite(df["demand"]) & (df["demand"] >= 0)), BAD_DEMAND)
    flag(dem_int > cap_int, EXCEEDS_VEHICLE_CAPACITY)
    if use_tw:
        flag(tw_start > tw_end, BAD_TIME_WINDOW)

    cand = np.flatnonzero(reason.isna().to_numpy())
    timing: Timing | None = None
    matrix = np.zeros((1, 1), dtype=np.int64)
    if depot is not None:
        ids = [warehouse_id or "", *df.loc[cand, "order_id"].tolist()]
        lats = np.concatenate([[depot[0]], df.loc[cand, "lat"].to_numpy()])
        lons = np.concatenate([[depot[1]], df.loc[cand, "lon"].to_numpy()])
        matrix = _matrix(ids, lats, lons, load_road_matrix(cfg.road_matrix_path))
        mps = cfg.speed_kmh / 3.6
        service = np.concatenate([[0], np.full(len(cand), int(round(cfg.service_time_min * 60)))])
        timing = Timing(
            travel_s=np.ceil(matrix / mps).astype(np.int64),
            service_s=service.astype(np.int64),
            tw_start_s=np.concatenate([[0], tw_start.to_numpy()[cand]]),
            tw_end_s=np.concatenate([[horizon_s], tw_end.to_numpy()[cand]]),
            horizon_s=horizon_s,
        )
        if use_tw:
            # A stop no lone trip can serve in time would only be dropped later, with a vaguer
            # reason; name it now.
            arrive = np.maximum(timing.travel_s[0, 1:], timing.tw_start_s[1:])
            back = arrive + timing.service_s[1:] + timing.travel_s[1:, 0]
            late = (arrive > timing.tw_end_s[1:]) | (back > horizon_s)
            if late.any():
                flag(np.isin(np.arange(len(df)), cand[late]), TIME_WINDOW_UNREACHABLE)
                keep = np.concatenate([[0], 1 + np.flatnonzero(~late)])
                cand = cand[~late]
                matrix = matrix[np.ix_(keep, keep)]
                timing = Timing(
                    timing.travel_s[np.ix_(keep, keep)],
                    timing.service_s[keep],
                    timing.tw_start_s[keep],
                    timing.tw_end_s[keep],
                    horizon_s,
                )

    node_dem = np.concatenate([[0], dem_int[cand]]).astype(np.int64)
    solve_timing = timing if use_tw else None
    chosen_name, status, stop, seconds = "none", "SKIPPED_NO_ROUTABLE_STOPS", None, 0.0
    ort_km: float | None = None
    base_km: float | None = None
    base_routed: int | None = None
    chosen: Solution | None = None
    if len(cand):
        base = nearest_neighbor_routes(matrix, node_dem, cap_int, cfg.vehicles, solve_timing)
        base_km = base.distance_m / 1000.0
        base_routed = len(cand) - len(base.dropped)
        try:
            ort, status, stop, seconds = solve_ortools(
                matrix,
                node_dem,
                cap_int,
                cfg.vehicles,
                time_limit_s=cfg.time_limit_s,
                solution_limit=cfg.solution_limit,
                timing=solve_timing,
            )
        except Exception as exc:  # a solver crash must not take the Spark task down
            logger.exception("OR-Tools failed for group %s", keys)
            ort, status = None, f"ERROR:{type(exc).__name__}"
        if ort is not None and not _feasible(ort, node_dem, cap_int, cfg.vehicles, timing, use_tw):
            logger.error("OR-Tools returned an infeasible solution for group %s", keys)
            status, ort = status + ":INFEASIBLE_RESULT", None
        if ort is not None:
            ort_km = ort.distance_m / 1000.0
        if ort is not None and ort.key <= base.key:
            chosen, chosen_name = ort, "ortools"
        else:
            chosen, chosen_name = base, "baseline"
            logger.info(
                "group %s: baseline kept (OR-Tools %s, status %s)",
                keys,
                None if ort is None else ort.key,
                status,
            )

    # Assemble outputs.
    stop_rows: list[dict[str, Any]] = []
    route_rows: list[dict[str, Any]] = []
    date_txt = delivery_date.isoformat() if delivery_date is not None else "none"
    if chosen is not None and depot is not None:
        for v, route in enumerate(chosen.routes, start=1):
            route_id = f"{warehouse_id}:{date_txt}:{v:02d}"
            starts = _schedule(route, timing) if timing is not None else [None] * len(route)
            prev, cum = 0, 0.0
            coords = [(depot[1], depot[0])]
            for seq, (node, start) in enumerate(zip(route, starts, strict=True), start=1):
                row = df.loc[cand[node - 1]]
                cum += float(row["demand"])
                stop_rows.append(
                    {
                        **keys,
                        "route_id": route_id,
                        "vehicle": v,
                        "stop_seq": seq,
                        "order_id": row["order_id"],
                        "lat": row["lat"],
                        "lon": row["lon"],
                        "demand": row["demand"],
                        "cum_load": cum,
                        "leg_km": int(matrix[prev, node]) / 1000.0,
                        "service_start_min": None if start is None else start / 60.0,
                    }
                )
                coords.append((float(row["lon"]), float(row["lat"])))
                prev = node
            coords.append((depot[1], depot[0]))
            route_rows.append(
                {
                    **keys,
                    "route_id": route_id,
                    "vehicle": v,
                    "n_stops": len(route),
                    "distance_km": route_length_m(matrix, route) / 1000.0,
                    "load": cum,
                    "route_wkt": shapely.to_wkt(shapely.LineString(coords), rounding_precision=7),
                }
            )

    dropped_reason = FLEET_CAPACITY_OR_TIME_WINDOWS if use_tw else FLEET_CAPACITY_EXCEEDED
    if chosen is not None:
        for node in chosen.dropped:
            reason[cand[node - 1]] = dropped_reason
    unrouted_rows = [
        {**keys, "order_id": df.at[i, "order_id"], "reason": reason[i]}
        for i in range(len(df))
        if reason[i] is not None
    ]

    distance_km = chosen.distance_m / 1000.0 if chosen is not None else 0.0
    saving = (100.0 * (base_km - distance_km) / base_km) if base_km else None
    group_row = {
        **keys,
        "n_orders": len(df),
        "n_routed": len(stop_rows),
        "n_unrouted": len(unrouted_rows),
        "n_vehicles_used": len(route_rows),
        "ortools_km": ort_km,
        "baseline_km": base_km,
        "baseline_n_routed": base_routed,
        "distance_km": distance_km,
        "saving_pct": saving,
        "chosen": chosen_name,
        "solver_status": status,
        "stop_reason": stop,
        "solve_seconds": seconds,
    }
    if len(stop_rows) + len(unrouted_rows) != len(df):
        raise AssertionError(f"group {keys}: orders lost between routes and unrouted")
    return RoutingResult(
        routes=frame_from_records(stop_rows, ROUTES_SCHEMA),
        route_summary=frame_from_records(route_rows, ROUTE_SUMMARY_SCHEMA),
        group_summary=frame_from_records([group_row], GROUP_SUMMARY_SCHEMA),
        unrouted=frame_from_records(unrouted_rows, UNROUTED_SCHEMA),
    )


def make_routing_fn(cfg: RoutingConfig) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped-map function for ``applyInPandas(fn, ROUTING_OUTPUT_SCHEMA)``.

    Args:
        cfg: Fleet and solver configuration.

    Returns:
        ``fn(pdf) -> pdf``: one warehouse x day of orders in, the long
        ``record_type``-tagged frame out.
    """

    def routing_fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return solve_routing_group(pdf, cfg).to_long()

    return routing_fn


def split_routing_output(long: pd.DataFrame) -> RoutingResult:
    """Split the long frame (one group or many) back into the four schema-conforming frames."""
    frames = {
        rt: conform(long.loc[long["record_type"] == rt], ddl)
        for rt, ddl in _SCHEMA_BY_RECORD.items()
    }
    return RoutingResult(
        frames[RECORD_STOP], frames[RECORD_ROUTE], frames[RECORD_GROUP], frames[RECORD_UNROUTED]
    )


__all__ = [
    "BAD_COORDINATE",
    "BAD_DEMAND",
    "BAD_DEPOT",
    "BAD_TIME_WINDOW",
    "DUPLICATE_ORDER_ID",
    "EARTH_RADIUS_M",
    "EXCEEDS_VEHICLE_CAPACITY",
    "FLEET_CAPACITY_EXCEEDED",
    "FLEET_CAPACITY_OR_TIME_WINDOWS",
    "GROUP_SUMMARY_SCHEMA",
    "MISSING_ORDER_ID",
    "RECORD_GROUP",
    "RECORD_ROUTE",
    "RECORD_STOP",
    "RECORD_UNROUTED",
    "ROUTES_SCHEMA",
    "ROUTE_SUMMARY_SCHEMA",
    "ROUTING_INPUT_SCHEMA",
    "ROUTING_OUTPUT_SCHEMA",
    "TIME_WINDOW_UNREACHABLE",
    "UNROUTED_SCHEMA",
    "RoutingConfig",
    "RoutingResult",
    "Solution",
    "Timing",
    "column_names",
    "distance_matrix_m",
    "geodesic_m",
    "haversine_m",
    "load_road_matrix",
    "make_routing_fn",
    "nearest_neighbor_routes",
    "route_length_m",
    "solve_ortools",
    "solve_routing_group",
    "split_routing_output",
]
