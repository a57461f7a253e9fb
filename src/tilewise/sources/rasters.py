"""Find rasters, apply the recipe, write COGs, and describe them (bounds row, coverage polygon).

Everything runs in-process through rasterio's GDAL: overrides (CRS, nodata, slice window) are a
VRT around the source (what `gdal_translate -a_srs -a_nodata -srcwin` does), orientation fixes
a WarpedVRT (what `gdalwarp` does), and the COG is GDAL's COG driver via CreateCopy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import shapes
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from tilewise.shared.cog import full_width_nbits
from tilewise.shared.errors import FileFailure
from tilewise.sources.recipe import Recipe

# Files that never are rasters on their own (sidecars, documents); everything else is tried.
SIDECAR_SUFFIXES = {
    ".prj",
    ".aux",
    ".xml",
    ".tfw",
    ".tfwx",
    ".jgw",
    ".j2w",
    ".wld",
    ".ovr",
    ".msk",
    ".md",
    ".html",
    ".htm",
    ".pdf",
    ".doc",
    ".docx",
    ".dbf",
    ".shp",
    ".shx",
    ".cpg",
    ".qpj",
    ".sbn",
    ".sbx",
    ".qml",
    ".sld",
    ".lyr",
    ".json",
    ".geojson",
    ".kml",
    ".csv",
    ".log",
    ".md5",
    ".sha256",
    ".hdr",
    ".rrd",
}
WEB_MERCATOR_WIDTH = 2 * 20037508.342789244
_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "uint64": "UInt64",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


def find_rasters(root: Path) -> list[Path]:
    """Every raster GDAL can open under `root`; Arc/Info grid folders count as one raster."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "hdr.adf" in {f.lower() for f in filenames}:
            found.append(here)  # an AIG coverage: the folder is the dataset
            dirnames.clear()
            continue
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in SIDECAR_SUFFIXES or name.lower().endswith(".aux.xml"):
                continue
            if _opens_as_raster(path):
                found.append(path)
    return found


def _opens_as_raster(path: Path) -> bool:
    try:
        with rasterio.open(path) as ds:
            return ds.count > 0 and ds.width > 0 and ds.height > 0
    except (rasterio.errors.RasterioIOError, rasterio.errors.RasterioError):
        return False


def output_stem(raster: Path) -> str:
    """Mapterhorn's naming: the file name without its last suffix (a grid folder keeps its name)."""
    return raster.name if raster.is_dir() else raster.stem


@dataclass(frozen=True)
class Piece:
    """One output COG: a whole raster or one slice of it."""

    raster: Path
    name: str
    window: Window | None = None


def plan_pieces(raster: Path, recipe: Recipe) -> list[Piece]:
    stem = output_stem(raster)
    with rasterio.open(raster) as ds:
        width, height = ds.width, ds.height
    n = recipe.slice_px
    if not n or (width <= n and height <= n):
        return [Piece(raster, f"{stem}.tif")]
    # Mapterhorn's source_slice.py: {stem}_tile_{x}_{y}.tif with pixel offsets x, y
    return [
        Piece(raster, f"{stem}_tile_{x}_{y}.tif", Window(x, y, min(n, width - x), min(n, height - y)))
        for x in range(0, width, n)
        for y in range(0, height, n)
    ]


def is_north_up(transform) -> bool:
    return transform.b == 0 and transform.d == 0 and transform.a > 0 and transform.e < 0


