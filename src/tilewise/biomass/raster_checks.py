"""Refuse rasters whose cells the counties would measure or combine wrong (docs/biomass-model.md §1, §2).

A county turns cells into acres and combines Sentinel-2 bands pixel by pixel; a raster in a CRS that
does not keep areas, or a band on another grid, gives numbers that look right and are not. Each file is
checked where the workflow first opens it (the index for CDL, the tile's preparation for the others)
and again by `county.process_county`, which is also called on files the workflow never prepared.
"""

from __future__ import annotations

import numpy as np
import pyproj
import shapely
from rasterio.warp import transform_bounds

from tilewise.biomass.grids import s2_epsg, s2_footprint, worldcover_tile_box
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import transformer

AREAL_SCALE_TOLERANCE = 0.005  # |areal scale − 1| allowed at a raster's corners and centre
WORLDCOVER_INSIDE_MIN = 0.5  # share of a WorldCover file's lon/lat box that must lie in the tile it is named for
EQUAL_AREA_FIX = "gdalwarp -t_srs EPSG:5070 -r near {name} out.tif (CONUS Albers, equal-area; or EPSG:4326)"


def cell_area_factor_m2(crs) -> float:
    """m² per square unit of a projected CRS's axes (1 for metres, 0.0929… for US survey feet)."""
    return crs.linear_units_factor[1] ** 2


def check_class_raster(ds, name: str) -> None:
    """A CDL or WorldCover file is one band of integer class codes. An RGB rendering of it (a GIS map
    export) has three, and band 1 is red: tree cover's red is 0, nodata, so a forest parcel got no forest
    and no error; a float band (a bilinear resampling) holds blends of codes that truncate to other classes."""
    dtype = np.dtype(ds.dtypes[0])
    if ds.count != 1 or dtype.kind not in "ui":
        raise TilewiseError(
            f"{name}: {ds.count} band(s) of {dtype}, not one band of integer class codes as the product (CDL, "
            "WorldCover) ships it: an RGB rendering or a resampled copy is not; use the product's own GeoTIFF "
            "(reproject with gdalwarp -r near)"
        )


def check_cell_areas(ds, name: str) -> None:
    """A categorical raster's cell must stand for its ground area: lon/lat in degrees (geodesic areas), or
    a projection whose areal scale is within AREAL_SCALE_TOLERANCE of 1 at the raster's corners and centre
    (an equal-area projection; UTM inside its zone; most state planes). Else TilewiseError."""
    fix = EQUAL_AREA_FIX.format(name=name)
    if ds.crs is None:
        raise TilewiseError(
            f"{name}: has no CRS, so the ground area of its cells is unknown; assign one (gdal_edit.py -a_srs)"
        )
    if ds.crs.is_geographic:
        if ds.crs.units_factor[0] != "degree":
            raise TilewiseError(f"{name}: a lon/lat CRS in {ds.crs.units_factor[0]}, not degrees; {fix}")
        return
    lon, lat, scale = _areal_scales(ds)
    worst = int(np.nanargmax(np.abs(scale - 1))) if np.isfinite(scale).any() else 0
    if not np.isfinite(scale).all() or abs(scale[worst] - 1) > AREAL_SCALE_TOLERANCE:
        raise TilewiseError(
            f"{name}: its CRS ({ds.crs.to_string()}) does not keep areas over the raster: at lon {lon[worst]:.3f}, "
            f"lat {lat[worst]:.3f} a cell covers {scale[worst]:.4f} × its nominal area (more than "
            f"{AREAL_SCALE_TOLERANCE:.1%} off), so its acres would be wrong; reproject it: {fix}"
        )


