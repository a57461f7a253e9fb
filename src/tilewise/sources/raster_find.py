"""Find the rasters of an unpacked download and judge which of them are georeferenced elevation.

Every file GDAL opens is a candidate (sidecars and documents are not even tried). A candidate
becomes an output only if it is georeferenced by a geotransform and is not a colour image; the
others are skipped with their reason, and a few odd ones are converted with a warning:

* no geotransform and no GCPs or RPCs (a preview PNG/JPEG, a PDF page, a TIFF without geotags):
  skipped, not georeferenced;
* a colour image, i.e. red/green/blue/…/palette bands (orthophoto, quicklook, coloured relief):
  skipped, not elevation; a palette on one signed or float band is a colour map of elevations;
* georeferenced only by GCPs or RPCs, without a geotransform: the file fails; warp it onto a grid
  first (an approximation tilewise does not make silently);
* entirely beyond ±85.0511° latitude: skipped, outside Web Mercator (no tile can show it); this
  alone does not fail its download;
* several bands, not colour: converted with all bands (as Mapterhorn), warning: band 1 is the
  elevation;
* one 8-bit band: converted, warning: a hillshade or a scanned map is 8-bit too; beside a raster of
  more bits in its download, any 8-bit raster is skipped (convert_set._images_beside_elevation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader

from tilewise.shared.errors import FileFailure
from tilewise.shared.web_mercator import MERCATOR_MAX_LAT, NotOnEarth, check_area_of_use, lonlat_bounds
from tilewise.sources import raster_refs, raster_unread

# Files that never are rasters on their own (sidecars, documents); everything else is tried.
SIDECAR_SUFFIXES = {
    ".prj",
    ".aux",
    ".xml",
    ".tfw",
    ".tfwx",
    ".jgw",
    ".j2w",
    ".pgw",
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
    # an ESRI BIL's or GTOPO30 tile's statistics, colour map and world files: GDAL opens any X.* beside X.hdr
    # as the raster that header describes, so each would be a damaged raster or a second copy of it
    ".stx",
    ".clr",
    ".blw",
    ".bpw",
    ".bqw",
    ".dmw",
}
# files ArcInfo writes into a grid's folder beside its .adf files
AIG_COMPANIONS = {"log", "metadata.xml"}
_COLOUR = {
    ColorInterp.red,
    ColorInterp.green,
    ColorInterp.blue,
    ColorInterp.palette,
    ColorInterp.cyan,
    ColorInterp.magenta,
    ColorInterp.yellow,
    ColorInterp.black,
    ColorInterp.hue,
    ColorInterp.saturation,
    ColorInterp.lightness,
    ColorInterp.Y,
    ColorInterp.Cb,
    ColorInterp.Cr,
}


@dataclass(frozen=True)
class Note:
    """A raster of a download that was skipped, or converted with a warning (reports/{source}/skipped.csv)."""

    raster: str  # path inside the download (its unpacked folder)
    kind: str  # "skipped" or "warning"
    reason: str

    def as_dict(self) -> dict:
        return {"raster": self.raster, "kind": self.kind, "reason": self.reason}


class NoElevationRaster(FileFailure):
    """A download none of whose rasters became an output: the file fails, its notes say why each was skipped."""

    def __init__(self, what: str, why: str, notes: list[Note]):
        listing = "; ".join(f"{n.raster}: {n.reason}" for n in notes if n.kind == "skipped")
        super().__init__("convert", f"{what}: {why}" + (f" ({listing})" if listing else ""))
        self.notes = notes


class HeldOpen:
    """Rasters kept open from their judging to their conversion: one open each, not two (opening a
    GeoTIFF in a projected CRS costs ~1.5 ms of PROJ lookups, a tenth of a small tile's conversion).
    At most `limit` are held, so a download of thousands of rasters stays far from the file limit;
    the others are opened again. A held raster serves one conversion, its first: a copy can change
    a dataset's state (GDAL's GPKG driver empties its metadata after a first CreateCopy), so every
    later one (the other slices of a raster) opens it afresh, as each did before. All are closed when
    the `with` block ends."""

    def __init__(self, limit: int = 4):
        self.limit, self._open, self._taken = limit, {}, set()

    def keep(self, path: Path, ds: DatasetReader) -> None:
        if len(self._open) < self.limit:
            self._open[path] = ds

    def holds(self, ds: DatasetReader) -> bool:
        return any(held is ds for held in self._open.values())

    def take(self, path: Path) -> DatasetReader | None:
        """The raster at `path`, open and as judged, the first time it is asked for; then None."""
        if path in self._taken:
            return None
        self._taken.add(path)
        return self._open.get(path)

    def __enter__(self) -> HeldOpen:
        return self

    def __exit__(self, *exc) -> None:
        for ds in self._open.values():
            ds.close()
        self._open.clear()


def open_rasters(root: Path, held: HeldOpen | None = None) -> Iterator[tuple[Path, DatasetReader]]:
    """Every raster GDAL can open under `root`, open while the caller looks at it (a chunk judges
    every raster: one open each, not one to find it and one to judge it), and after it if the
    caller put it in `held`. An Arc/Info grid folder counts as one raster (the rasters beside and
    below it are found too); one GDAL cannot open raises. A raster that would read files outside
    `root` raises FileFailure, checked for every file before any is opened (a VRT may name another).
    Files that look like rasters but give none fail the download once all others were seen
    (raster_unread)."""
    raster_refs.check_tree(root)
    problems = []
    for path in _candidates(root):
        grid = path.is_dir()  # an AIG coverage: the folder is the dataset
        if grid:
            with quiet():
                ds = rasterio.open(path)
        else:
            try:
                with quiet():
                    ds = rasterio.open(path)
            except (rasterio.errors.RasterioIOError, rasterio.errors.RasterioError) as exc:
                if problem := raster_unread.damaged(path, str(path.relative_to(root)), exc):
                    problems.append(problem)
                continue
        try:
            raster_refs.check_file_list(root, path, ds.files)
            if problem := raster_unread.cut_short(ds, path, str(path.relative_to(root))):
                problems.append(problem)
            elif problem := raster_unread.container(ds, path, str(path.relative_to(root))):
                problems.append(problem)
            elif grid or (ds.count > 0 and ds.width > 0 and ds.height > 0):
                yield path, ds
        finally:
            if held is None or not held.holds(ds):
                ds.close()
    if problems:
        raise raster_unread.UnreadableRasters(problems)


def _candidates(root: Path) -> Iterator[Path]:
    """The files (and Arc/Info grid folders) under `root` GDAL is asked to open, in a stable order. A
    folder holding `hdr.adf` is one grid; its other files and sub-folders are looked at as any others
    (a GeoTIFF beside the grid, a second coverage, a folder of tiles), but not the grid's own files."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        grid = "hdr.adf" in {f.lower() for f in filenames}
        if grid:
            yield here
        for name in sorted(filenames):
            if not (_sidecar(name) or (grid and _part_of_grid(name))):
                yield here / name


