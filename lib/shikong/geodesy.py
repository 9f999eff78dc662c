"""Great-circle distance: the one haversine every package uses (core, pure numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: IUGG mean Earth radius R1, in km and in metres.
EARTH_RADIUS_KM = 6371.0088
EARTH_RADIUS_M = 6_371_008.8


def haversine(
    lat1: Any, lon1: Any, lat2: Any, lon2: Any, *, radius: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """Great-circle distance between points in degrees (numpy broadcasting).

    The unit is the unit of ``radius``: km by default, metres with
    ``radius=EARTH_RADIUS_M`` (multiplying km by 1000 afterwards would round differently).

    Args:
        lat1: Latitudes of the first points, degrees.
        lon1: Longitudes of the first points, degrees.
        lat2: Latitudes of the second points, degrees.
        lon2: Longitudes of the second points, degrees.
        radius: Sphere radius in the unit wanted.

    Returns:
        Distances, broadcast shape of the inputs.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2.0 * radius * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
