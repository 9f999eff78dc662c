"""Delivery routes per warehouse x delivery day: capacitated VRP (OR-Tools) vs nearest neighbour.

Plain pandas/numpy + OR-Tools, so it runs inside a Python worker of Spark's
``groupBy("warehouse_id", "delivery_date").applyInPandas(make_routing_fn(cfg),
ROUTING_OUTPUT_SCHEMA)`` and in unit tests alike.

Input contract (one frame per group, one row per order; :data:`ROUTING_INPUT_SCHEMA`)
    warehouse_id, delivery_date (date), order_id, lat, lon (WGS84 degrees), demand (units or
    weight, >= 0), depot_lat, depot_lon (the warehouse, repeated on every row), optional
    tw_start, tw_end (minutes after the start of the delivery day; null = no window) and
    freight_value (the freight charged for the order; null = unknown), which the outputs
    total per route and per group over the routed orders whose freight is known.

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
(OR-Tools works in integers), or road distances the caller passes in (read on the driver,
never in the grouped function; :mod:`shikong.decisions.routing_distances`). Travel time is
distance / ``speed_kmh``. The solvers (OR-Tools and the nearest-neighbour baseline) are in
:mod:`shikong.decisions.routing_solvers`; this module validates a group, runs both and
assembles the outputs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from shikong.config import DecisionSettings
from shikong.decisions.routing_distances import route_length_m, stop_matrix_m
from shikong.decisions.routing_solvers import (
    Solution,
    Timing,
    is_feasible,
    nearest_neighbor_routes,
    schedule,
    solve_ortools,
)
from shikong.frames import conform, ddl_fields, frame_from_records, to_date

logger = logging.getLogger(__name__)

RECORD_STOP = "stop"
RECORD_ROUTE = "route"
RECORD_GROUP = "group"
RECORD_UNROUTED = "unrouted"
RECORD_PATH = "path"

#: ``solver`` of a path: the two solutions every group is solved with.
SOLVER_ORTOOLS, SOLVER_BASELINE = "ortools", "baseline"

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
    "demand double, depot_lat double, depot_lon double, tw_start double, tw_end double, "
    "freight_value double"
)
ROUTES_SCHEMA = (
    "warehouse_id string, delivery_date date, route_id string, vehicle int, stop_seq int, "
    "order_id string, lat double, lon double, demand double, cum_load double, leg_km double, "
    "service_start_min double, freight_value double"
)
#: ``freight_value`` of a route or group: the freight charged on its routed orders whose
#: freight is known; null when none is.
ROUTE_SUMMARY_SCHEMA = (
    "warehouse_id string, delivery_date date, route_id string, vehicle int, n_stops int, "
    "distance_km double, load double, route_wkt string, freight_value double"
)
GROUP_SUMMARY_SCHEMA = (
    "warehouse_id string, delivery_date date, n_orders int, n_routed int, n_unrouted int, "
    "n_vehicles_used int, ortools_km double, baseline_km double, baseline_n_routed int, "
    "distance_km double, "
    "saving_pct double, chosen string, solver_status string, stop_reason string, "
    "solve_seconds double, freight_value double"
)
UNROUTED_SCHEMA = "warehouse_id string, delivery_date date, order_id string, reason string"
#: The stops of BOTH solutions in visiting order (the depot is not repeated): what the
#: routing stage coarsens into the published route sketches. Never stored as it is.
ROUTE_PATH_SCHEMA = (
    "warehouse_id string, delivery_date date, solver string, vehicle int, stop_seq int, "
    "lat double, lon double, route_km double"
)


def _long_schema() -> str:
    seen: dict[str, str] = {"record_type": "string"}
    for ddl in (
        ROUTES_SCHEMA,
        ROUTE_SUMMARY_SCHEMA,
        GROUP_SUMMARY_SCHEMA,
        UNROUTED_SCHEMA,
        ROUTE_PATH_SCHEMA,
    ):
        for name, typ in ddl_fields(ddl):
            if seen.setdefault(name, typ) != typ:
                raise AssertionError(f"column {name} has two types")
    return ", ".join(f"{n} {t}" for n, t in seen.items())


#: The single frame returned by :func:`make_routing_fn` (union of the five, + record_type).
ROUTING_OUTPUT_SCHEMA = _long_schema()

_SCHEMA_BY_RECORD: dict[str, str] = {
    RECORD_STOP: ROUTES_SCHEMA,
    RECORD_ROUTE: ROUTE_SUMMARY_SCHEMA,
    RECORD_GROUP: GROUP_SUMMARY_SCHEMA,
    RECORD_UNROUTED: UNROUTED_SCHEMA,
    RECORD_PATH: ROUTE_PATH_SCHEMA,
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


def routing_config(d: DecisionSettings) -> RoutingConfig:
    """OR-Tools settings from the config."""
    return RoutingConfig(
        vehicles=d.vehicles,
        capacity=d.vehicle_capacity,
        time_limit_s=d.route_time_limit_s,
        solution_limit=d.route_solution_limit,
        speed_kmh=d.speed_kmh,
    )


@dataclass(frozen=True)
class RoutingResult:
    """The outputs of one group, each conforming to its schema."""

    routes: pd.DataFrame
    route_summary: pd.DataFrame
    group_summary: pd.DataFrame
    unrouted: pd.DataFrame
    paths: pd.DataFrame

    def to_long(self) -> pd.DataFrame:
        """Stack into the single :data:`ROUTING_OUTPUT_SCHEMA` frame."""
        parts = [
            frame.assign(record_type=rt)
            for rt, frame in (
                (RECORD_STOP, self.routes),
                (RECORD_ROUTE, self.route_summary),
                (RECORD_GROUP, self.group_summary),
                (RECORD_UNROUTED, self.unrouted),
                (RECORD_PATH, self.paths),
            )
            if len(frame)
        ]
        stacked = pd.concat(parts, ignore_index=True, sort=False) if parts else pd.DataFrame()
        return conform(stacked, ROUTING_OUTPUT_SCHEMA)


def _valid_coords(lat: pd.Series, lon: pd.Series) -> pd.Series:
    return lat.between(-90, 90) & lon.between(-180, 180) & np.isfinite(lat) & np.isfinite(lon)


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def _known_sum(values: pd.Series) -> float | None:
    """The sum of the known (not null) values; ``None`` when none is known."""
    known = pd.to_numeric(values, errors="coerce").dropna()
    return float(known.sum()) if len(known) else None


def _first(series: pd.Series) -> Any:
    vals = series.dropna()
    return vals.iloc[0] if len(vals) else None


def solve_routing_group(
    stops: pd.DataFrame,
    cfg: RoutingConfig,
    *,
    road_matrix: Mapping[tuple[str, str], int] | None = None,
) -> RoutingResult:
    """Route one warehouse x delivery day.

    Args:
        stops: The group's orders (see module docstring for columns). Not modified.
        cfg: Fleet and solver configuration.
        road_matrix: Road distances ``{(from_id, to_id): metres}`` (ids are order ids and the
            warehouse id for the depot; see
            :func:`~shikong.decisions.routing_distances.road_matrix_from_frame`). Pairs it
            lacks use spheroidal distances; None = spheroidal only.

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
            "freight_value": _num(stops, "freight_value"),
        }
    )
    # Spark hands rows over in no particular order; sorting makes every tie-break (and so the
    # whole answer) independent of it.
    df = df.sort_values(
        ["order_id", "lat", "lon", "demand"], na_position="last", kind="mergesort"
    ).reset_index(drop=True)
    warehouse_id = _first(stops["warehouse_id"])
    warehouse_id = None if warehouse_id is None else str(warehouse_id)
    delivery_date = to_date(_first(stops["delivery_date"]))
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
        matrix = stop_matrix_m(ids, lats, lons, road_matrix)
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
    ort: Solution | None = None
    base: Solution | None = None
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
        if ort is not None and not is_feasible(
            ort, node_dem, cap_int, cfg.vehicles, timing, use_tw
        ):
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
            starts = schedule(route, timing) if timing is not None else [None] * len(route)
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
                        "freight_value": row["freight_value"],
                    }
                )
                coords.append((float(row["lon"]), float(row["lat"])))
                prev = node
            coords.append((depot[1], depot[0]))
            freight = df.loc[cand[[node - 1 for node in route]], "freight_value"]
            route_rows.append(
                {
                    **keys,
                    "route_id": route_id,
                    "vehicle": v,
                    "n_stops": len(route),
                    "distance_km": route_length_m(matrix, route) / 1000.0,
                    "load": cum,
                    "route_wkt": shapely.to_wkt(shapely.LineString(coords), rounding_precision=7),
                    "freight_value": _known_sum(freight),
                }
            )

    # Both solutions' stops, so a map can show the baseline next to OR-Tools.
    path_rows = [
        row
        for solver, solution in ((SOLVER_ORTOOLS, ort), (SOLVER_BASELINE, base))
        if solution is not None and depot is not None
        for row in _path_rows(keys, solver, solution, matrix, df.loc[cand])
    ]

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
        "freight_value": _known_sum(pd.Series([r["freight_value"] for r in stop_rows])),
    }
    if len(stop_rows) + len(unrouted_rows) != len(df):
        raise AssertionError(f"group {keys}: orders lost between routes and unrouted")
    return RoutingResult(
        routes=frame_from_records(stop_rows, ROUTES_SCHEMA),
        route_summary=frame_from_records(route_rows, ROUTE_SUMMARY_SCHEMA),
        group_summary=frame_from_records([group_row], GROUP_SUMMARY_SCHEMA),
        unrouted=frame_from_records(unrouted_rows, UNROUTED_SCHEMA),
        paths=frame_from_records(path_rows, ROUTE_PATH_SCHEMA),
    )


