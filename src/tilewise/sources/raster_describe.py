"""Describe a raster: which pixels are valid, its bounds.csv row (EPSG:3857), its coverage polygons.

A pixel is valid when GDAL's mask of band 1 says so (per-dataset mask, per-band mask, alpha or
nodata), when it is not a declared nodata value as GDAL's nodata mask compares it (`nodata_pixels`: in a
float band also values within ~4.8e-7 relative of it; a mask and a nodata value may both be declared),
and, in a float band, when it is not NaN (whether or not NaN is the declared nodata)
nor ±inf.
Band 1 is the elevation, as for Mapterhorn's polygonize and downstream stage.
A valid pixel must be an elevation in metres on the Earth (`check_elevations`): one that is not (an
undeclared void value, decimetres, reflectance) fails the file where the coverage is computed.

Bounds follow Mapterhorn's source_bounds.py (rasterio's transform_bounds, 21 points per edge) where
that is right, and fix it where it is not (see README, "Where tilewise differs from Mapterhorn"):

* latitudes beyond ±85.0511° (Web Mercator's limit) are clamped: y stays within ±20037508.34 m;
* a raster that spans all longitudes (−180…180, or a pole inside it) gets left = −20037508.34,
  right = +20037508.34, never swapped;
* a raster that crosses the antimeridian gets left > right: left is its true west edge (east of
  the antimeridian's west side, a positive x), right its true east edge (a negative x). Mapterhorn's
  aggregation_covering.split_at_antimeridian reads such a row as [left, +X_MAX] + [−X_MAX, right].
  The crossing is found in longitudes (EPSG:4326, where GDAL's transform_bounds detects it), not
  from the width in EPSG:3857, which also fires for poles and global rasters and keeps only slivers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.features import shapes
from rasterio.warp import transform
from rasterio.windows import Window

from tilewise.shared.errors import FileFailure
from tilewise.shared.web_mercator import (
    MERCATOR_MAX_LAT,
    X_MAX_3857,
    NotOnEarth,
    epsg_places_alike,
    footprint_points,
    is_plain,
    lonlat_bounds,
    past_the_world,
)

_KEEP = object()

# 8192² pixels: every raster up to this size is read at once (~0.6 GB for float32 with its masks);
# larger ones strip by strip of at most this many pixels.
WHOLE_READ_PIXELS = 1 << 26
# how far Mapterhorn's EPSG:3857 width may stray from the longitudes' (both from the same 21 points an edge)
WIDTH_SLACK_M = 0.5 * X_MAX_3857 / 180


def valid_pixels(ds, window=None, nodata=_KEEP, data: np.ndarray | None = None) -> np.ndarray:
    """Boolean array of band 1's valid pixels; `nodata` replaces the declared value (a recipe's);
    `data`: band 1 in `window`, if already read."""
    declared = ds.nodata if nodata is _KEEP else nodata
    flags = set(ds.mask_flag_enums[0])
    data = ds.read(1, window=window) if data is None else data
    valid = np.ones(data.shape, bool)
    if not flags & {MaskFlags.all_valid, MaskFlags.nodata}:  # a real mask: per-dataset, per-band or alpha
        valid &= ds.read_masks(1, window=window) > 0
    if declared is not None and not math.isnan(declared):
        valid &= ~nodata_pixels(data, declared)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)  # NaN and ±inf are never elevations
    return valid


def nodata_pixels(data: np.ndarray, nodata: float) -> np.ndarray:
    """Where band values `data` are `nodata` as GDAL's nodata mask (GDALNoDataMaskBand, GDAL 3.10) says,
    which Mapterhorn's downstream reads through: an exact comparison would count as elevations the pixels
    GDAL (and so every tile) treats as nodata, e.g. -FLT_MAX pixels under a nodata tag written -3.40282e+38.

    * Floats, in the band's own type (float32 for float32 and float16, float64 for float64): nodata when
      equal, or when |v − nd| < FLT_EPSILON · |v + nd| · 2 in that type's arithmetic (GDAL's ARE_REAL_EQUAL,
      with float32's epsilon for float64 too); NaN only when nodata is NaN. A nodata beyond float32's range
      (not ±inf) makes no pixel nodata: GDAL then reports the band all valid.
    * Integers: nodata converted to the band's type as C++ does (truncated: -1.5 in int16 is -1);
      outside the type's range, no pixel is nodata.
    """
    if data.dtype.kind == "f":
        work = np.float64 if data.dtype.itemsize == 8 else np.float32
        if math.isnan(nodata):
            return np.isnan(data)
        if work is np.float32 and not (math.isinf(nodata) or abs(nodata) <= np.finfo(np.float32).max):
            return np.zeros(data.shape, bool)
        values, nd = data.astype(work, copy=False), work(nodata)
        top = np.finfo(work).max / 4
        low, high = extremes(values)
        if math.isfinite(nodata) and abs(nodata) < top and max(abs(low), abs(high)) < top:
            # no sum overflows: |v − nd| < 2ε|v + nd| needs |v − nd| < 4.0001ε|nd|, so only pixels that
            # close are tested (the test in full costs 5× a tile's other checks)
            reach = 4.0001 * float(np.finfo(np.float32).eps) * abs(nodata) + float(np.finfo(work).tiny)
            if nodata + reach < low or nodata - reach > high:
                return np.zeros(data.shape, bool)  # every value is far from it (a tile without a collar)
            with np.errstate(invalid="ignore"):
                close = np.abs(values - nd) <= reach
            out = np.zeros(data.shape, bool)
            if close.any():
                out[close] = _near(values[close], nd, work)
            return out
        return _near(values, nd, work)
    info = np.iinfo(data.dtype)
    if math.isinf(nodata) or not info.min <= math.trunc(nodata) <= info.max:
        return np.zeros(data.shape, bool)
    return data == math.trunc(nodata)


def extremes(values: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value, NaN left out (±inf count); (0, 0) for no value."""
    if not values.size:
        return 0.0, 0.0
    return float(np.fmin.reduce(values, axis=None)), float(np.fmax.reduce(values, axis=None))


