"""Apply a source's recipe to one raster and write the output: a COG, or the producer's file unchanged.

Everything runs in-process through rasterio's GDAL, doing what Mapterhorn's command-line steps do:

* `crs`, `nodata`, `slice_px` are `gdal_translate -a_srs / -a_nodata / -srcwin`: GDAL's own VRT copy
  of the raster (so every band property GDAL knows survives: masks, alpha, scale, offset, units,
  descriptions, metadata, colour interpretation), with only the window and the overrides changed;
* `fix_orientation` is `gdalwarp` (nearest neighbour, GDAL's suggested north-up grid). The corners
  a rotation fills are marked invalid: with the raster's nodata value when it has one (declared or
  assigned by the recipe), else with the COG's internal mask, so no value is ever invented;
* the COG is GDAL's COG driver (CreateCopy), which keeps a per-dataset mask as the COG's mask;
* `keep_original` stores the producer's GeoTIFF byte for byte (Mapterhorn's download-only recipes).
"""

from __future__ import annotations

import math
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.io import DatasetReader
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from tilewise.shared.cog import full_width_nbits
from tilewise.shared.errors import FileFailure
from tilewise.shared.window_vrt import window_vrt
from tilewise.sources import names
from tilewise.sources.lossy_nodata import copy_keeping_nodata
from tilewise.sources.raster_describe import any_valid
from tilewise.sources.recipe import Recipe

_KEEP = object()  # the raster's own nodata stays


def output_stem(raster: Path) -> str:
    """Mapterhorn's naming: the file name without its last suffix (`names.stem`); a grid folder keeps its name."""
    return raster.name if raster.is_dir() else names.stem(raster.name)


@dataclass(frozen=True)
class Piece:
    """One output: a whole raster or one slice of it."""

    raster: Path
    name: str
    window: Window | None = None


def plan_pieces(raster: Path, recipe: Recipe) -> list[Piece]:
    stem = output_stem(raster)
    n = recipe.slice_px
    if not n:
        return [Piece(raster, f"{stem}.tif")]
    with rasterio.open(raster) as ds:
        width, height = ds.width, ds.height
    # Mapterhorn's source_slice.py: {stem}_tile_{x}_{y}.tif with pixel offsets x, y, also for one slice
    return [
        Piece(raster, f"{stem}_tile_{x}_{y}.tif", Window(x, y, min(n, width - x), min(n, height - y)))
        for x in range(0, width, n)
        for y in range(0, height, n)
    ]


def is_north_up(transform) -> bool:
    return transform.b == 0 and transform.d == 0 and transform.a > 0 and transform.e < 0


def effective_nodata(ds, recipe: Recipe) -> float | None:
    if recipe.nodata is not None and (recipe.force_nodata or ds.nodata is None):
        return recipe.nodata
    return ds.nodata


NAN_SCAN_ROWS = 256  # rows of band 1 read at a time: memory stays flat on a 50,000-pixel-wide raster


def undeclared_nan(ds, window: Window | None = None) -> bool:
    """Whether band 1 of a float raster without nodata or a mask of its own holds NaN (in `window`). Such
    voids are voids here (coverage), but Mapterhorn's downstream stage warps them as data: its gdalwarp
    only knows a declared nodata, so a NaN void hides a lower-priority source under it. The COG then
    declares NaN as its nodata (`gdal_translate -a_nodata nan`); the pixels stay as they are."""
    if np.dtype(ds.dtypes[0]).kind != "f" or ds.nodata is not None or _has_real_mask(ds):
        return False
    area = window or Window(0, 0, ds.width, ds.height)
    col, row, width, height = (int(v) for v in (area.col_off, area.row_off, area.width, area.height))
    for top in range(row, row + height, NAN_SCAN_ROWS):
        rows = Window(col, top, width, min(NAN_SCAN_ROWS, row + height - top))
        if np.isnan(ds.read(1, window=rows)).any():
            return True
    return False