def _path_rows(
    keys: Mapping[str, Any],
    solver: str,
    solution: Solution,
    matrix: np.ndarray,
    nodes: pd.DataFrame,
) -> list[dict[str, Any]]:
    """The :data:`ROUTE_PATH_SCHEMA` rows of one solution (``nodes``: the routed
    candidates, node ``i`` is row ``i - 1``)."""
    return [
        {
            **keys,
            "solver": solver,
            "vehicle": v,
            "stop_seq": seq,
            "lat": float(nodes.iloc[node - 1]["lat"]),
            "lon": float(nodes.iloc[node - 1]["lon"]),
            "route_km": route_length_m(matrix, route) / 1000.0,
        }
        for v, route in enumerate(solution.routes, start=1)
        for seq, node in enumerate(route, start=1)
    ]


def make_routing_fn(
    cfg: RoutingConfig, *, road_matrix: Mapping[tuple[str, str], int] | None = None
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped-map function for ``applyInPandas(fn, ROUTING_OUTPUT_SCHEMA)``.

    Args:
        cfg: Fleet and solver configuration.
        road_matrix: Road distances built on the driver (see :func:`solve_routing_group`);
            they travel with the function to every task, so keep them to the pairs routed.

    Returns:
        ``fn(pdf) -> pdf``: one warehouse x day of orders in, the long
        ``record_type``-tagged frame out.
    """

    def routing_fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return solve_routing_group(pdf, cfg, road_matrix=road_matrix).to_long()

    return routing_fn


def split_routing_output(long: pd.DataFrame) -> RoutingResult:
    """Split the long frame (one group or many) back into the four schema-conforming frames."""
    frames = {
        rt: conform(long.loc[long["record_type"] == rt], ddl)
        for rt, ddl in _SCHEMA_BY_RECORD.items()
    }
    return RoutingResult(
        frames[RECORD_STOP],
        frames[RECORD_ROUTE],
        frames[RECORD_GROUP],
        frames[RECORD_UNROUTED],
        frames[RECORD_PATH],
    )


__all__ = [
    "BAD_COORDINATE",
    "BAD_DEMAND",
    "BAD_DEPOT",
    "BAD_TIME_WINDOW",
    "DUPLICATE_ORDER_ID",
    "EXCEEDS_VEHICLE_CAPACITY",
    "FLEET_CAPACITY_EXCEEDED",
    "FLEET_CAPACITY_OR_TIME_WINDOWS",
    "GROUP_SUMMARY_SCHEMA",
    "MISSING_ORDER_ID",
    "RECORD_GROUP",
    "RECORD_PATH",
    "RECORD_ROUTE",
    "RECORD_STOP",
    "RECORD_UNROUTED",
    "ROUTES_SCHEMA",
    "ROUTE_PATH_SCHEMA",
    "ROUTE_SUMMARY_SCHEMA",
    "ROUTING_INPUT_SCHEMA",
    "ROUTING_OUTPUT_SCHEMA",
    "TIME_WINDOW_UNREACHABLE",
    "UNROUTED_SCHEMA",
    "SOLVER_BASELINE",
    "SOLVER_ORTOOLS",
    "RoutingConfig",
    "RoutingResult",
    "make_routing_fn",
    "routing_config",
    "solve_routing_group",
    "split_routing_output",
]