def _near(values: np.ndarray, nd, work) -> np.ndarray:
    """GDAL's ARE_REAL_EQUAL(v, nd) in `work`'s arithmetic (float32's epsilon also for float64)."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, FLT_MAX + FLT_MAX: as in C
        near = np.abs(values - nd) < work(np.finfo(np.float32).eps) * np.abs(values + nd) * work(2)
    return (values == nd) | near


def strips(ds, window: Window | None = None, max_pixels: int = WHOLE_READ_PIXELS) -> Iterator[Window]:
    """`window` (default: the whole raster) in full-width strips of at most `max_pixels`, cut at
    the raster's block rows where a block row fits (each block is then decoded once)."""
    window = window or Window(0, 0, ds.width, ds.height)
    width, height = int(window.width), int(window.height)
    rows = max(1, max_pixels // max(width, 1))
    block_rows = ds.block_shapes[0][0]
    if rows >= block_rows:
        rows -= rows % block_rows
    for top in range(0, height, rows):
        yield Window(window.col_off, window.row_off + top, width, min(rows, height - top))


def any_valid(ds, window: Window | None = None, nodata=_KEEP) -> bool:
    """Whether `window` (default: the whole raster) holds a valid pixel, strip by strip (stops at the first)."""
    return any(valid_pixels(ds, strip, nodata).any() for strip in strips(ds, window))


def bounds_row(ds) -> dict:
    """Mapterhorn's bounds.csv row: bounds in EPSG:3857 and the size in pixels."""
    name = Path(ds.name).name
    try:
        geo = lonlat_bounds(ds.crs, ds.bounds)
    except NotOnEarth as exc:
        raise FileFailure("bounds", f"{name}: {exc}") from None
    if geo is None:
        raise FileFailure("bounds", f"{name} lies entirely beyond ±{MERCATOR_MAX_LAT:.4f}° latitude: no tile shows it")
    west, south, east, north = geo
    # a raster past ±180° (a 0…360° grid, even one only touching 180°) is wrapped by PROJ point by point:
    # Mapterhorn's min/max of those points spans the world
    plain = is_plain(geo) and not past_the_world(ds.crs, ds.bounds)
    if plain:
        left, bottom, right, top = plain_bounds_3857(ds.crs, ds.bounds)  # Mapterhorn's own
        plain = not past_the_world("EPSG:3857", (left, bottom, right, top))  # EPSG:3857 east or west of the world
        if plain and abs((right - left) - (east - west) * X_MAX_3857 / 180) > WIDTH_SLACK_M:
            raise FileFailure(
                "bounds",
                f"{name}: its bounds in EPSG:3857 ({left:,.0f} … {right:,.0f}) are not the width of its longitudes "
                f"({west:.6f}° … {east:.6f}°): refused rather than written as a wrong row; please report it",
            )
    if not plain:  # crosses ±180, spans all longitudes, reaches beyond the Mercator latitudes or lies past ±X_MAX
        south, north = max(south, -MERCATOR_MAX_LAT), min(north, MERCATOR_MAX_LAT)
        (left, right), (bottom, top) = transform("EPSG:4326", "EPSG:3857", [west, east], [south, north])
        if west == -180.0 and east == 180.0:
            left, right = -X_MAX_3857, X_MAX_3857
        bottom, top = max(bottom, -X_MAX_3857), min(top, X_MAX_3857)
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        raise FileFailure("bounds", f"{name}: bounds in EPSG:3857 are not finite ({left}, {bottom}, {right}, {top})")
    return {
        "filename": name,
        "left": left,
        "bottom": bottom,
        "right": right,
        "top": top,
        "width": ds.width,
        "height": ds.height,
    }


def plain_bounds_3857(crs, bounds, densify_pts: int = 21) -> tuple[float, float, float, float]:
    """rasterio's `transform_bounds(crs, "EPSG:3857", *bounds)` (GDAL's OCTTransformBounds), bit for bit,
    for a footprint that `is_plain` (no pole inside, not across ±180): the same edge points in the
    same arithmetic, through GDAL's transformation, then their extremes. GDAL's own call builds two
    more transformations per call to look for a pole, ~20 ms a file, that never find one here."""
    xmin, ymin, xmax, ymax = bounds
    side = densify_pts + 1
    dx, dy = (xmax - xmin) / side, (ymax - ymin) / side
    i = np.arange(side, dtype=np.float64)
    xs = np.concatenate([np.full(side, xmin), xmin + i * dx, np.full(side, xmax), xmax - i * dx])
    ys = np.concatenate([ymax - i * dy, np.full(side, ymin), ymin + i * dy, np.full(side, ymax)])
    x, y = (np.asarray(v) for v in transform(crs, "EPSG:3857", xs, ys))
    ok = np.isfinite(x) & np.isfinite(y)  # GDAL skips the points it cannot transform
    if not ok.any():
        return (math.inf,) * 4
    return float(x[ok].min()), float(y[ok].min()), float(x[ok].max()), float(y[ok].max())


# No elevation on the Earth lies outside these, in metres: the Challenger Deep is −10,994 m, Everest 8,849 m
# (ellipsoidal heights differ by at most ~110 m). A valid pixel beyond them is a void value no nodata
# declares (−32767, −32768, −9999, 65535, −3.4e38), or not an elevation in metres (decimetres, reflectance).
ELEVATION_RANGE_M = (-11_500.0, 9_000.0)
# −9999, the commonest void value, lies inside that range (trenches are deeper): it counts as a void when it is
# the lowest valid value and no other lies within this many metres of it (data 800…1200 m and −9999)
VOID_9999_GAP_M = 1_000.0


def check_elevations(ds, data: np.ndarray, valid: np.ndarray) -> None:
    """Every valid pixel of band 1 must be an elevation in metres on the Earth: else the file fails,
    naming the value, how many pixels hold it and the fix. Such pixels would be shipped as elevations
    (Mapterhorn's downstream stage reads the raw values) and counted in the coverage."""
    low_ok, high_ok = ELEVATION_RANGE_M
    low, high = extremes(data)
    if low_ok <= low and high <= high_ok and low != -9999:
        return  # every value in range, valid or not: no mask needed
    with np.errstate(invalid="ignore"):
        bad = valid & ((data < low_ok) | (data > high_ok))
        if low == -9999 and not bad.any():
            void = valid & (data == -9999)
            near = valid & ~void & (data < -9999 + VOID_9999_GAP_M)
            if void.any() and not near.any():
                bad = void
    if not bad.any():
        return
    values, counts = np.unique(data[bad], return_counts=True)
    value, count = values[counts.argmax()], int(counts.max())
    name = Path(ds.name).name
    declared = f"its nodata is {ds.nodata:g}" if ds.nodata is not None else "it declares no nodata"
    raise FileFailure(
        "convert",
        f"{name}: {int(bad.sum()):,} valid pixels of band 1 are no elevation in metres on the Earth (outside "
        f"{low_ok:,.0f} … {high_ok:,.0f} m, or −9999 more than {VOID_9999_GAP_M:,.0f} m below every other value; "
        f"{count:,} of them {value:g}; {declared}): voids with an undeclared value, or "
        f"not metres. If they are voids, set `nodata: {value:g}` in the recipe (source.yaml; with `force_nodata: true` "
        "when the file declares another nodata); if the band is not metres, convert it first and list that file",
    )


def coverage(ds, max_pixels: int = WHOLE_READ_PIXELS) -> shapely.Geometry:
    """Polygons of the valid pixels, in the raster's CRS; read in strips of at most `max_pixels`.
    Fails a raster whose valid pixels are no elevations (`check_elevations`)."""
    if ds.width * ds.height <= max_pixels:
        data = ds.read(1)
        valid = valid_pixels(ds, data=data)
        check_elevations(ds, data, valid)
        return _polygons(valid, ds.transform, ds.bounds)
    parts, all_valid = [], True
    for strip in strips(ds, max_pixels=max_pixels):
        data = ds.read(1, window=strip)
        valid = valid_pixels(ds, strip, data=data)
        check_elevations(ds, data, valid)
        del data
        all_valid &= bool(valid.all())
        parts.append(_polygons(valid, ds.window_transform(strip), ds.window_bounds(strip)))
        del valid
    parts = [p for p in parts if not p.is_empty]
    if all_valid or not parts:
        return shapely.box(*ds.bounds) if all_valid else shapely.Polygon()
    # the union keeps a vertex wherever a strip's cut crossed an edge: a tolerance of 0 drops exactly those
    return shapely.make_valid(shapely.simplify(shapely.union_all(parts), 0))


def _polygons(valid: np.ndarray, transform, bounds) -> shapely.Geometry:
    if valid.all():
        return shapely.box(*bounds)
    if not valid.any():
        return shapely.Polygon()
    polys = [shapely.geometry.shape(g) for g, v in shapes(valid.astype(np.uint8), mask=valid, transform=transform) if v]
    return shapely.make_valid(shapely.union_all(polys))


def describe(ds) -> tuple[dict, shapely.Geometry, str]:
    """A written raster's bounds.csv row, its coverage polygons and its CRS (`ds`: the raster, open)."""
    return bounds_row(ds), coverage(ds), crs_text(ds.crs, ds.bounds)


def crs_text(crs, bounds) -> str:
    """`EPSG:{code}` when an EPSG code puts the raster's footprint (`bounds`, in `crs`) where `crs` does
    (an ESRI .prj naming EPSG:25832 keeps its code); else the full WKT, which the merge reprojects exactly.
    rasterio's guess alone also names a CRS that only resembles the code (no datum, the same ellipsoid)."""
    wkt = crs.to_wkt()
    epsg = _epsg_guess(wkt)
    if epsg and epsg_places_alike(wkt, epsg, *footprint_points(bounds)):
        return f"EPSG:{epsg}"
    return wkt


@lru_cache(maxsize=256)
def _epsg_guess(wkt: str) -> int | None:
    """rasterio's EPSG code for a CRS, asked once per CRS (a chunk's files share one)."""
    return CRS.from_wkt(wkt).to_epsg()
