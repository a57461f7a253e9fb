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


@cache
def not_a_grid_crs(text: str) -> str | None:
    """Why a CRS cannot hold a raster's columns and rows, or None: a geocentric CRS (PROJ reads x, y as X, Y
    from the Earth's centre with Z = 0, a place on the equator) or heights alone; a compound CRS is judged
    by its horizontal part."""
    crs = CRS.from_user_input(text)
    horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
    if horizontal.is_geocentric or horizontal.is_vertical:
        return (
            f"{crs.name!r} is a {horizontal.type_name}, not the projected or geographic CRS a raster's columns and "
            "rows lie in"
        )
    return None


def lonlat_bounds(crs, bounds) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of a footprint given by its bounds in `crs`: west > east
    across the antimeridian, −180…180 when it spans every longitude (a pole inside); None when it
    lies entirely beyond Web Mercator's latitudes. Edges densified as Mapterhorn does (21 points).
    Raises NotOnEarth for coordinates that give no latitude, or one past a pole (a CRS that does not fit)."""
    text = crs if isinstance(crs, str) else crs.to_wkt()
    if why := not_a_grid_crs(text):
        raise NotOnEarth(f"its CRS {why}")
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


# How far a footprint may lie from the area where its CRS is defined (pyproj's area of use) before the
# CRS is taken not to fit it. Producers stretch a CRS past its area: ETRS89 / UTM 33N for all of Norway
# reaches ~490 km past the zone, for Svalbard ~330 km. A confused CRS lands much farther: Swiss LV03
# coordinates read as LV95 ~2,000 km away, Gauss-Krüger zone 3 read as UTM 32N ~2,700 km, Dutch RD
# read as UTM 31N ~3,800 km.
AREA_OF_USE_SLACK_KM = 1000.0
_EARTH_RADIUS_KM = 6371.0


@cache
def _area_of_use(crs_text: str) -> tuple[str, str, tuple[float, float, float, float]] | None:
    crs = CRS.from_user_input(crs_text)
    area = crs.area_of_use
    if area is None and (code := crs.to_epsg(min_confidence=100)):  # a raster's WKT1 names its code, no area
        area = CRS.from_epsg(code).area_of_use
    if area is None:
        return None
    return crs.name, area.name.split(":")[0].rstrip("."), (area.west, area.south, area.east, area.north)


def check_area_of_use(crs, bounds) -> None:
    """Raises NotOnEarth when the footprint `bounds` (in `crs`) lies more than AREA_OF_USE_SLACK_KM
    from the area where `crs` is defined: its coordinates are in another CRS. A CRS without an area
    of use (one a raster describes in WKT alone) is not checked."""
    text = crs if isinstance(crs, str) else crs.to_wkt()
    known = _area_of_use(text)
    if known is None:
        return
    name, area_name, area = known
    try:
        lon, lat = _edge_points(_to_lonlat_from(text), bounds)
    except ProjError:
        return  # no longitudes at all: lonlat_bounds says so
    if not np.isfinite(lon).any():
        return
    west, south, east, north = area
    polar = (np.nanmin(lat) >= MERCATOR_MAX_LAT > north) or (np.nanmax(lat) <= -MERCATOR_MAX_LAT < south)
    if polar:  # not Web Mercator's to skip: a CRS defined only nearer the equator (a southern UTM read as northern)
        raise NotOnEarth(
            f"its footprint lies entirely beyond ±{MERCATOR_MAX_LAT:.4f}° latitude, where its CRS {name!r} is not "
            f"defined ({area_name}: {south:g}° to {north:g}° N)"
        )
    km = float(np.nanmin(_km_to_box(lon, lat, area)))
    if km > AREA_OF_USE_SLACK_KM:
        raise NotOnEarth(
            f"its footprint lies {km:,.0f} km from where its CRS {name!r} is defined ({area_name}: "
            f"{west:g}° to {east:g}° E, {south:g}° to {north:g}° N)"
        )


def _edge_points(to_lonlat: Transformer, bounds, n: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of `n` points along each edge of `bounds`."""
    left, bottom, right, top = bounds
    t = np.linspace(0.0, 1.0, n)
    xs = np.concatenate([left + (right - left) * t, np.full(n, right), right - (right - left) * t, np.full(n, left)])
    ys = np.concatenate([np.full(n, bottom), bottom + (top - bottom) * t, np.full(n, top), top - (top - bottom) * t])
    lon, lat = to_lonlat.transform(xs, ys)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _km_to_box(lon: np.ndarray, lat: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Great-circle distance from each point to its nearest place in the lon/lat `box` (west > east: across
    ±180°), taking the latitude and the longitude each clamped into the box."""
    west, south, east, north = box
    span = (east - west) % 360 or (360.0 if east != west else 0.0)
    off = (lon - west) % 360  # degrees east of the box's west edge
    inside = off <= span
    to_east, to_west = off - span, 360 - off  # past the east edge, short of the west edge
    near_lon = np.where(inside, lon, np.where(to_east <= to_west, east, west))
    near_lat = np.clip(lat, south, north)
    p1, p2, dl = np.radians(lat), np.radians(near_lat), np.radians(near_lon - lon)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


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


def lonlat_points(crs, xs, ys) -> np.ndarray:
    """The longitudes and latitudes (2 × n) of the points (`xs`, `ys`) in `crs` (a CRS or its WKT)."""
    text = crs if isinstance(crs, str) else crs.to_wkt()
    return np.array(_to_lonlat_from(text).transform(xs, ys), dtype=float)


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
    finite = np.isfinite(own).all(axis=0)
    return bool((degrees_apart(own[:, finite], coded[:, finite]) <= EPSG_SAME_PLACE_DEG).all())


def degrees_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far apart (the larger of the two, in degrees) the points of two 2 × n arrays of longitudes and
    latitudes are: a longitude at +180° is the one at −180°, and one turn apart is the same longitude;
    latitudes are not wrapped (a projected CRS's metres read as degrees, 5,600,000° north, is no latitude)."""
    lon = np.abs(a[0] - b[0]) % 360
    return np.maximum(np.minimum(lon, 360 - lon), np.abs(a[1] - b[1]))


def footprint_points(bounds) -> tuple[list[float], list[float]]:
    """The corners and the centre of `bounds` (left, bottom, right, top): where an EPSG code is checked."""
    left, bottom, right, top = bounds
    xs = [left, right, right, left, (left + right) / 2]
    ys = [bottom, bottom, top, top, (bottom + top) / 2]
    return xs, ys
