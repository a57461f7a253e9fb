"""Tile grids: Sentinel-2 (MGRS) footprints, ESA WorldCover 3° tiles, geodesic pixel areas."""

from __future__ import annotations

import math
import re
import warnings
from functools import lru_cache

import mgrs
import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer

from tilewise.shared.geometry import to_crs
from tilewise.shared.reproject import reproject

S2_TILE_M = 109_800  # a Sentinel-2 tile is 109.8 km square in its UTM zone
S2_GRID_M = 60  # and its upper-left corner sits on a 60 m grid
_TILE_ID = re.compile(r"^(\d{2})([C-HJ-NP-X])([A-HJ-NP-Z]{2})$")
WGS84 = Geod(ellps="WGS84")


def s2_epsg(tile: str) -> int:
    m = _TILE_ID.match(tile)
    if not m:
        raise ValueError(f"{tile!r} is not a Sentinel-2 tile id (like 16TCK)")
    zone, band = int(m[1]), m[2]
    return (32600 if band >= "N" else 32700) + zone


@lru_cache(maxsize=4096)
def s2_footprint(tile: str) -> tuple[int, tuple[float, float, float, float]]:
    """EPSG code and (xmin, ymin, xmax, ymax) of a tile in its UTM CRS.

    The tile is anchored at the upper-left corner of its 100 km MGRS square, snapped to 60 m, and
    extends 109,800 m east and south (checked against ESA's grid: shared notes, biomass addendum).
    """
    epsg = s2_epsg(tile)
    with warnings.catch_warnings():  # mgrs warns about latitude bands it handles fine here
        warnings.simplefilter("ignore", RuntimeWarning)
        lat, lon = mgrs.MGRS().toLatLon(tile + "0000000000")  # the SW corner's 1 m cell
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    e_sw, n_sw = math.floor(x), math.floor(y)
    off = 10_000_000 if epsg >= 32700 else 0
    ulx = math.floor(e_sw / S2_GRID_M) * S2_GRID_M
    uly = math.ceil((n_sw + 100_000 - off) / S2_GRID_M) * S2_GRID_M + off
    return epsg, (ulx, uly - S2_TILE_M, ulx + S2_TILE_M, uly)


def continuous_lon(geom_lonlat: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat geometry across the antimeridian (a county stored as parts at +179° and −179°, whose box
    spans the globe) with its western longitudes moved by +360°, so its box is its own (179°…181°)."""
    west, _, east, _ = geom_lonlat.bounds
    if east - west <= 180:
        return geom_lonlat
    return shapely.transform(
        geom_lonlat, lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]])
    )


def wrap_lon(lon):
    """A longitude (or an array of them) moved into −180…180 (180° itself is −180°)."""
    return (lon + 180) % 360 - 180


def s2_tiles_near(geom_lonlat: shapely.Geometry, step_deg: float = 0.05, margin_deg: float = 0.15) -> list[str]:
    """Ids of the MGRS 100 km squares (in each point's own UTM zone) around a lon/lat geometry.

    The tiles of a geometry are among the squares its points fall in and those just west and north
    of them (a tile reaches 9.8 km past its square's east and south edges). Across the antimeridian the
    points are taken in continuous longitudes (the box of −180…180 would hold every zone of the globe)."""
    west, south, east, north = shapely.buffer(continuous_lon(geom_lonlat), margin_deg).bounds
    m = mgrs.MGRS()
    ids = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for lon in np.arange(west, east + step_deg, step_deg):
            for lat in np.arange(south, north + step_deg, step_deg):
                if abs(lat) < 84:
                    ids.add(m.toMGRS(float(lat), wrap_lon(float(lon)), MGRSPrecision=0))
    return sorted(ids)


def s2_footprint_lonlat(tile: str) -> shapely.Polygon:
    """The footprint in EPSG:4326 (lon/lat), edges densified every kilometre before reprojecting; a
    footprint across the antimeridian (UTM zones 60 and 1) is cut there into its two parts (vertex by
    vertex it was a band around the globe, which every county of its latitudes intersected)."""
    epsg, bounds = s2_footprint(tile)
    footprint = to_crs(shapely.box(*bounds), epsg, 4326, densify=1000)
    if footprint.bounds[2] - footprint.bounds[0] <= 180:
        return footprint
    return reproject(shapely.box(*bounds), CRS.from_epsg(epsg), CRS.from_epsg(4326))


def worldcover_tiles(bounds_lonlat: tuple[float, float, float, float]) -> list[str]:
    """ESA WorldCover 2021 3°×3° tiles (named by their SW corner, e.g. N39W090) covering a lon/lat box;
    its east edge may pass 180° (a box in continuous longitudes): those tiles are named in −180…180
    (there is no E180 tile: what lies east of 180° is W180)."""
    west, south, east, north = bounds_lonlat
    names = []
    for lat in range(math.floor(south / 3) * 3, math.floor(north / 3) * 3 + 1, 3):
        if lat + 3 <= south:
            continue
        for lon in range(math.floor(west / 3) * 3, math.floor(east / 3) * 3 + 1, 3):
            lon = round(wrap_lon(lon))
            names.append(f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}")
    return list(dict.fromkeys(names))


def worldcover_tile_box(name: str) -> shapely.Polygon:
    lat = int(name[1:3]) * (1 if name[0] == "N" else -1)
    lon = int(name[4:7]) * (1 if name[3] == "E" else -1)
    return shapely.box(lon, lat, lon + 3, lat + 3)


def geodesic_row_areas_m2(top: float, dy: float, dx: float, rows: int) -> np.ndarray:
    """Area in m² on the WGS84 ellipsoid of one cell in each row of a lon/lat grid (north-up, dy < 0)."""
    edges = top + dy * np.arange(rows + 1)
    lat1, lat2 = edges[:-1], edges[1:]
    return np.array(
        [abs(WGS84.polygon_area_perimeter([0, dx, dx, 0], [a, a, b, b])[0]) for a, b in zip(lat1, lat2, strict=True)]
    )