def window_is_empty(piece: Piece, recipe: Recipe) -> bool:
    """A slice with no valid pixel (nodata, masked or NaN) is dropped; a raster that is not sliced never is."""
    if piece.window is None:
        return False
    with rasterio.open(piece.raster) as ds:
        return not any_valid(ds, piece.window, effective_nodata(ds, recipe))


class Written(NamedTuple):
    """A written output: a warning about it, if any, and the output open if it was read after writing
    (GDAL's block cache then still holds its decoded blocks: the caller closes it)."""

    warning: str | None
    opened: DatasetReader | None


def write_output(
    piece: Piece, recipe: Recipe, dst: Path, scratch: Path, opened: DatasetReader | None = None
) -> Written:
    """Write one output at `dst` (the caller renames it into place). `opened`: the raster, already
    open (it stays open)."""
    if recipe.keep_original and piece.window is None:
        reason = _keep_original(piece.raster, dst)
        if reason is None:
            return Written(None, None)
        warning, cog = _write_cog(piece, recipe, dst, scratch, opened)
        kept = f"{reason}: converted to a COG although the recipe keeps originals"
        return Written("; ".join(filter(None, [kept, warning])), cog)
    return _write_cog(piece, recipe, dst, scratch, opened)


# what band 1's unit may say: none, or metres (GDAL's DTED and HGT drivers say "m")
_METRES = {"", "m", "metre", "meter", "metres", "meters"}


def check_metres(ds, name: str, crs: str | None = None) -> None:
    """Band 1 must hold elevations in metres as stored: Mapterhorn's downstream stage reads the raw
    values (`src.read(1)`), so a scale or offset (int16 decimetres: 12340 for 1234 m) or another unit
    (feet) would be shipped as metres, as Mapterhorn's own conversion does. Such a raster fails.
    The unit is the band's, and the vertical axis's of the raster's own CRS and of the recipe's `crs`
    (a recipe that replaces a CRS does not convert the values): a compound CRS such as EPSG:26910+6360
    (NAVD88 height in US survey feet) declares the heights feet, EPSG:32632+5715 (MSL depth) declares
    depths, whatever the band says."""
    scale, offset, unit = ds.scales[0], ds.offsets[0], (ds.units[0] or "").strip()
    heights = [
        f"{height} by {whose}"
        for whose, given in (("its CRS", ds.crs.to_wkt() if ds.crs else None), (f"the recipe's `crs:` {crs!r}", crs))
        if (height := not_heights_in_metres(given))
    ]
    heights += [f"heights in Zunits {z} in {prj}" for prj, z in _prj_zunits(ds)]
    if scale == 1 and offset == 0 and unit.lower() in _METRES and not heights:
        return
    found = f"scale {scale:g}, offset {offset:g}, unit {unit!r}" if unit else f"scale {scale:g}, offset {offset:g}"
    found = ", ".join([found, *heights])
    raise FileFailure(
        "convert",
        f"{name}: band 1 does not hold metres as stored ({found}); the store ships raw values, which Mapterhorn's "
        f"downstream stage reads as metres: convert it first (gdal_translate -unscale -ot Float32 {name} m.tif "
        "for a scale or offset; for feet, gdal_calc.py --calc='A*0.3048' or 0.3048006096 for US survey feet; "
        "for depths, --calc='-A') "
        "and list that file"
        + ("; if they are heights in metres, set `crs:` to a CRS whose height is in metres" if heights else ""),
    )


def _prj_zunits(ds) -> list[tuple[str, str]]:
    """The `Zunits` of an ArcInfo-era `.prj` (or an Arc/Info grid's `prj.adf`) GDAL read for the raster,
    when not metres: GDAL takes its CRS and drops the heights' unit (`Zunits FEET`) without a word."""
    found = []
    for path in map(Path, ds.files):
        if path.suffix.lower() == ".prj" or path.name.lower() == "prj.adf":
            for line in path.read_text("latin-1").splitlines():
                words = line.split()
                if len(words) == 2 and words[0].lower() == "zunits" and words[1].upper() not in ("NO", "METERS"):
                    found.append((path.name, words[1]))
    return found


