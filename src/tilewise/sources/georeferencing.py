"""A raster's georeferencing said twice, where GDAL takes one of them without a word.

GDAL takes a `.aux.xml`'s (its PAM file's) CRS, grid and nodata over the raster's own (a GeoTIFF's tags,
a world file), and reads it only under the exact name `{raster}.aux.xml`; of a GeoTIFF's two grids (a
ModelTiepoint with a ModelPixelScale, and a ModelTransformation) it takes the first. So:

* a PAM file that contradicts the raster's own CRS, grid, nodata, scale, offset or unit fails the file:
  which of two georeferencings the producer means is unknown (a stale sidecar of an earlier version, or
  a fix of wrong tags), and either would ship silently. A PAM file that only adds what the raster lacks,
  or repeats it (ArcGIS's statistics, its CRS as ESRI WKT), changes nothing here;
* a `.aux.xml` named after a raster of the download but read by none (`DEM.TIF.AUX.XML` beside `dem.tif`,
  made where names are one in any case; `dem.tiff.aux.xml` beside `dem.tif`) fails the download: the
  nodata or grid in it would be dropped;
* a sidecar named after a raster (world file, `.prj`, `.aux.xml`) that says another grid, CRS or nodata than
  GDAL reads for it fails the download: the raster's own tags or another sidecar won without a word (a stale
  `.tfw` beside a GeoTIFF's geotags, a `.prj` beside a GeoTIFF, which GDAL never reads for one);
* a GeoTIFF whose two grids differ fails the file (two writers' tags left in one file).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from pyproj.exceptions import CRSError, ProjError
from rasterio.crs import CRS
from rasterio.transform import Affine

from tilewise.shared.errors import FileFailure
from tilewise.shared.web_mercator import EPSG_SAME_PLACE_DEG, degrees_apart, footprint_points, lonlat_points
from tilewise.sources import raw_headers
from tilewise.sources.catalog import sidecar_names
from tilewise.sources.raster_describe import nodata_pixels
from tilewise.sources.rasters import not_heights_in_metres

PAM_SUFFIX = ".aux.xml"


def _is_pam(name: str) -> bool:
    return name.lower().endswith(PAM_SUFFIX)


def check_pam_agrees(ds, raster: Path, rel: str) -> None:
    """Fail `raster` (open as `ds`, with its PAM file) where its PAM file contradicts the raster's own meaning."""
    pam = [Path(f) for f in ds.files if _is_pam(f) and Path(f).is_file()]
    if not pam:
        return
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(raster) as own:
        differences = _differences(own, ds)
    if differences:
        side = pam[0].name
        raise FileFailure(
            "convert",
            f"{rel}: its sidecar {side} contradicts the raster's own {'; '.join(differences)}; GDAL (and "
            "Mapterhorn's gdal_translate) would take the sidecar's without a word, and which one the producer "
            f"means is unknown: drop the sidecar with exclude: [{side!r}] in the recipe (source.yaml) to keep the "
            f"raster's own, or write the sidecar's into the raster (gdal_translate {raster.name} fixed.tif beside "
            "it) and list that file",
        )


def unread_prj_note(raster: Path) -> str:
    """For the message of a raster without a CRS: what a `.prj` beside it says (`dem.prj`, any case), which
    GDAL reads for an ASCII grid but never for a GeoTIFF; "" without one."""
    wanted = f"{raster.stem}.prj".lower()
    for path in (p for p in raster.parent.iterdir() if p.name.lower() == wanted and p.is_file()):
        crs = _declared(path).get("crs")
        said = f"says {_crs_name(crs)}" if crs else "names no CRS GDAL knows"
        return f" (GDAL reads no .prj for it; {path.name} beside it {said})"
    return ""


