"""Reproject a polygon (a source's coverage, a Sentinel-2 tile's footprint) into another CRS, valid
also across ±180° and the poles.

Vertex by vertex, a polygon that crosses the antimeridian becomes a band around the whole globe
in longitudes, and one around a pole (a polar stereographic raster, EPSG:3031 or 3413) a polygon
whose ring runs off at ±90°, which Web Mercator cannot even hold. Into a geographic CRS or Web
Mercator such polygons go through longitudes made continuous ring by ring: a ring that winds
around a pole is closed along that pole, the result is cut at ±180° and the pieces are moved back
into −180…180; Web Mercator keeps what lies within ±85.0511°. Every other polygon (all of them,
for a source away from ±180° and the poles) is reprojected vertex by vertex, as before.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS, Transformer

from tilewise.shared.geometry import to_crs, transformer
from tilewise.shared.web_mercator import MERCATOR_MAX_LAT, X_MAX_3857, is_plain, lonlat_bounds, past_the_world

WEB_MERCATOR = CRS.from_epsg(3857)
_LONLAT_STEP_DEG = 0.25  # vertex spacing along edges drawn in longitudes, before they are projected


def reproject(geom: shapely.Geometry, src: CRS, dst: CRS) -> shapely.Geometry:
    """`geom` from `src` into `dst`; into longitudes or Web Mercator also when `src` is `dst` and the
    polygon reaches past ±180° (a GLO-30 W180 tile, a raster in 0…360° longitudes)."""
    if geom.is_empty:
        return geom
    xmin, ymin, xmax, ymax = geom.bounds
    densify = max(xmax - xmin, ymax - ymin) / 64 or 1
    # the footprint check only where it matters: into longitudes or Web Mercator (a merge of 20,000
    # files in their own projected CRS would spend seconds on it)
    if (dst.is_geographic or dst == WEB_MERCATOR) and not _plain(geom, src):
        return _through_lonlat(shapely.segmentize(geom, densify), src, dst)
    if src == dst:
        return geom
    return shapely.make_valid(to_crs(geom, src, dst, densify=densify))


def reproject_all(geoms, src: CRS, dst: CRS) -> list[shapely.Geometry]:
    """`reproject` of each polygon, the CRS questions asked once (a merge has 20,000 polygons)."""
    if src == dst and not (dst.is_geographic or dst == WEB_MERCATOR):
        return list(geoms)
    return [reproject(g, src, dst) for g in geoms]


def _plain(geom: shapely.Geometry, src: CRS) -> bool:
    return is_plain(lonlat_bounds(src, geom.bounds)) and not past_the_world(src, geom.bounds)


def _through_lonlat(geom: shapely.Geometry, src: CRS, dst: CRS) -> shapely.Geometry:
    to_lonlat = transformer(src, "EPSG:4326")
    lonlat = shapely.make_valid(shapely.union_all([_polygon_lonlat(p, to_lonlat) for p in _polygons(geom)]))
    if dst != WEB_MERCATOR:
        return shapely.make_valid(to_crs(lonlat, "EPSG:4326", dst, densify=_LONLAT_STEP_DEG))
    lonlat = lonlat.intersection(shapely.box(-180, -MERCATOR_MAX_LAT, 180, MERCATOR_MAX_LAT))
    projected = to_crs(lonlat, "EPSG:4326", dst, densify=_LONLAT_STEP_DEG)
    return shapely.make_valid(shapely.clip_by_rect(projected, -X_MAX_3857, -X_MAX_3857, X_MAX_3857, X_MAX_3857))


def _polygons(geom: shapely.Geometry) -> list[shapely.Polygon]:
    return [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and not p.is_empty]


def _polygon_lonlat(poly: shapely.Polygon, to_lonlat: Transformer) -> shapely.Geometry:
    shell = _ring_lonlat(poly.exterior, to_lonlat)
    holes = [_ring_lonlat(r, to_lonlat) for r in poly.interiors]
    return shell.difference(shapely.union_all(holes)) if holes else shell


def _into_180(unwrapped: shapely.Geometry) -> shapely.Geometry:
    """Cut a polygon drawn in continuous longitudes at every ±180° and move the pieces into −180…180."""
    lo, _, hi, _ = unwrapped.bounds
    pieces = []
    for turn in range(math.floor((lo + 180) / 360), math.floor((hi + 180) / 360) + 1):
        window = shapely.box(360 * turn - 180, -90, 360 * turn + 180, 90)
        pieces.append(shapely.affinity.translate(unwrapped.intersection(window), xoff=-360 * turn))
    return shapely.make_valid(shapely.union_all(pieces))


def _ring_lonlat(ring: shapely.LinearRing, to_lonlat: Transformer) -> shapely.Geometry:
    """The area a ring encloses, in longitudes within −180…180: drawn in continuous longitudes (a
    ring that winds once around a pole is closed along it), then cut at ±180°."""
    xy = np.asarray(ring.coords)
    lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
    lon = np.unwrap(np.asarray(lon), period=360)
    lat = np.asarray(lat)
    if abs(lon[-1] - lon[0]) > 180:  # wound around the pole on its side of the equator
        pole = math.copysign(90.0, float(np.mean(lat)))
        lon = np.append(lon, [lon[-1], lon[0]])
        lat = np.append(lat, [pole, pole])
    return _into_180(shapely.make_valid(shapely.Polygon(np.column_stack([lon, lat]))))
