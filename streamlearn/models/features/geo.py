"""Great-circle distance and bearing on a spherical Earth (degrees in, metres out)."""

from __future__ import annotations

import math

__all__ = ["EARTH_RADIUS_M", "bearing_rad", "haversine_m"]

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees.

    Examples
    --------
    One degree of latitude along a meridian is ``R * pi / 180``:

    >>> round(haversine_m(0.0, 0.0, 1.0, 0.0), 1), round(EARTH_RADIUS_M * math.pi / 180, 1)
    (111195.1, 111195.1)
    >>> round(haversine_m(48.8566, 2.3522, 51.5074, -0.1278) / 1000, 1)  # Paris - London
    343.6
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_rad(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, radians clockwise from north, in (-pi, pi].

    Examples
    --------
    >>> round(math.degrees(bearing_rad(0.0, 0.0, 0.0, 1.0)), 6)  # due east
    90.0
    >>> round(math.degrees(bearing_rad(0.0, 0.0, -1.0, 0.0)), 6)  # due south
    180.0
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.atan2(y, x)