def _sidecar(name: str) -> bool:
    return Path(name).suffix.lower() in SIDECAR_SUFFIXES or name.lower().endswith(".aux.xml")


def _part_of_grid(name: str) -> bool:
    """A file of the Arc/Info grid in its folder: its `.adf` files (GDAL opens any of them as the grid
    itself: a second copy) and the companions ArcInfo writes beside them (`log`, `metadata.xml`)."""
    return name.lower().endswith(".adf") or name.lower() in AIG_COMPANIONS


@contextmanager
def quiet() -> Iterator[None]:
    """Not being georeferenced is judged here, not warned about by rasterio."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _outside_web_mercator(ds, rel: str, crs: str | None, window=None, piece: str = "") -> Note | None:
    """An elevation raster (or one slice of it: `window`, named `piece`) entirely beyond ±85.0511° has no
    place in Web Mercator tiles: skipped, but its download does not fail for it (a polar mosaic has many
    such tiles, a sliced polar raster many such slices)."""
    bounds = ds.bounds if window is None else ds.window_bounds(window)
    try:
        beyond = bool(crs or ds.crs) and lonlat_bounds(crs or ds.crs, bounds) is None
        if crs or ds.crs:
            check_area_of_use(crs or ds.crs, bounds)
    except NotOnEarth as exc:  # not "beyond 85°": a CRS that does not fit the file, which must not pass silently
        raise FileFailure(
            "convert",
            f"{Path(ds.name).name}: {exc}; the CRS does not fit its coordinates: set `crs:` in the recipe to the one "
            "they are in",
        ) from None
    if beyond:
        why = f"entirely beyond ±{MERCATOR_MAX_LAT:.4f}° latitude: outside Web Mercator"
        return Note(rel, "skipped", f"{piece}: {why}" if piece else why)
    return None


def outside_web_mercator(path: Path, rel: str, crs: str | None, window=None, piece: str = "") -> Note | None:
    """`_outside_web_mercator` of the raster at `path` (a slice's check, after the raster's own)."""
    with quiet(), rasterio.open(path) as ds:
        return _outside_web_mercator(ds, rel, crs, window, piece)


def has_geotransform(ds) -> bool:
    """GDAL reports a missing geotransform as the identity; no real grid has that one (rows run south)."""
    return not ds.transform.is_identity


def judge(ds: DatasetReader, rel: str, crs: str | None) -> tuple[list[Note], bool]:
    """The notes on one open raster (`crs`: the recipe's), and whether it is elevation: a "skipped"
    note means it is not converted, also when it is elevation entirely beyond Web Mercator's latitudes.

    Raises FileFailure for a raster georeferenced only by GCPs or RPCs."""
    with quiet():
        notes = _judge(ds, Path(ds.name), rel)
        elevation = not any(n.kind == "skipped" for n in notes)
        if elevation and (outside := _outside_web_mercator(ds, rel, crs)):
            notes.append(outside)
    return notes, elevation


def _judge(ds, path: Path, rel: str) -> list[Note]:
    interps = set(ds.colorinterp)
    if not has_geotransform(ds):
        gcps, _ = ds.gcps
        if not gcps and not ds.rpcs:
            return [Note(rel, "skipped", "not georeferenced: no geotransform and no GCPs (an image, not a grid)")]
        if not interps & _COLOUR:
            raise FileFailure(
                "convert",
                f"{path.name} is georeferenced only by {'GCPs' if gcps else 'RPCs'}, not by a geotransform; "
                "warp it onto a grid first (gdalwarp -r near) and list the warped file",
            )
    if interps & _COLOUR and not _elevation_colour_map(ds):
        names = "/".join(sorted(c.name for c in interps & _COLOUR))
        return [Note(rel, "skipped", f"colour image ({names} bands), not elevation")]
    if ds.count > 1:
        return [
            Note(
                rel,
                "warning",
                f"{ds.count} bands: band 1 is taken as the elevation (as Mapterhorn's downstream stage does), "
                "the other bands are kept unchanged",
            )
        ]
    if ds.dtypes[0] == "uint8":
        return [Note(rel, "warning", "one 8-bit band: converted as elevation; a hillshade or a map is 8-bit too")]
    return []


def _elevation_colour_map(ds) -> bool:
    """A palette on one signed-integer or float band is a colour map of its values (GDAL reads an ArcGIS
    `.clr` beside a 16-bit BIL DEM as one): no indexed image has negative or fractional indices."""
    return ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette and ds.dtypes[0][0] in "if"


def _views_of_converted(shows: dict[Path, set[Path]], kept) -> set[Path]:
    """The rasters of `shows` every raster of which is converted or, in turn, such a view."""
    found: set[Path] = set()
    while grown := {
        v for v in shows if v not in found and all(r in found or (r in kept and r not in shows) for r in shows[v])
    }:
        found |= grown
    return found


def views(kept: dict[Path, set[Path]], root: Path, opened: dict[Path, set[Path]]) -> dict[Path, Note]:
    """The rasters among `kept` (each with GDAL's list of the files it reads) that only show other
    rasters of the download (`opened`: every raster found), every one of them converted itself or a
    view of converted ones: a VRT mosaic beside its tiles, a VRT of it. Converting them too would
    store pixels twice (Mapterhorn's unzip converts no VRT). A mosaic of a tile that is skipped (an
    image only the VRT georeferences) is converted: that tile's pixels exist nowhere else; so is a
    VRT that gives raw data its grid. A sidecar two rasters share (one world file for dem.tif and
    dem.png) shows neither: only reading another raster's own file makes a view."""
    main = {s.resolve(): s for s in opened}
    shows: dict[Path, set[Path]] = {}
    for raster, files in kept.items():
        others = {f for s, fs in opened.items() if s != raster for f in fs}
        shown = files - {raster.resolve()}
        shown_rasters = {main[f] for f in shown if f in main and main[f] != raster}
        if shown and shown <= others and shown_rasters and shown_rasters <= kept.keys():
            shows[raster] = shown_rasters
    while stuck := sorted(set(shows) - _views_of_converted(shows, kept)):
        del shows[stuck[0]]  # rasters that only show each other: the first is converted, not all skipped
    found = {}
    for raster, shown_rasters in shows.items():
        names = sorted(str(r.relative_to(root)) for r in shown_rasters)
        listed = ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")
        why = f"a view of other rasters of this download ({listed}), which are converted themselves"
        found[raster] = Note(str(raster.relative_to(root)), "skipped", f"{why}: every pixel would be stored twice")
    return found
