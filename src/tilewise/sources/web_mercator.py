"""Web Mercator's limits and a footprint's longitudes/latitudes, the facts bounds and coverage share.

pyproj only (no rasterio), so the merge and the coverage map stay light to import.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

X_MAX_3857 = 20037508.342789244  # Mapterhorn's utils.X_MAX_3857: half the width of Web Mercator
MERCATOR_MAX_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511…°: where y = ±X_MAX_3857
# How far past a pole an edge may lie: half a pixel of a pixel-is-point global grid of up to 2°
POLE_SLACK_DEG = 1.0


class NotOnEarth(ValueError):
    """A footprint whose coordinates are no place on the Earth in its CRS: the CRS does not fit them."""


@cache
def _to_lonlat(crs_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(crs_wkt), "EPSG:4326", always_xy=True)


@cache
def crs_from_text(text: str) -> CRS:
    """A CRS given as text (an EPSG code, a WKT), parsed once per process."""
    return CRS.from_user_input(text)


@cache
def _to_lonlat_from(crs: str) -> Transformer:
    """By the CRS as given (a recipe's text, a raster's WKT): pyproj builds a CRS in ~3 ms, once per chunk."""
    return _to_lonlat(CRS.from_user_input(crs).to_wkt())


def lonlat_bounds(crs, bounds) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of a footprint given by its bounds in `crs`: west > east
    across the antimeridian, −180…180 when it spans every longitude (a pole inside); None when it
    lies entirely beyond Web Mercator's latitudes. Edges densified as Mapterhorn does (21 points).
    Raises NotOnEarth for coordinates that give no latitude, or one past a pole (a CRS that does not fit)."""
    text = crs if isinstance(crs, str) else crs.to_wkt()
    try:
        west, south, east, north = _to_lonlat_from(text).transform_bounds(*bounds, densify_pts=21)
    except ProjError as exc:  # an engineering (local) CRS, or one PROJ cannot relate to the Earth
        name = CRS.from_user_input(text).name
        raise NotOnEarth(f"its CRS {name!r} gives no longitudes and latitudes ({exc})") from None
    if not all(map(math.isfinite, (west, south, east, north))) or max(-south, north) > 90 + POLE_SLACK_DEG:
        raise NotOnEarth(
            f"its corners {tuple(round(v, 6) for v in bounds)} are not on the Earth in {CRS.from_user_input(text)}: "
            f"they give latitudes {south:,.6g}° to {north:,.6g}° (or none at all)"
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


def past_the_world(crs, bounds) -> bool:
    """x beyond the world's own edges in `crs`: past ±180° in a geographic CRS, past ±X_MAX_3857 in Web
    Mercator (a Pacific-centred mosaic, a raster in 0…360°); PROJ wraps such places back into the world."""
    crs = crs_from_text(crs if isinstance(crs, str) else crs.to_wkt())
    edge = 180.0 if crs.is_geographic else X_MAX_3857 if crs.to_epsg() == 3857 else math.inf
    return bounds[0] < -edge or bounds[2] > edge


# An EPSG code stands for a CRS only where both put the same points at the same longitudes and latitudes:
# within 1e-7° (about 1 cm). rasterio's and pyproj's `to_epsg()` (confidence 70) also name a CRS that only
# resembles the code: `+proj=utm +zone=32 +ellps=intl` (a datum of its own, no shift) is "EPSG:23032" (ED50,
# shifted ~150 m), an LV95 somerc on Bessel without datum "EPSG:2056". Reprojecting the coverage from such
# a code moves it by a datum shift the raster never had, away from its bounds.csv row (its own CRS's).
EPSG_SAME_PLACE_DEG = 1e-7


@cache
def _to_lonlat_epsg(code: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(code), "EPSG:4326", always_xy=True)


def epsg_places_alike(crs, code: int, xs, ys) -> bool:
    """Whether EPSG:`code` puts the points (`xs`, `ys`) in `crs` (a CRS or its WKT) where `crs` does."""
    text = crs if isinstance(crs, str) else crs.to_wkt()
    try:
        own = np.array(_to_lonlat_from(text).transform(xs, ys), dtype=float)
        coded = np.array(_to_lonlat_epsg(code).transform(xs, ys), dtype=float)
    except ProjError:
        return False
    if not np.isfinite(own).any() or not np.array_equal(np.isfinite(own), np.isfinite(coded)):
        return False
    diff = np.abs(own - coded)[np.isfinite(own)]
    diff = np.minimum(diff, 360 - diff)  # a longitude at +180° is the one at −180°
    return bool((diff <= EPSG_SAME_PLACE_DEG).all())


def footprint_points(bounds) -> tuple[list[float], list[float]]:
    """The corners and the centre of `bounds` (left, bottom, right, top): where an EPSG code is checked."""
    left, bottom, right, top = bounds
    xs = [left, right, right, left, (left + right) / 2]
    ys = [bottom, bottom, top, top, (bottom + top) / 2]
    return xs, ys
