"""Web Mercator's limits and a footprint's longitudes/latitudes, the facts bounds and coverage share.

pyproj only (no rasterio), so the merge and the coverage map stay light to import.
"""

from __future__ import annotations

import math
from functools import cache

from pyproj import CRS, Transformer

X_MAX_3857 = 20037508.342789244  # Mapterhorn's utils.X_MAX_3857: half the width of Web Mercator
MERCATOR_MAX_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511…°: where y = ±X_MAX_3857


@cache
def _to_lonlat(crs_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(crs_wkt), "EPSG:4326", always_xy=True)


@cache
def _to_lonlat_from(crs: str) -> Transformer:
    """By the CRS as given (a recipe's text, a raster's WKT): pyproj builds a CRS in ~3 ms, once per chunk."""
    return _to_lonlat(CRS.from_user_input(crs).to_wkt())


def lonlat_bounds(crs, bounds) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of a footprint given by its bounds in `crs`: west > east
    across the antimeridian, −180…180 when it spans every longitude (a pole inside); None when it
    lies entirely beyond Web Mercator's latitudes. Edges densified as Mapterhorn does (21 points)."""
    west, south, east, north = _to_lonlat_from(crs if isinstance(crs, str) else crs.to_wkt()).transform_bounds(
        *bounds, densify_pts=21
    )
    if east - west >= 360:
        west, east = -180.0, 180.0
    elif west < -180 or east > 180:  # a geographic raster overhanging ±180 (glo30 W180 tiles by half a pixel)
        west = (west + 180) % 360 - 180
        east = -((180 - east) % 360 - 180)
    if south >= MERCATOR_MAX_LAT or north <= -MERCATOR_MAX_LAT:
        return None
    return west, south, east, north


def is_plain(geo: tuple[float, float, float, float] | None) -> bool:
    """Neither across ±180°, nor around a pole, nor beyond the Mercator latitudes: plain reprojection is right."""
    if geo is None:
        return False
    west, south, east, north = geo
    return west < east and east - west < 360 and -MERCATOR_MAX_LAT < south and north < MERCATOR_MAX_LAT
