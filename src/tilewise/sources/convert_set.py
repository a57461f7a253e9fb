"""One downloaded set of a chunk → its COGs, staged under the chunk, with their bounds rows, coverage
polygons and md5s, and the notes on the rasters it skipped or converted with a warning.

The GDAL half of a chunk job; sources/prepare.py is the other: downloads, records, the ledger.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio

from tilewise.shared.errors import FileFailure
from tilewise.shared.file_md5 import file_md5
from tilewise.shared.job import check_room
from tilewise.sources import georeferencing, mosaic, names, raster_describe, raster_find, raster_unread, rasters
from tilewise.sources.catalog import FileEntry, sidecars_beside
from tilewise.sources.chunk_job import ChunkJob, failing_as
from tilewise.sources.names import collision_key, safe_name
from tilewise.sources.raster_find import Note
from tilewise.sources.recipe import glob_match
from tilewise.sources.unpack import unpack

GDAL_CACHE_MB = 256  # decoded blocks GDAL keeps: a block row of a 64,000-pixel-wide float32 raster


# GDAL configuration options that change what a producer's file reads as: its grid (a PixelIsPoint GeoTIFF or
# DTED half a pixel off, a world file over the internal grid, broken linear units, netCDF rows flipped), its CRS,
# its values (an ASCII grid of decimals read as Int32) or its damage (a bad TIFF block read as zeros). A chunk
# reads each file as GDAL's defaults do, whatever the user's environment sets (the option is unset while it runs).
FILE_MEANING_OPTIONS = (
    "GTIFF_POINT_GEO_IGNORE",
    "GTIFF_HONOUR_NEGATIVE_SCALEY",
    "GTIFF_LINEAR_UNITS",
    "GTIFF_REPORT_COMPD_CS",
    "GTIFF_SRS_SOURCE",
    "GTIFF_IGNORE_READ_ERRORS",
    "GDAL_GEOREF_SOURCES",
    "DTED_APPLY_PIXEL_IS_POINT",
    "AAIGRID_DATATYPE",
    "GDAL_NETCDF_BOTTOMUP",
)


@contextmanager
def gdal_env() -> Iterator[None]:
    """One GDAL environment for the chunk, not one set up and torn down per open. GDAL's block cache
    (5 % of RAM by default) is capped, so a 40,000² raster's job stays below 2 GB (1.5 GB measured); sidecars
    (.tfw, .prj, .aux.xml) are part of a producer's raster, whatever the user's environment says
    (GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR, a common cloud setting, hides them; GDAL_PAM_ENABLED=NO
    ignores .aux.xml files), and so is every option of FILE_MEANING_OPTIONS. A downloaded VRT
    never runs Python code (pixel functions). A raw raster (EHdr, ISIS, VICAR, GTX, …) is read line
    by line, never in one big read: GDAL fails a short line read, but fills a short big read of a
    small file (up to ~16 KiB) with zeros without a word (raster_unread.cut_short has the rest)."""
    # unset, not set: GDAL reads an option from the environment when it is not configured, and some have
    # no value that means "the default" (AAIGRID_DATATYPE="" forces Int32)
    saved = {k: os.environ.pop(k) for k in FILE_MEANING_OPTIONS if k in os.environ}
    try:
        with rasterio.Env(
            GDAL_CACHEMAX=GDAL_CACHE_MB << 20,  # bytes: rasterio hands an integer to GDALSetCacheMax64 (256 was 256 B)
            GDAL_DISABLE_READDIR_ON_OPEN="FALSE",
            GDAL_VRT_ENABLE_PYTHON="NO",
            GDAL_ONE_BIG_READ="NO",
            GDAL_PAM_ENABLED="YES",  # a .aux.xml may hold the grid, nodata or scale: never ignored
        ):
            yield
    finally:
        os.environ.update(saved)


def _elevation_rasters(
    job: ChunkJob, unpacked: Path, group: str, excluded: list[str], held: raster_find.HeldOpen
) -> tuple[list[Path], list[Note], bool]:
    """The rasters of a download that become outputs, the notes on all of them, and whether it held
    elevation rasters at all (some may lie beyond Web Mercator's latitudes). None is found when the
    recipe's `excluded` files were all of them. The first rasters kept stay open in `held`."""
    kept, opened, notes, elevation, found = {}, {}, [], False, 0
    readings: dict[Path, georeferencing.Reading] = {}  # kept rasters as GDAL read them: their sidecars must agree
    eight_bit: dict[Path, list[Note]] = {}  # kept rasters all of whose bands are 8-bit → their notes
    masks = georeferencing.external_masks(unpacked)
    with failing_as("convert", group):  # an Arc/Info grid folder GDAL cannot open
        for raster, ds in raster_find.open_rasters(unpacked, held):
            found += 1
            rel = str(raster.relative_to(unpacked))
            with failing_as("convert", raster.name):
                georeferencing.check_mask(ds, raster, rel, masks)
                raster_notes, is_elevation = raster_find.judge(ds, rel, job.recipe.crs)
                elevation |= is_elevation
                if not any(n.kind == "skipped" for n in raster_notes):
                    georeferencing.check_pam_agrees(ds, raster, rel)
                    georeferencing.check_one_grid(ds, raster, rel)
                    # also a view skipped below: a mosaic's scale or unit says what the tiles it shows hold
                    rasters.check_metres(ds, raster.name, job.recipe.crs)
            opened[raster] = {Path(f).resolve() for f in ds.files}
            if not any(n.kind == "skipped" for n in raster_notes):
                kept[raster] = opened[raster]
                readings[raster] = georeferencing.Reading.of(ds)
                held.keep(raster, ds)
                if all(np.dtype(d).itemsize == 1 for d in ds.dtypes):
                    eight_bit[raster] = raster_notes
                    continue  # its notes wait for the other rasters of the download
            notes += raster_notes
    with failing_as("convert", group):
        georeferencing.check_pam_names(unpacked, list(opened), set().union(*opened.values()))
        georeferencing.check_sidecars_read(unpacked, readings, opened, job.recipe.crs)
    notes += _images_beside_elevation(kept, eight_bit, unpacked)
    if not found and _rasters_among(excluded):
        return [], notes, False
    if not found:
        raise FileFailure("unpack", f"{group}: no raster GDAL can read was found in it")
    if not elevation:
        raise raster_find.NoElevationRaster(group, "no georeferenced elevation raster in it", notes)
    views = raster_find.views(kept, unpacked, opened)
    notes += views.values()
    return [r for r in kept if r not in views], notes, bool(kept)


def _images_beside_elevation(
    kept: dict[Path, set[Path]], eight_bit: dict[Path, list[Note]], unpacked: Path
) -> list[Note]:
    """The notes on the 8-bit rasters of a download. Beside a raster of more bits they are images (a
    hillshade, an RGB preview written without colour tags, a mask), not elevation: skipped (removed from
    `kept`), as Mapterhorn's 0…255 m tile overlapping the DEM would ship. A download of only 8-bit rasters
    keeps them, each with its warning."""
    if not eight_bit or len(eight_bit) == len(kept):
        return [n for raster_notes in eight_bit.values() for n in raster_notes]
    deeper = next(str(r.relative_to(unpacked)) for r in kept if r not in eight_bit)
    notes = []
    for raster in eight_bit:
        del kept[raster]
        why = (
            f"8-bit bands beside elevation rasters of more bits ({deeper}): a hillshade, preview or mask, not elevation"
        )
        notes.append(Note(str(raster.relative_to(unpacked)), "skipped", why))
    return notes


def _local_sidecars(job: ChunkJob, members: list[FileEntry], unpacked: Path) -> None:
    """A plain path or file:// download keeps the sidecars beside it on disk, as GDAL reading that path does
    (`gdal_translate /data/dem.tif` reads /data/dem.tif.aux.xml and /data/dem.tfw): they are copied beside its
    copy, where its rasters are judged and their sidecars checked as those of an archive. An archive's own
    members are its sidecars."""
    for entry in members:
        local = entry.local_path(job.entry_dir)
        if local is None or not (unpacked / entry.name).is_file():  # a remote file, or an archive unpacked
            continue
        for sidecar in sidecars_beside(local):
            if not (unpacked / sidecar.name).exists():
                shutil.copyfile(sidecar, unpacked / sidecar.name)


def _drop_excluded_files(job: ChunkJob, unpacked: Path) -> list[str]:
    """Delete the unpacked files the recipe excludes (as `rm` in the store would, before to_cog)."""
    dropped = []
    for path in sorted(unpacked.rglob("*")):
        if path.is_file() and job.recipe.excludes(path.name):
            path.unlink()
            dropped.append(str(path.relative_to(unpacked)))
    return dropped


def output_name(
    job: ChunkJob, members: list[FileEntry], raster: Path, piece_name: str, nested: dict[Path, str] | None = None
) -> str:
    """The store name of one piece: Mapterhorn's `{stem}.tif` (or the slice name), prefixed with the
    download's stem and the raster's folders when the recipe says so, made safe by the one rule.
    `nested`: the folders nested archives were unpacked into → the archive's name (its stem is used)."""
    group = members[0].group
    if job.recipe.prefixes(group, *(e.name for e in members)):
        parents = list(reversed(raster.parents))[1:]  # each folder, outermost first, without "."
        folders = [names.stem((nested or {})[p]) if p in (nested or {}) else p.name for p in parents]
        piece_name = "_".join([names.stem(group), *folders, piece_name])
    return safe_name(piece_name)


def convert_set(
    job: ChunkJob, number: int, members: list[FileEntry], downloads: list[Path]
) -> tuple[list[dict], list[Note], list[str]]:
    """The set's outputs (staged as `{number}-{name}`), its notes, and the names the recipe excluded."""
    group = members[0].group
    unpacked = job.scratch / "unpacked" / group
    with failing_as("unpack", group):  # anything an archive library raises on a hostile or damaged file
        nested = unpack(downloads, unpacked, job.limits)
        _local_sidecars(job, members, unpacked)
    excluded = _drop_excluded_files(job, unpacked)
    with raster_find.HeldOpen() as held:  # each raster stays open from its judging to its conversion
        found, notes, inside = _elevation_rasters(job, unpacked, group, excluded, held)
        outputs: list[dict] = []
        made_by: dict[str, tuple[str, str]] = {}  # collision key → the raster (inside the download) and its name
        try:
            for raster in found:
                rel = str(raster.relative_to(unpacked))
                for piece in rasters.plan_pieces(raster, job.recipe):
                    name = output_name(job, members, Path(rel), piece.name, nested)
                    if job.recipe.excludes(piece.name, name):
                        excluded.append(name)
                        continue
                    with raster_unread.reading(raster, rel):
                        empty = rasters.window_is_empty(piece, job.recipe)
                    if empty:
                        continue
                    if piece.window is not None and (beyond := _slice_beyond_mercator(job, piece, rel)):
                        notes.append(beyond)  # a slice beyond the Mercator latitudes, as a whole raster would be
                        continue
                    key = collision_key(name)
                    if key in made_by:
                        raise FileFailure("convert", _collision_in_one_file(job, members, name, made_by[key], rel))
                    made_by[key] = (rel, name)
                    record, warning = _stage(job, number, group, piece, name, rel, held.take(raster))
                    if warning:
                        notes.append(Note(rel, "warning", warning))
                    outputs.append(record)
        except BaseException:
            for out in outputs:  # a file succeeds whole or not at all
                (job.staging / out["staged"]).unlink(missing_ok=True)
            raise
    if not outputs and inside and not _rasters_among(excluded):
        raise raster_find.NoElevationRaster(group, "every raster in it was empty", notes)
    if not outputs and _rasters_among(excluded):  # said, not silent: the recipe may have matched more than it meant
        shown = ", ".join(excluded[:3]) + (f" and {len(excluded) - 3:,} more" if len(excluded) > 3 else "")
        why = f"the recipe's exclude patterns ({', '.join(job.recipe.exclude)}) matched every raster: no output"
        notes.append(Note(shown, "skipped", why))
    return outputs, notes, excluded


def _slice_beyond_mercator(job: ChunkJob, piece: rasters.Piece, rel: str) -> Note | None:
    return raster_find.outside_web_mercator(piece.raster, rel, job.recipe.crs, piece.window, piece.name)


def _stage(
    job: ChunkJob, number: int, group: str, piece: rasters.Piece, name: str, rel: str, opened
) -> tuple[dict, str | None]:
    """Write the COG `name` of one piece of a raster of the download `group` (set `number`), describe
    it and move it into the chunk's staging folder: its record, and a warning about it if any.
    `opened`: the raster, if it is open."""
    tmp = job.scratch / "cog" / name
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with failing_as("convert", piece.raster.name), raster_unread.reading(piece.raster, rel):
        try:
            warning, written = rasters.write_output(piece, job.recipe, tmp, job.scratch / "vrt", opened)
        except Exception:  # GDAL does not say ENOSPC: a failure on a disk without room is not trusted
            tmp.unlink(missing_ok=True)
            check_room(tmp.parent, _pixel_bytes(piece), f"{group}: writing the COG {name}")
            raise
    with written or rasterio.open(tmp) as cog:  # the nodata check left its blocks in GDAL's cache
        row, geom, crs = raster_describe.describe(cog)
        row["mosaic"] = mosaic.key(cog)
    row["filename"] = name
    staged = f"{number:05d}-{name}"
    record = {**row, "crs": crs, "coverage_wkb": geom.wkb_hex, "bytes": tmp.stat().st_size}
    record.update(md5=file_md5(tmp), raster=rel, staged=staged)
    os.replace(tmp, job.staging / staged)  # atomic: no partial COG ever has its final name
    return record, warning


def _rasters_among(names: list[str]) -> list[str]:
    """The names that are rasters by their suffix: excluded sidecars (.tfw, .xml) never stand for a raster."""
    return [n for n in names if Path(n).suffix.lower() in raster_unread.RASTER_SUFFIXES | {".vrt"}]


def _collision_in_one_file(
    job: ChunkJob, members: list[FileEntry], name: str, first: tuple[str, str], second: str
) -> str:
    """Two rasters of one download would get one name: say which, and how to keep both or exactly one."""
    group = members[0].group
    (first, first_name), fixes = first, []
    if Path(first).parent != Path(second).parent and not job.recipe.prefixes(group, *(e.name for e in members)):
        fixes.append(f"keep both, named after their folders: prefix_names_from: [{group!r}]")
    # an exclude pattern is matched against every name a file has (inside the download, as an output):
    # advise one that matches only the raster it drops
    for drop, keep, keep_name in ((second, first, first_name), (first, second, name)):
        pattern = _literal_glob(Path(drop).name)
        if not any(glob_match(n, pattern) for n in (Path(keep).name, keep_name)):
            fixes.append(f"drop {drop} by its name inside the download: exclude: [{pattern!r}]")
            break
    if not fixes:
        fixes.append(f"exclude: [{group!r}] drops the whole download")
    return (
        f"{group}: two rasters inside it, {first} and {second}, would both be stored as {name} "
        f"(names that differ only in case count as one); in the recipe (source.yaml) " + " or ".join(fixes)
    )


def _literal_glob(name: str) -> str:
    """A shell glob that matches exactly `name` (its `*`, `?` and `[` taken literally)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _pixel_bytes(piece: rasters.Piece) -> int:
    """The most a COG of `piece` can take: its pixels uncompressed, plus headers and slack."""
    try:
        with rasterio.open(piece.raster) as ds:
            width, height = (piece.window.width, piece.window.height) if piece.window else (ds.width, ds.height)
            pixels = int(width * height * ds.count * np.dtype(ds.dtypes[0]).itemsize)
    except Exception:  # unreadable: the failure is the file's, whatever the disk
        return 0
    return pixels + pixels // 64 + (1 << 20)
