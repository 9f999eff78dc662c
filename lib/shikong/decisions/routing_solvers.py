"""Solvers of the routing decision over an integer distance matrix (node 0 = depot).

A capacitated VRP with OR-Tools (optionally with time windows) and the greedy
nearest-neighbour baseline it must beat; both return a :class:`Solution`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from shikong.decisions.routing_distances import total_length_m


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
    return Solution(tuple(routes), dropped, total_length_m(matrix, routes))


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
    return Solution(tuple(routes), dropped, total_length_m(matrix, routes)), status, stop, seconds


def schedule(route: Sequence[int], timing: Timing) -> list[int]:
    """Earliest service start (s) at each stop, leaving the depot at 0 and waiting if early."""
    clock, cur, starts = 0, 0, []
    for node in route:
        clock = max(clock + int(timing.travel_s[cur, node]), int(timing.tw_start_s[node]))
        starts.append(clock)
        clock += int(timing.service_s[node])
        cur = node
    return starts


def is_feasible(
    sol: Solution,
    dem: np.ndarray,
    capacity: int,
    vehicles: int,
    timing: Timing | None,
    time_windows: bool,
) -> bool:
    """Whether ``sol`` respects the fleet size, capacities and (when in play) the time windows."""
    if len(sol.routes) > vehicles:
        return False
    for r in sol.routes:
        if int(dem[list(r)].sum()) > capacity:
            return False
        if time_windows and timing is not None:
            starts = schedule(r, timing)
            if any(s > timing.tw_end_s[n] for s, n in zip(starts, r, strict=True)):
                return False
            back = starts[-1] + int(timing.service_s[r[-1]]) + int(timing.travel_s[r[-1], 0])
            if back > timing.horizon_s:
                return False
    return True


__all__ = [
    "Solution",
    "Timing",
    "is_feasible",
    "nearest_neighbor_routes",
    "schedule",
    "solve_ortools",
]