def _areal_scales(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lon, lat and areal scale at the corners and centre of a projected raster (NaN: no such place)."""
    left, bottom, right, top = ds.bounds
    x = np.array([left, right, right, left, (left + right) / 2])
    y = np.array([top, top, bottom, bottom, (top + bottom) / 2])
    crs = pyproj.CRS.from_user_input(ds.crs.to_wkt())
    lon, lat = transformer(crs, crs.geodetic_crs).transform(x, y)
    try:
        scale = np.asarray(pyproj.Proj(crs).get_factors(lon, lat, errcheck=False).areal_scale, float)
    except pyproj.exceptions.CRSError:  # no projection PROJ can give factors for
        scale = np.full(len(x), np.nan)
    return np.asarray(lon), np.asarray(lat), scale


def check_worldcover_tile(ds, tile: str, name: str) -> None:
    """A WorldCover file lies where the 3° tile it stands for (the index's key, N39W090) lies: the index
    chose it for the counties there, and a county reads it where its georeferencing puts it, so a file
    of another place (a neighbour's tile saved under this name) gave those parcels no land cover and no
    forest, without an error. Most of its lon/lat box must lie in the tile's box (a clip lies inside; a
    reprojection's box reaches a little past it)."""
    tile_box = worldcover_tile_box(tile)
    file_box = shapely.box(*transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21))
    share = file_box.intersection(tile_box).area / file_box.area if file_box.area else 0.0
    if share < WORLDCOVER_INSIDE_MIN:
        w, s, e, n = file_box.bounds
        tw, ts, te, tn = tile_box.bounds
        raise TilewiseError(
            f"{name}: WorldCover tile {tile} (lon {tw:g}…{te:g}, lat {ts:g}…{tn:g}) is georeferenced at lon "
            f"{w:.3f}…{e:.3f}, lat {s:.3f}…{n:.3f} ({share:.0%} inside its tile): the counties would read it "
            f"there and find no land cover over their parcels; give ESA's tile {tile} "
            f"(ESA_WorldCover_10m_2021_v200_{tile}_Map.tif) under this name, or correct the file's georeferencing"
        )


def check_s2_band(ds, tile: str, band: str, name: str) -> None:
    """A Sentinel-2 band holds L2A's integers (DN: uint16 reflectances, an integer SCL) and is in its MGRS
    tile's UTM CRS (zone and hemisphere from the tile id), inside the tile's footprint: tiles are chosen
    by their footprint there, and its pixel area is |a·e| in metres."""
    dtype = np.dtype(ds.dtypes[0])
    if (band == "SCL" and dtype.kind not in "ui") or (band != "SCL" and dtype != np.uint16):
        wanted = "an integer scene classification" if band == "SCL" else "uint16 DN (reflectance × 10,000 + offset)"
        raise TilewiseError(
            f"{name}: Sentinel-2 tile {tile} band {band} is {dtype}, not {wanted} as ESA's L2A product stores it; "
            "a float band already holds reflectance or another scale (an export of Earth Engine or Sentinel Hub), "
            "which tilewise would divide by 10,000 again: use the L2A product's own bands"
        )
    epsg = s2_epsg(tile)
    _, (xmin, ymin, xmax, ymax) = s2_footprint(tile)
    if ds.crs is not None and ds.crs.to_epsg() == epsg:
        _check_s2_extent(ds, tile, band, name, (xmin, ymin, xmax, ymax))
        return
    size = 20 if band == "SCL" else 10
    raise TilewiseError(
        f"{name}: Sentinel-2 tile {tile} band {band} is in {ds.crs.to_string() if ds.crs else 'no CRS'}, not the "
        f"tile's UTM CRS EPSG:{epsg}; use the band as ESA publishes it, or put it back on the tile's grid: "
        f"gdalwarp -t_srs EPSG:{epsg} -te {xmin} {ymin} {xmax} {ymax} -tr {size} {size}"
        f"{' -r near' if band == 'SCL' else ''} {name} out.tif"
    )


S2_EXTENT_TOLERANCE_M = 60  # one pixel of the coarsest band; a coarser grid may overhang by one of its pixels


def _check_s2_extent(ds, tile: str, band: str, name: str, footprint: tuple) -> None:
    """A band lies in its tile's footprint (ESA's files fill it; a clip lies inside): a file of another
    tile of the zone catalogued as this one (16TDK's B04 as 16TCK's) was read where it lies, so the
    counties the index gave this tile got no index over their parcels, and no error said which file."""
    left, bottom, right, top = ds.bounds
    xmin, ymin, xmax, ymax = footprint
    # a grid whose pixel does not divide the tile's 109,800 m (a resampled copy) ends up to a pixel past it
    tol = max(S2_EXTENT_TOLERANCE_M, abs(ds.transform.a), abs(ds.transform.e))
    if left < xmin - tol or bottom < ymin - tol or right > xmax + tol or top > ymax + tol:
        raise TilewiseError(
            f"{name}: Sentinel-2 tile {tile} band {band} covers x {left:.0f}…{right:.0f}, y {bottom:.0f}…{top:.0f} "
            f"(EPSG:{s2_epsg(tile)}), past the tile's footprint x {xmin}…{xmax}, y {ymin}…{ymax}: it is another "
            f"tile's file; point the row at tile {tile}'s own band (or catalogue this file under the tile it is)"
        )


def check_s2_grids(tile: str, date: str, band: str, other, name: str, ref, ref_name: str) -> None:
    """`other` (band `band` in file `name`) is on the grid of `ref` (the tile's B04): the index bands share
    CRS, transform, size and block layout (the county combines their block mosaics cell by cell); the SCL
    shares the CRS, its pixel is a whole number of band pixels and its origin lies on the band grid (it
    is brought onto the bands' grid by repeating its cells). Else TilewiseError naming both files."""
    problem = _grid_problem(ref, other, band)
    if problem:
        raise TilewiseError(
            f"Sentinel-2 tile {tile} {date}: band {band} ({name}) is not on the grid of B04 ({ref_name}): "
            f"{problem}; give the tile's bands from one product (10 m B02, B03, B04, B08 of one size and origin, "
            "the 20 m SCL), or regrid them with gdalwarp -t_srs/-te/-tr onto the tile's grid"
        )


def _grid_problem(ref, other, band: str) -> str | None:
    if other.crs != ref.crs:
        return f"CRS {other.crs} vs {ref.crs}"
    a, b = other.transform, ref.transform
    if a.b or a.d or b.b or b.d:
        return "a rotated grid"
    if band != "SCL":
        for what, x, y in (
            ("pixel size", (a.a, a.e), (b.a, b.e)),
            ("origin", (a.c, a.f), (b.c, b.f)),
            ("size in pixels", other.shape, ref.shape),
            ("internal block size", other.block_shapes[0], ref.block_shapes[0]),
        ):
            if x != y:
                return f"{what} {x} vs {y}"
        return None
    factor = np.array([a.a / b.a, a.e / b.e])
    whole = np.allclose(factor, np.round(factor), rtol=0, atol=1e-9) and factor[0] == factor[1] >= 1
    if not whole:
        return f"SCL pixel size ({a.a}, {a.e}) is not one whole multiple of the bands' ({b.a}, {b.e})"
    shift = np.array([(a.c - b.c) / b.a, (a.f - b.f) / b.e])
    if not np.allclose(shift, np.round(shift), rtol=0, atol=1e-6):
        return f"SCL origin ({a.c}, {a.f}) is not on the band grid (origin ({b.c}, {b.f}), pixel {b.a} m)"
    return None