@lru_cache(maxsize=64)
def not_heights_in_metres(crs: str | None) -> str | None:
    """What a CRS's vertical axis (a compound CRS's vertical part) says the values are, when that is not
    heights in metres: heights in feet, or depths (EPSG:5715 MSL depth: 120 is 120 m below sea level)."""
    if crs is None:
        return None
    from pyproj import CRS as ProjCRS  # only for rasters with a CRS; the sources' merge imports it anyway

    for axis in ProjCRS.from_user_input(crs).axis_info:
        if axis.direction == "down":
            return f"depths (positive down) in {axis.unit_name}"
        if axis.direction == "up" and axis.unit_conversion_factor != 1:
            return f"heights in {axis.unit_name}"
    return None


def _georeferencing(ds) -> tuple:
    """What a raster's meaning depends on beside its pixels (a sidecar .aux.xml may give any of it)."""
    return ds.crs, ds.transform, ds.nodata, ds.count, ds.dtypes, ds.mask_flag_enums, ds.scales, ds.offsets, ds.units


def _keep_original(raster: Path, dst: Path) -> str | None:
    """Copy the producer's file to `dst` byte for byte; or say why it has to be converted instead."""
    with rasterio.open(raster) as ds:
        check_metres(ds, raster.name)
        if ds.driver != "GTiff":
            return f"not a GeoTIFF ({ds.driver})"
        if ds.crs is None:
            raise FileFailure(
                "convert", f"{raster.name} has no CRS; drop `keep_original` and set `crs:` in the recipe to assign one"
            )
        if not is_north_up(ds.transform):
            raise FileFailure(
                "convert",
                f"{raster.name} is not north-up (transform {tuple(ds.transform)[:6]}); drop `keep_original` and "
                "set `fix_orientation: true` in the recipe to warp it",
            )
        if undeclared_nan(ds):
            return "its voids are NaN without a declared nodata, which Mapterhorn's downstream stage reads as data"
        wanted = _georeferencing(ds)
    shutil.copyfile(raster, dst)
    with rasterio.open(dst) as alone:  # without the sidecars that may have sat beside it
        if _georeferencing(alone) == wanted:
            return None
    dst.unlink()
    return (
        "its georeferencing, nodata, mask, scale, offset or units come from sidecar files (.tfw, .aux.xml, .msk) "
        "the store does not carry"
    )


def write_cog(
    piece: Piece, recipe: Recipe, dst: Path, scratch: Path, opened: DatasetReader | None = None
) -> str | None:
    """Write one COG at `dst`; `scratch` holds the job's intermediate files; `opened`: the raster,
    already open (it stays open). Returns a warning about it, if any."""
    warning, cog = _write_cog(piece, recipe, dst, scratch, opened)
    if cog is not None:
        cog.close()
    return warning