def external_masks(root: Path) -> dict[tuple[Path, str], list[Path]]:
    """The `.msk` files under `root` by folder and lower-case name: listed once per download, not once per raster."""
    found: dict[tuple[Path, str], list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.name.lower().endswith(".msk"):
            found.setdefault((path.parent, path.name.lower()), []).append(path)
    return found


def check_mask(ds, raster: Path, rel: str, masks: dict[tuple[Path, str], list[Path]]) -> None:
    """Fail `raster` (open as `ds`) whose external mask (`dem.tif.msk`, in any case, as GDAL finds it; `masks`:
    `external_masks` of its download) GDAL does not read as its mask: one it cannot open (damaged, cut short) is
    dropped without a word, so the voids it marks ship as elevations; one of another size GDAL opens and fails
    its first read of with a raw "Access window out of range"."""
    read = {Path(f).name for f in ds.files}
    for mask in masks.get((raster.parent, f"{raster.name}.msk".lower()), []):
        if mask.name not in read:
            raise FileFailure(
                "convert",
                f"{rel}: its mask {mask.name} is not read with it: GDAL cannot open it (damaged or cut short?), so "
                "the voids it marks would ship as elevations; download it again, or drop it with "
                f"exclude: [{mask.name!r}] in the recipe (source.yaml) if the raster's nodata marks its voids",
            )
    for mask in (Path(f) for f in ds.files if f.lower().endswith(".msk")):
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(mask) as m:
            size = (m.width, m.height)
        if size != (ds.width, ds.height):
            raise FileFailure(
                "convert",
                f"{rel}: its mask {mask.name} is {size[0]}×{size[1]} pixels where the raster is {ds.width}×"
                f"{ds.height}, so it is not this raster's mask (a sidecar of another version?): drop it with "
                f"exclude: [{mask.name!r}] in the recipe (source.yaml) if the raster's nodata marks its voids, or "
                "ask the producer for the mask of this raster",
            )


def check_one_grid(ds, raster: Path, rel: str) -> None:
    """Fail a GeoTIFF (open as `ds`) whose tiepoint and pixel scale give another grid than its ModelTransformation."""
    if ds.driver != "GTiff" or not (grids := raw_headers.geotiff_grids(raster)):
        return
    by_tiepoint, by_matrix = (Affine(*g) for g in grids)
    if not _same_grid(by_tiepoint, by_matrix):
        raise FileFailure(
            "convert",
            f"{rel}: its GeoTIFF tags give two grids, {tuple(by_tiepoint)[:6]} by its ModelTiepoint and "
            f"ModelPixelScale, {tuple(by_matrix)[:6]} by its ModelTransformation; GDAL takes the first without a "
            "word, other readers the second, and which one the producer means is unknown: write the right one "
            f"alone (gdal_translate -a_gt <its six numbers> {raster.name} fixed.tif) and list that file",
        )


def _differences(own, read) -> list[str]:
    """What the raster alone (`own`) says that the raster with its PAM file (`read`) says otherwise."""
    found = []
    if own.crs and read.crs and not _same_place(own.crs, read.crs, own.bounds):
        found.append(f"CRS ({_crs_name(own.crs)} in the raster, {_crs_name(read.crs)} in the sidecar)")
    if not own.transform.is_identity and not _same_grid(own.transform, read.transform):
        found.append(
            f"grid (geotransform {tuple(own.transform)[:6]} in the raster, {tuple(read.transform)[:6]} in the sidecar)"
        )
    if own.nodata is not None and not _same_nodata(own.dtypes[0], own.nodata, read.nodata):
        found.append(f"band 1 nodata ({own.nodata!r} in the raster, {read.nodata!r} in the sidecar)")
    for what, mine, theirs, default in (
        ("scale", own.scales[0], read.scales[0], 1.0),
        ("offset", own.offsets[0], read.offsets[0], 0.0),
        ("unit", own.units[0] or "", read.units[0] or "", ""),
    ):
        if mine != default and mine != theirs:
            found.append(f"band 1 {what} ({mine!r} in the raster, {theirs!r} in the sidecar)")
    return found


def _crs_name(crs) -> str:
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else repr(crs.to_string()[:80])


def _same_place(own, read, bounds) -> bool:
    """Both CRSs put the corners and centre of `bounds` within 1e-7° of each other (the CRS as ESRI WKT in an
    ArcGIS sidecar is the same CRS), and say the same of its heights (a compound CRS in feet)."""
    if not_heights_in_metres(own.to_wkt()) != not_heights_in_metres(read.to_wkt()):
        return False
    xs, ys = footprint_points(bounds)
    try:
        a, b = lonlat_points(own, xs, ys), lonlat_points(read, xs, ys)
    except (CRSError, ProjError):  # a CRS PROJ cannot relate to the Earth: only the same text is the same CRS
        return own == read
    diff = degrees_apart(a, b)
    return bool(np.isfinite(diff).all() and (diff <= EPSG_SAME_PLACE_DEG).all())


def _same_grid(own, read, pixels: float = 1e-6) -> bool:
    """The same geotransform, up to `pixels` of a pixel (a sidecar writes its numbers in decimal)."""
    size = max(abs(own.a), abs(own.b), abs(own.d), abs(own.e))
    return all(math.isclose(p, q, rel_tol=0, abs_tol=pixels * size) for p, q in zip(own[:6], read[:6], strict=True))


def _same_nodata(dtype: str, own: float, read: float | None) -> bool:
    """The sidecar's nodata is the raster's as GDAL's nodata mask compares a value with it."""
    if read is None:
        return False
    if np.dtype(dtype).kind != "f":  # an integer band's nodata is a whole number: equal or not
        return read == own
    return bool(nodata_pixels(np.array([read], dtype=dtype), own).all())


def check_pam_names(root: Path, rasters: list[Path], read: set[Path]) -> None:
    """Fail the download when a `.aux.xml` named after one of its `rasters` (found under `root`) is read by
    none of them (`read`: every file GDAL read for a raster): its name differs in case or in the raster's
    suffix, so GDAL drops what it says."""
    stems = {}
    for raster in rasters:
        stems.setdefault((raster.parent, raster.stem.lower()), raster)
    for path in sorted(root.rglob("*")):
        if not (path.is_file() and _is_pam(path.name)) or path.resolve() in read:
            continue
        base = path.name[: -len(PAM_SUFFIX)]
        raster = stems.get((path.parent, Path(base).stem.lower())) or stems.get((path.parent, base.lower()))
        if raster is None:
            continue
        rel, wanted = path.relative_to(root), f"{raster.name}{PAM_SUFFIX}"
        raise FileFailure(
            "convert",
            f"{root.name}: {rel} is named after the raster {raster.relative_to(root)}, but GDAL reads that raster's "
            f"sidecar only as {wanted} (names differ in case or suffix), so the CRS, grid or nodata in it would be "
            f"dropped without a word; rename it to {wanted} in a copy of the download and list that, or drop it with "
            f"exclude: [{path.name!r}] in the recipe (source.yaml) if the raster's own georeferencing is right",
        )


@dataclass(frozen=True)
class Reading:
    """What GDAL read a raster as: what its sidecars are compared with once the download's rasters are judged."""

    crs: CRS | None
    transform: Affine
    nodata: float | None
    dtype: str
    bounds: tuple
    area_or_point: str | None  # whether the grid's corners are pixel corners or pixel centres

    @classmethod
    def of(cls, ds) -> Reading:
        return cls(ds.crs, ds.transform, ds.nodata, ds.dtypes[0], tuple(ds.bounds), ds.tags().get("AREA_OR_POINT"))


# a world file's precision: writers keep 6 to 10 decimals
_WORLD_FILE_PIXELS = 1e-3


def check_sidecars_read(
    root: Path, readings: dict[Path, Reading], opened: dict[Path, set[Path]], assigned_crs: str | None = None
) -> None:
    """Fail the download when a sidecar named after one of its rasters (`readings`: the rasters kept, as GDAL
    read them) declares another grid, CRS, nodata or AREA_OR_POINT than GDAL read: the raster's own tags or
    another sidecar won without a word (a stale `.tfw` beside a GeoTIFF's geotags, a `.prj` of another zone
    beside a GeoTIFF, which GDAL never reads for one, an ASCII grid's `.aux.xml` SRS beside its `.prj`). A
    sidecar GDAL read for another raster (`opened`: every raster → the files GDAL read for it) is that
    raster's: `dem.wld` of a coarser `dem.png` preview beside `dem.tif`. A raster without a CRS of its own
    gets the recipe's `crs:` (`assigned_crs`): a `.prj` beside a bare GeoTIFF that says another is checked
    against it."""
    folders: dict[Path, dict[str, list[Path]]] = {}
    read_by: dict[Path, set[Path]] = {}  # a file → the rasters GDAL read it for
    for r, files in opened.items():
        for f in files:
            read_by.setdefault(f, set()).add(r)
    for raster, read in sorted(readings.items()):
        if raster.is_dir():
            continue
        if raster.parent not in folders:
            index: dict[str, list[Path]] = {}
            for path in raster.parent.iterdir():
                index.setdefault(path.name.lower(), []).append(path)
            folders[raster.parent] = index
        for sidecar in _sidecars_of(raster, folders[raster.parent]):
            if read_by.get(sidecar.resolve(), set()) - {raster}:
                continue
            assigned = read.crs is None and assigned_crs is not None
            used = replace(read, crs=CRS.from_user_input(assigned_crs)) if assigned else read
            if found := _disagreements(sidecar, used):
                rel, raster_rel = sidecar.relative_to(root), raster.relative_to(root)
                how = (
                    f"the recipe's crs: assigns it to {raster_rel}, which has none of its own"
                    if assigned
                    else f"GDAL reads {raster_rel} so (its own tags or another sidecar win without a word)"
                )
                keep = (
                    "to keep the recipe's crs:, or set the right crs: for this file's source"
                    if assigned
                    else "to keep what GDAL reads, or write the sidecar's into the raster (gdal_translate) and list "
                    "that file"
                )
                raise FileFailure(
                    "convert",
                    f"{root.name}: {rel} says {'; '.join(found)}, but {how}; which one the producer means is unknown: "
                    f"drop the sidecar with exclude: [{sidecar.name!r}] in the recipe (source.yaml) {keep}",
                )


def _sidecars_of(raster: Path, index: dict[str, list[Path]]) -> list[Path]:
    """The world files GDAL would look for (`.tfw`, `.tifw`, `.wld` for a `.tif`), the `.prj` and the `.aux.xml`
    of `raster`, in any case (GDAL finds world files so; the `.aux.xml` in another case fails elsewhere)."""
    names = {n.lower() for n in sidecar_names(raster.name) if not n.lower().endswith(".msk")}  # a mask declares no grid
    return sorted(p for n in names for p in index.get(n, []) if p.is_file() and p != raster)


def _disagreements(sidecar: Path, read: Reading) -> list[str]:
    declared = _declared(sidecar)
    found = []
    if (crs := declared.get("crs")) and read.crs and not _same_place(crs, read.crs, read.bounds):
        found.append(f"CRS {_crs_name(crs)} where it is {_crs_name(read.crs)}")
    grid, tolerance = declared.get("grid"), _WORLD_FILE_PIXELS if sidecar.suffix.lower() != ".xml" else 1e-6
    if grid and not read.transform.is_identity and not _same_grid(grid, read.transform, tolerance):
        found.append(f"grid {tuple(grid)[:6]} where it is {tuple(read.transform)[:6]}")
    if (point := declared.get("area_or_point")) and read.area_or_point and point.lower() != read.area_or_point.lower():
        found.append(f"AREA_OR_POINT {point} where it is {read.area_or_point} (half a pixel apart)")
    if (nodata := declared.get("nodata")) is not None and read.nodata is not None:
        if not _same_nodata(read.dtype, read.nodata, nodata):
            found.append(f"band 1 nodata {nodata!r} where it is {read.nodata!r}")
    return found


def _declared(sidecar: Path) -> dict:
    """What a sidecar declares: a `.prj`'s CRS, a world file's grid, a `.aux.xml`'s CRS, grid, AREA_OR_POINT and
    band 1 nodata. What cannot be parsed declares nothing (GDAL ignores it too)."""
    text = sidecar.read_text("latin-1")
    try:
        if sidecar.suffix.lower() == ".prj":
            return {"crs": CRS.from_user_input(text.strip())}
        if sidecar.suffix.lower() != ".xml":  # A, D, B, E and the centre (C, F) of the upper left pixel
            a, d, b, e, c, f = (float(v) for v in text.split()[:6])
            return {"grid": Affine(a, b, c - a / 2 - b / 2, d, e, f - d / 2 - e / 2)}
        pam, declared = ET.fromstring(text), {}
        if (srs := pam.findtext("SRS")) and srs.strip():
            declared["crs"] = CRS.from_user_input(srs.strip())
        if gt := pam.findtext("GeoTransform"):
            declared["grid"] = Affine.from_gdal(*(float(v) for v in gt.replace(",", " ").split()))
        for metadata in pam.findall("Metadata"):
            for item in metadata.findall("MDI") if metadata.get("domain") in (None, "") else []:
                if item.get("key") == "AREA_OR_POINT":
                    declared["area_or_point"] = (item.text or "").strip()
        for band in pam.findall("PAMRasterBand"):
            if band.get("band") == "1" and (nd := band.findtext("NoDataValue")) is not None:
                declared["nodata"] = float(nd)
        return declared
    except (ValueError, TypeError, ET.ParseError, rasterio.errors.CRSError):
        return {}