def _override_vrt(ds, crs: CRS, nodata: float | None, window: Window | None) -> str:
    """A VRT that shows `ds` (or a window of it) with another CRS and nodata."""
    win = window or Window(0, 0, ds.width, ds.height)
    transform = ds.window_transform(win)
    gt = ",".join(repr(v) for v in transform.to_gdal())
    size = f'xSize="{int(win.width)}" ySize="{int(win.height)}"'
    bands = []
    for b, dtype in enumerate(ds.dtypes, start=1):
        nd = "" if nodata is None else f"<NoDataValue>{_nodata_text(nodata)}</NoDataValue>"
        bands.append(
            f'<VRTRasterBand dataType="{_GDAL_TYPES[dtype]}" band="{b}">{nd}<SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{escape(ds.name)}</SourceFilename>'
            f"<SourceBand>{b}</SourceBand>"
            f'<SrcRect xOff="{int(win.col_off)}" yOff="{int(win.row_off)}" {size}/>'
            f'<DstRect xOff="0" yOff="0" {size}/>'
            "</SimpleSource></VRTRasterBand>"
        )
    return (
        f'<VRTDataset rasterXSize="{int(win.width)}" rasterYSize="{int(win.height)}">'
        f"<SRS>{escape(crs.to_wkt())}</SRS><GeoTransform>{gt}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )


def _nodata_text(v: float) -> str:
    return "nan" if math.isnan(v) else repr(float(v))


def _effective_nodata(ds, recipe: Recipe) -> float | None:
    if recipe.nodata is not None and (recipe.force_nodata or ds.nodata is None):
        return recipe.nodata
    return ds.nodata


def write_cog(piece: Piece, recipe: Recipe, dst: Path) -> None:
    """Write one COG at `dst` (the caller renames it into place once complete)."""
    with rasterio.open(piece.raster) as ds:
        crs = CRS.from_user_input(recipe.crs) if recipe.crs else ds.crs
        if crs is None:
            raise FileFailure(
                "convert", f"{piece.raster.name} has no CRS; set `crs:` in the recipe (source.yaml) to assign one"
            )
        north_up = is_north_up(ds.transform)
        if not north_up and not recipe.fix_orientation:
            raise FileFailure(
                "convert",
                f"{piece.raster.name} is not north-up (transform {tuple(ds.transform)[:6]}); "
                "set `fix_orientation: true` in the recipe to warp it",
            )
        if not north_up and piece.window is not None:
            raise FileFailure("convert", f"{piece.raster.name}: slicing a raster that is not north-up is not supported")
        nodata = _effective_nodata(ds, recipe)
        needs_vrt = recipe.crs or nodata != ds.nodata or piece.window is not None
        opts = {**recipe.cog, **full_width_nbits(ds)}
        src = rasterio.open(_override_vrt(ds, crs, nodata, piece.window)) if needs_vrt else ds
        try:
            if not north_up:
                with WarpedVRT(src, resampling=Resampling.nearest, nodata=nodata) as warped:
                    rasterio.shutil.copy(warped, dst, driver="COG", **opts)
            else:
                rasterio.shutil.copy(src, dst, driver="COG", **opts)
        finally:
            if src is not ds:
                src.close()


def window_is_empty(piece: Piece, recipe: Recipe) -> bool:
    """Slices with no valid pixel are skipped, as Mapterhorn's source_slice.py does."""
    if piece.window is None:
        return False
    with rasterio.open(piece.raster) as ds:
        nodata = _effective_nodata(ds, recipe)
        data = ds.read(1, window=piece.window)
    if nodata is None:
        return False
    return bool(np.all(np.isnan(data)) if math.isnan(nodata) else np.all(data == nodata))


def describe(cog: Path) -> tuple[dict, shapely.Geometry, str]:
    """A COG's bounds.csv row and its coverage polygons, from one open."""
    with rasterio.open(cog) as ds:
        return bounds_row(ds), coverage(ds), _crs_text(ds.crs)


def bounds_row(ds) -> dict:
    """Mapterhorn's bounds.csv row: bounds in EPSG:3857 and the size in pixels."""
    left, bottom, right, top = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds)
    if right - left > 0.9 * WEB_MERCATOR_WIDTH:  # crosses the antimeridian
        left, right = right, left
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        name = Path(ds.name).name
        raise FileFailure("bounds", f"{name}: bounds in EPSG:3857 are not finite ({left}, {bottom}, {right}, {top})")
    return {
        "filename": Path(ds.name).name,
        "left": left,
        "bottom": bottom,
        "right": right,
        "top": top,
        "width": ds.width,
        "height": ds.height,
    }


def coverage(ds) -> shapely.Geometry:
    """Polygons of the valid-data mask, in the raster's CRS."""
    mask = ds.dataset_mask()
    if mask.all():
        return shapely.box(*ds.bounds)
    if not mask.any():
        return shapely.Polygon()
    valid = mask > 0
    polys = [
        shapely.geometry.shape(g) for g, v in shapes(valid.astype(np.uint8), mask=valid, transform=ds.transform) if v
    ]
    return shapely.make_valid(shapely.union_all(polys))


def _crs_text(crs) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()