def _write_cog(piece: Piece, recipe: Recipe, dst: Path, scratch: Path, opened: DatasetReader | None) -> Written:
    scratch.mkdir(parents=True, exist_ok=True)
    with nullcontext(opened) if opened is not None else rasterio.open(piece.raster) as ds:
        check_metres(ds, piece.raster.name, recipe.crs)
        if recipe.crs is None and ds.crs is None:
            from tilewise.sources import georeferencing  # here: it imports this module

            raise FileFailure(
                "convert",
                f"{piece.raster.name} has no CRS{georeferencing.unread_prj_note(piece.raster)}; "
                + ("drop `keep_original` and " if recipe.keep_original else "")
                + "set `crs:` in the recipe (source.yaml) to assign one",
            )
        north_up = is_north_up(ds.transform)
        if not north_up and not recipe.fix_orientation:
            raise FileFailure(
                "convert",
                f"{piece.raster.name} is not north-up (transform {tuple(ds.transform)[:6]}); "
                "set `fix_orientation: true` in the recipe to warp it",
            )
        if not north_up and piece.window is not None:
            raise FileFailure(
                "convert",
                f"{piece.raster.name} is not north-up and the recipe sets both `fix_orientation` and `slice_px`: "
                "tilewise slices on the raster's own grid, before warping, so it cannot do both; warp it first "
                f"(gdalwarp {piece.raster.name} north_up.tif) and list that file, or drop `slice_px` for this source",
            )
        nodata = effective_nodata(ds, recipe)
        if nodata is None and undeclared_nan(ds, piece.window):
            nodata = math.nan
        new_nodata = not _same_value(nodata, ds.nodata)
        if new_nodata and not _holds(ds.dtypes[0], nodata):
            raise FileFailure(
                "convert",
                f"{piece.raster.name}: its {ds.dtypes[0]} band cannot hold the recipe's nodata {nodata}; "
                "set `nodata:` to a value of that type in the recipe",
            )
        _check_half_float_nodata(ds, nodata, piece.raster.name)
        opts = {**recipe.cog, **full_width_nbits(ds)}
        band_mask = _band_mask_only(ds)
        if recipe.crs or new_nodata or piece.window is not None or band_mask:
            vrt = _scratch_vrt(piece)
            _translate_vrt(ds, vrt, recipe.crs, nodata if new_nodata else _KEEP, piece.window, band_mask)
            with rasterio.open(vrt) as src:
                written = _to_cog(src, north_up, nodata, dst, scratch, opts)
            vrt.unlink()
            return written
        return _to_cog(ds, north_up, nodata, dst, scratch, opts)


def _scratch_vrt(piece: Piece) -> Path:
    """Where the piece's VRT is written: beside the raster (a producer's VRT names its files relative
    to itself, and so does the copy), under a name no file of the download has (a member named
    `x.tif.tilewise.vrt` is never overwritten: it may be a raster of its own)."""
    path, n = piece.raster.parent / f"{piece.name}.tilewise.vrt", 0
    while os.path.lexists(path):
        n += 1
        path = piece.raster.parent / f"{piece.name}.tilewise-{n}.vrt"
    return path


def _same_value(a: float | None, b: float | None) -> bool:
    """Nodata values compared as GDAL does: NaN is NaN."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _holds(dtype: str, value: float) -> bool:
    if np.dtype(dtype).kind == "f":
        return math.isnan(value) or abs(value) <= np.finfo(dtype).max
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def _check_half_float_nodata(ds, nodata: float | None, name: str) -> None:
    """A band of 16-bit floats (GDAL: a float band with NBITS=16, or Float16) stores its voids as the
    nearest such float, -9999 as -10000: GDAL's mask compares them with the declared value and finds
    them valid, elevations inside the Earth's range. The value the voids hold is the fix; voids beyond
    16 bits' range (-3.4e38) are held as ±inf, never valid."""
    half = ds.dtypes[0] == "float16" or (
        np.dtype(ds.dtypes[0]).kind == "f" and ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16"
    )
    if not half or nodata is None or math.isnan(nodata):
        return
    with np.errstate(over="ignore"):
        stored = float(np.float16(nodata))
    if stored == nodata or math.isinf(stored):
        return
    raise FileFailure(
        "convert",
        f"{name}: band 1 holds 16-bit floats, which store the nodata {nodata:g} as {stored:g}: its voids would "
        f"not match it and ship as elevations; set `nodata: {stored:g}` and `force_nodata: true` in the recipe "
        "(source.yaml)",
    )


def _to_cog(src, north_up: bool, nodata: float | None, dst: Path, scratch: Path, opts: dict) -> Written:
    if north_up:
        return Written(*copy_keeping_nodata(src, nodata, dst, opts, dst.name))
    tmp = scratch / f"{dst.name}.warped.tif"
    _warp_north_up(src, nodata, tmp)
    with rasterio.open(tmp) as warped:
        written = Written(*copy_keeping_nodata(warped, nodata, dst, opts, dst.name))
    tmp.unlink()
    return written


