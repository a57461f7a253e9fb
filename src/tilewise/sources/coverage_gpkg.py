"""The coverage GeoPackage `polygon-store/{source}.gpkg`: the one module that writes it.

One layer `union` with one MultiPolygon feature, in one CRS, written reproducibly by GDAL's GPKG
driver. It is driven through the C API of the libgdal rasterio loaded: pyogrio's import costs
~0.8 s of CPU (it imports pandas, pyarrow and geopandas to probe for its dataframe API), more than
the rest of a small source's merge, and one feature needs a dozen calls."""

from __future__ import annotations

import ctypes
import os
from functools import cache
from pathlib import Path

import shapely
from pyproj import CRS

from tilewise.shared.errors import TilewiseError
from tilewise.shared.libgdal import declare, rasterio_libgdal

# GPKG stores a last-change time; a fixed one keeps coverage.gpkg, and so the tarball, reproducible.
FIXED_GPKG_DATE = "2000-01-01T00:00:00Z"
_WKB_MULTIPOLYGON = 6
_OAMS_TRADITIONAL_GIS_ORDER = 0  # x = easting/longitude, as the WKB is written
_OGRERR_NONE = 0
_CE_NONE = 0


def write(geom: shapely.Geometry, crs: CRS, path: Path) -> None:
    if geom.geom_type != "MultiPolygon":
        raise TypeError(f"the coverage of {path} must be a MultiPolygon, not a {geom.geom_type}")
    tmp = path.with_name(path.stem + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    lib = _ogr()
    lib.CPLSetThreadLocalConfigOption(b"OGR_CURRENT_DATE", FIXED_GPKG_DATE.encode())
    lib.CPLPushErrorHandler(ctypes.cast(lib.CPLQuietErrorHandler, ctypes.c_void_p))  # errors are raised, not printed
    try:
        _create(lib, tmp, geom, crs)
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a folder where the file goes
        tmp.unlink(missing_ok=True)
        raise TilewiseError(f"{path}: cannot put the coverage GeoPackage in place: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        lib.CPLPopErrorHandler()
        lib.CPLSetThreadLocalConfigOption(b"OGR_CURRENT_DATE", None)


def _create(lib: ctypes.CDLL, path: Path, geom: shapely.Geometry, crs: CRS) -> None:
    lib.CPLErrorReset()
    # GeoPackage 1.4, as GDAL ≥ 3.11 writes by default: rasterio's GDAL would write 1.2
    version = (ctypes.c_char_p * 2)(b"VERSION=1.4", None)
    ds = lib.GDALCreate(lib.GDALGetDriverByName(b"GPKG"), os.fsencode(path), 0, 0, 0, 0, version)
    _check(lib, ds, path, "create")
    srs = feature = None
    try:
        srs = lib.OSRNewSpatialReference(crs.to_wkt().encode())
        _check(lib, srs, path, "read the CRS of")
        lib.OSRSetAxisMappingStrategy(srs, _OAMS_TRADITIONAL_GIS_ORDER)
        options = (ctypes.c_char_p * 3)(b"GEOMETRY_NAME=geom", b"SPATIAL_INDEX=NO", None)
        layer = lib.GDALDatasetCreateLayer(ds, b"union", srs, _WKB_MULTIPOLYGON, options)
        _check(lib, layer, path, "create the layer of")
        feature = lib.OGR_F_Create(lib.OGR_L_GetLayerDefn(layer))
        wkb, ogr_geom = geom.wkb, ctypes.c_void_p()
        ok = lib.OGR_G_CreateFromWkb(wkb, None, ctypes.byref(ogr_geom), len(wkb)) == _OGRERR_NONE
        _check(lib, ok, path, "read the coverage geometry for")
        lib.OGR_F_SetGeometryDirectly(feature, ogr_geom)  # the feature owns it from here
        _check(lib, lib.OGR_L_CreateFeature(layer, feature) == _OGRERR_NONE, path, "write the feature of")
    finally:
        if feature:
            lib.OGR_F_Destroy(feature)
        if srs:
            lib.OSRRelease(srs)
        # the GeoPackage is committed when it is closed; GDALClose says how only since GDAL 3.7
        closed = lib.GDALClose(ds) in (_CE_NONE, None)
    _check(lib, closed, path, "close")


def _check(lib: ctypes.CDLL, ok, path: Path, what: str) -> None:
    if not ok:
        message = (lib.CPLGetLastErrorMsg() or b"").decode(errors="replace").strip() or "no reason given"
        if len(message) > 300:  # GDAL quotes whole SQL statements
            message = message[:300] + " …"
        raise TilewiseError(f"{path}: GDAL could not {what} the coverage GeoPackage: {message}")


@cache
def _ogr() -> ctypes.CDLL:
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib = declare(
        rasterio_libgdal(),
        (
            ("GDALVersionInfo", cp, [cp]),
            ("GDALAllRegister", None, []),
            ("CPLSetThreadLocalConfigOption", None, [cp, cp]),
            ("CPLPushErrorHandler", None, [vp]),
            ("CPLPopErrorHandler", None, []),
            ("CPLErrorReset", None, []),
            ("CPLGetLastErrorMsg", cp, []),
            ("GDALGetDriverByName", vp, [cp]),
            ("GDALCreate", vp, [vp, cp, ci, ci, ci, ci, ctypes.POINTER(cp)]),
            ("GDALClose", ci, [vp]),
            ("OSRNewSpatialReference", vp, [cp]),
            ("OSRSetAxisMappingStrategy", None, [vp, ci]),
            ("OSRRelease", None, [vp]),
            ("GDALDatasetCreateLayer", vp, [vp, cp, vp, ci, ctypes.POINTER(cp)]),
            ("OGR_L_GetLayerDefn", vp, [vp]),
            ("OGR_F_Create", vp, [vp]),
            ("OGR_G_CreateFromWkb", ci, [cp, vp, ctypes.POINTER(vp), ci]),
            ("OGR_F_SetGeometryDirectly", ci, [vp, vp]),
            ("OGR_L_CreateFeature", ci, [vp, vp]),
            ("OGR_F_Destroy", None, [vp]),
        ),
    )
    if int(lib.GDALVersionInfo(b"VERSION_NUM")) < 3070000:
        lib.GDALClose.restype = None  # void before GDAL 3.7
    lib.GDALAllRegister()
    return lib
