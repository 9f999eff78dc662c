"""Distances of the routing decision: spheroidal geodesics, road-distance lookups, route lengths.

Geodesics on the WGS84 spheroid (pyproj ``Geod``) rounded to integer metres, because
OR-Tools works in integers; node 0 of every matrix is the depot by convention.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Geod

logger = logging.getLogger(__name__)

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


def road_matrix_from_frame(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Road distances ``{(from_id, to_id): metres}`` from a frame, for :func:`stop_matrix_m`.

    Built once on the driver and handed to the grouped function, which must not read files.

    Args:
        frame: Columns from_id, to_id (order ids; the warehouse id for the depot) and
            distance_m. Rows with a null in any of them are skipped.

    Returns:
        The lookup, distances rounded to whole metres.

    Raises:
        ValueError: If a column is missing.
    """
    missing = {"from_id", "to_id", "distance_m"} - set(frame.columns)
    if missing:
        raise ValueError(f"road matrix lacks columns {sorted(missing)}")
    frame = frame.dropna(subset=["from_id", "to_id", "distance_m"])
    return dict(
        zip(
            zip(frame["from_id"].astype(str), frame["to_id"].astype(str), strict=True),
            np.rint(frame["distance_m"].astype(float)).astype(np.int64).tolist(),
            strict=True,
        )
    )


def stop_matrix_m(
    ids: Sequence[str],
    lats: np.ndarray,
    lons: np.ndarray,
    road: Mapping[tuple[str, str], int] | None,
) -> np.ndarray:
    """Integer-metre matrix of one group: road distances where known, spheroidal otherwise.

    Args:
        ids: Node ids (the warehouse id for the depot at index 0, then order ids).
        lats: Latitudes of the nodes.
        lons: Longitudes of the nodes.
        road: Road distances ``{(from_id, to_id): metres}``, or None.

    Returns:
        The ``len(ids) x len(ids)`` matrix.
    """
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


def total_length_m(matrix: np.ndarray, routes: Sequence[Sequence[int]]) -> int:
    """Total length of several depot -> route -> depot trips over ``matrix``."""
    return sum(route_length_m(matrix, r) for r in routes)


__all__ = [
    "distance_matrix_m",
    "geodesic_m",
    "road_matrix_from_frame",
    "route_length_m",
    "stop_matrix_m",
    "total_length_m",
]