def _has_real_mask(ds) -> bool:
    return not set(ds.mask_flag_enums[0]) & {MaskFlags.all_valid, MaskFlags.nodata}


def _band_mask_only(ds) -> bool:
    """Band 1 has its own mask that is neither per-dataset nor alpha: a GeoTIFF can only store it per dataset."""
    return _has_real_mask(ds) and not set(ds.mask_flag_enums[0]) & {MaskFlags.per_dataset, MaskFlags.alpha}


def _translate_vrt(ds, path: Path, crs: str | None, nodata, window: Window | None, band_mask: bool) -> None:
    """`gdal_translate -of VRT [-a_srs crs] [-a_nodata nodata] [-srcwin window]`, written to `path`."""
    tree = window_vrt(ds, path, window)
    root = tree.getroot()
    if band_mask:  # band 1's own mask becomes the dataset's, the one mask a COG stores
        own = root.find("VRTRasterBand/MaskBand")
        root.find("VRTRasterBand").remove(own)
        root.append(own)
    tree.write(path)
    with rasterio.open(path, "r+") as vrt:  # GDAL writes the SRS (with its axis mapping) and nodata
        if crs:
            vrt.crs = CRS.from_user_input(crs)
        if nodata is not _KEEP:
            vrt.nodata = nodata


def _flipped_grid(src) -> dict:
    """The north-up grid of a raster that is only mirrored (rows south to north, columns east to west,
    or both: a 180° rotation): the same pixels, flipped. GDAL's own suggestion keeps a negative pixel
    width; a rotated raster gets GDAL's suggestion (an empty dict)."""
    t = src.transform
    if t.b != 0 or t.d != 0:
        return {}
    xs, ys = (t.c, t.c + t.a * src.width), (t.f, t.f + t.e * src.height)
    north_up = Affine(abs(t.a), 0, min(xs), 0, -abs(t.e), max(ys))
    return {"transform": north_up, "width": src.width, "height": src.height}


def _warp_north_up(src, nodata: float | None, tmp: Path) -> None:
    """gdalwarp to GDAL's north-up grid into a plain GeoTIFF at `tmp`, the fill and masked pixels invalid."""
    # an alpha band is warped as gdalwarp does (it stays the last band and says what the warp filled);
    # else, without a nodata value, an added alpha band says it and becomes the COG's mask
    has_alpha = ColorInterp.alpha in src.colorinterp
    rotated = src.transform.b != 0 or src.transform.d != 0
    add_alpha = nodata is None and not has_alpha and (rotated or _has_real_mask(src))
    bands = list(range(1, src.count + 1))
    grid = _flipped_grid(src)
    with WarpedVRT(src, resampling=Resampling.nearest, nodata=nodata, add_alpha=add_alpha, **grid) as warped:
        if not is_north_up(warped.transform):
            raise FileFailure(
                "convert",
                f"{Path(src.name).name}: GDAL's warp to north-up gave the grid {tuple(warped.transform)[:6]}, "
                "which is not north-up either; please report it",
            )
        profile = dict(
            driver="GTiff",
            width=warped.width,
            height=warped.height,
            count=src.count,
            dtype=src.dtypes[0],
            crs=warped.crs,
            transform=warped.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=512,
            blockysize=512,
            compress="deflate",
            zlevel=1,
            bigtiff="yes",
        )
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as out:
            out.colorinterp = src.colorinterp
            for _, win in out.block_windows(1):
                out.write(warped.read(bands, window=win), window=win)
                if add_alpha:
                    out.write_mask(warped.read(src.count + 1, window=win), window=win)
            out.update_tags(**src.tags())
            for b in bands:
                out.update_tags(b, **src.tags(b))
            out.scales, out.offsets, out.units, out.descriptions = src.scales, src.offsets, src.units, src.descriptions
