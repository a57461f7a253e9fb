"""The tiles a state's counties read: read where they live when they can be, else converted.

Per needed file (one Sentinel-2 band of one MGRS tile, one WorldCover tile, one CDL raster) one of
three paths, decided from the file itself:

- `in_place`: an internally tiled GeoTIFF over http(s) or s3 (WorldCover, Sentinel-2 COGs on the
  Planetary Computer or Earth Search) is read by the counties where it lives, block by block
  (`/vsicurl/`, `/vsis3/`), unless the config asks for a local copy (`biomass.local_copy`) or its
  server cannot vouch for its version (no strong ETag, no Last-Modified: it is copied instead). The
  manifest records the version checked (length, ETag, Last-Modified: shared/remote_version), and each
  county asks for it again before and after its reads: another version fails the county, naming both,
  and marks the tile for preparation again at the next run;
- `clip`: a raster larger than the part the state reads (a national CDL, a Sentinel-2 tile on the
  state's edge) is cut to the window of the counties that read it — read by windows, never whole —
  and written as a verified, internally tiled, lossless COG;
- `convert`: the same for a raster the state reads whole.

A remote GeoTIFF that is not internally tiled (a national CDL in strips) is clipped by range reads
of the strips the window crosses; a remote file of another format (a JPEG2000) is downloaded first,
and the download deleted after. Each tile has a manifest (`{key}.json`; this module writes and reads it)
with the path taken and what it cost; a tile that fails gets one too, with the reason, and its
counties then fail while everything else goes on. The converted COGs are not Snakemake files: a tile
is deleted as soon as every county that reads it has succeeded (`release`), and kept while one of them
has failed.

A tile of a grid with holes (ESA publishes no WorldCover tile over open water) is `absent`, not a
failure, only when its server answers 404 or 410 while it serves another tile of the same product and
state: the counties that read it have no data of that product there. Any other error fails the tile
(a 403, a 5xx after its retries, a 404 of a Sentinel-2 band or CDL file, a 404 while no other tile
exists: a wrong template), and so does a local file that is not there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from tilewise.biomass import outcomes
from tilewise.biomass.pc_sign import signer
from tilewise.biomass.raster_checks import check_cell_areas, check_s2_band, check_s2_grids, check_worldcover_tile
from tilewise.shared import gdal_vsi, remote_version
from tilewise.shared.cog import full_width_nbits, tile_cog_options
from tilewise.shared.download import DownloadSettings, NotFound, fetch, is_remote, make_pool
from tilewise.shared.errors import TilewiseError
from tilewise.shared.url_secrets import masked
from tilewise.shared.window_vrt import window_vrt

log = logging.getLogger(__name__)
VERSION = 2
IN_PLACE, CLIP, CONVERT, ABSENT = "in_place", "clip", "convert", "absent"
GRIDS_WITH_HOLES = ("worldcover",)  # published only where there is land: a 404 may be a tile that is not
MAX_SIBLINGS_ASKED = 50  # other tiles asked before a 404 is called a wrong template, not an absent tile
# how GDAL's /vsicurl/ and /vsis3/ report a status when a file cannot be opened (GDAL 3.x)
_GDAL_HTTP_STATUS = re.compile(r"HTTP response code: (\d{3})\b")
ROWS_PER_CHECK = 1024
MAX_BLOCK_PX = 2048  # larger internal blocks make every parcel read fetch too much: convert those
# Clip windows start and end on a 60 m grid counted from the raster's corner: Sentinel-2's pixel sizes
# (10, 20, 60 m) all divide it, so every band of a tile is cut at the same ground origin, and the
# county resamples the 20 m SCL onto the 10 m bands by origin offsets.
CLIP_GRID_M = 60
RERUN = (
    "run the workflow again: the tile is prepared again from the server's current version, and every county "
    "that reads it runs again"
)


@dataclass(frozen=True)
class TileSettings:
    codec: str
    local_copy: bool
    signed_href_min_ttl_seconds: float
    download: DownloadSettings

    @classmethod
    def from_params(cls, params: dict) -> TileSettings:
        return cls(**{**params, "download": DownloadSettings.from_config(params["download"])})


class NotPublished(TilewiseError):
    """The tile's server says it has no such file (HTTP 404 or 410)."""


def verify_same_pixels(original, converted, window: Window | None = None) -> None:
    """Decoded pixels, georeferencing and nodata of the COG equal the original's (in `window`), or
    TilewiseError."""
    with rasterio.open(original) as a, rasterio.open(converted) as b:
        win = window or Window(0, 0, a.width, a.height)
        for what, x, y in (
            ("size", (int(win.width), int(win.height), a.count), (b.width, b.height, b.count)),
            ("CRS", a.crs, b.crs),
            ("transform", a.window_transform(win), b.transform),
            ("nodata", a.nodata, b.nodata),
            ("data type", a.dtypes, b.dtypes),
        ):
            if x != y and not (
                what == "nodata" and x is not None and y is not None and math.isnan(x) and math.isnan(y)
            ):
                raise TilewiseError(f"{converted}: {what} differs from the original {original}: {y} vs {x}")
        for row in range(0, b.height, ROWS_PER_CHECK):
            height = min(ROWS_PER_CHECK, b.height - row)
            src = Window(win.col_off, win.row_off + row, win.width, height)
            equal_nan = a.dtypes[0].startswith("float")
            if not np.array_equal(a.read(window=src), b.read(window=Window(0, row, b.width, height)), equal_nan):
                raise TilewiseError(f"{converted}: pixels in rows {row}–{row + height} differ from {original}")


def streamable_layout(ds) -> str | None:
    """None when `ds` can be read block by block where it lives, else why not."""
    if ds.driver != "GTiff":
        return f"a {ds.driver} file, not a GeoTIFF (downloaded before it is converted)"
    if not ds.profile.get("tiled"):
        return "a GeoTIFF in strips, not internally tiled"
    height, width = ds.block_shapes[0]
    if max(height, width) > MAX_BLOCK_PX:
        return f"internal blocks of {width}×{height} px (more than {MAX_BLOCK_PX})"
    return None


def clip_window(ds, bbox_lonlat: tuple[float, float, float, float] | None) -> Window:
    """The window of `ds` covering `bbox_lonlat` (all of it when None), snapped outward to CLIP_GRID_M."""
    full = Window(0, 0, ds.width, ds.height)
    north_up = ds.transform.b == 0 and ds.transform.d == 0
    if bbox_lonlat is None or not north_up:
        return full
    bounds = transform_bounds("EPSG:4326", ds.crs, *bbox_lonlat, densify_pts=21)
    win = from_bounds(*bounds, transform=ds.transform)
    snap_x, snap_y = _snap_px(ds)
    col0 = math.floor(win.col_off / snap_x) * snap_x
    row0 = math.floor(win.row_off / snap_y) * snap_y
    col1 = math.ceil((win.col_off + win.width) / snap_x) * snap_x
    row1 = math.ceil((win.row_off + win.height) / snap_y) * snap_y
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, ds.width), min(row1, ds.height)
    if col1 <= col0 or row1 <= row0:
        raise TilewiseError(f"{ds.name}: does not overlap the counties that read it ({bbox_lonlat} lon/lat)")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _snap_px(ds) -> tuple[int, int]:
    if not (ds.crs and ds.crs.is_projected and ds.crs.linear_units in ("metre", "meter")):
        return 1, 1
    out = []
    for res in ds.res:
        whole = round(res)
        out.append(math.lcm(CLIP_GRID_M, whole) // whole if whole > 0 and abs(res - whole) < 1e-9 else 1)
    return out[0], out[1]


def window_of(row: dict) -> tuple[float, float, float, float] | None:
    """The lon/lat box a tile row asks to be clipped to (`west south east north`), or None."""
    text = str(row.get("window_lonlat") or "").strip()
    if not text or text == "nan":
        return None
    west, south, east, north = (float(v) for v in text.split())
    return west, south, east, north


def prepare_tile(
    row: dict,
    tif: Path,
    manifest: Path,
    settings: TileSettings,
    states_root: Path,
    failed_before: int = 0,
    siblings: tuple[str, ...] = (),
    bands: dict[str, str] | None = None,
) -> dict:
    """Read-in-place check, or clip/convert and verify, one tile row of the state index; always writes
    the manifest (a failure too: its counties fail, nothing else does; `failed_attempts` counts the
    failures so far, so that the next run tries again: see outcomes). `siblings` (sibling_hrefs) are
    the other tiles of its product: one of them on the server makes a 404 an absent tile. `bands`
    (tile_bands): a Sentinel-2 band's tile, band → href, whose B04 gives the grid it must be on."""
    started = time.time()
    tif.parent.mkdir(parents=True, exist_ok=True)
    try:
        record = {"status": "ok", **_prepare(row, tif, settings, bands or {})}
    except NotPublished as missing:
        try:
            record = {"status": "ok", **_absent(row, missing, siblings, settings)}
        except TilewiseError as exc:
            record = _failure(row, exc)
    except Exception as exc:  # noqa: BLE001 (any failure is this tile's, recorded for its counties)
        record = _failure(row, exc)
    finished = time.time()
    record = {
        "version": VERSION,
        "product": row["product"],
        "key": row["key"],
        "href": row["href"],  # as the index has it: never signed
        "sign": row.get("sign") or "none",
        **record,
        "failed_attempts": failed_before + (record["status"] != "ok"),
        "started_unix": round(started, 3),
        "finished_unix": round(finished, 3),
        "seconds": round(finished - started, 3),
        # every state's converted tiles on disk right after this one was written: a state's peak is the
        # max of its own entry, and two states' tiles coexisted if one's manifest shows the other's
        "tile_bytes_on_disk_after": tile_bytes_on_disk(states_root),
    }
    write_manifest(manifest, record)
    return record


def _failure(row: dict, exc: Exception) -> dict:
    error = str(exc) if isinstance(exc, TilewiseError) else f"{type(exc).__name__}: {exc}"
    if row["href"] not in error:
        error = f"{row['href']}: {error}"
    error = masked(error)  # GDAL's and the download's errors name the signed href opened; an href may hold a secret
    log.error("%s %s: %s", row["product"], row["key"], error, exc_info=not isinstance(exc, TilewiseError))
    return {"status": "failed", "error": error}


def sibling_hrefs(tiles: list[dict], row: dict) -> tuple[str, ...]:
    """The other hrefs of the row's product in the state's tile rows when its grid has holes, else none."""
    if row["product"] not in GRIDS_WITH_HOLES:
        return ()
    return tuple(sorted({t["href"] for t in tiles if t["product"] == row["product"]} - {row["href"]}))


def tile_bands(tiles: list[dict], row: dict) -> dict[str, str]:
    """A Sentinel-2 row's tile in the state's tile rows, band → href (the same tile and date); else none."""
    if row["product"] != "sentinel2":
        return {}
    return {
        t["band"]: t["href"]
        for t in tiles
        if t["product"] == "sentinel2" and (t["tile"], t["date"]) == (row["tile"], row["date"])
    }


def check_file(row: dict, source: str, bands: dict[str, str], sign) -> None:
    """Refuse, before it is read in place or copied, a file the counties would measure or combine wrong
    (raster_checks): CDL or WorldCover in a CRS that does not keep areas; a WorldCover file of another
    place than its tile; a Sentinel-2 band outside its tile's UTM CRS or off the grid of the tile's B04."""
    with rasterio.open(source) as ds:
        if row["product"] != "sentinel2":
            check_cell_areas(ds, row["href"])
            if row["product"] == "worldcover":
                check_worldcover_tile(ds, row["key"], row["href"])
            return
        check_s2_band(ds, row["tile"], row["band"], row["href"])
        b04 = bands.get("B04")
        if b04 is None or b04 == row["href"]:
            return
        try:
            ref = rasterio.open(gdal_vsi.gdal_path(sign(b04)) if gdal_vsi.is_streamable_href(b04) else b04)
        except rasterio.errors.RasterioIOError as exc:
            raise TilewiseError(f"cannot open the tile's B04 {b04} to compare grids with it ({exc})") from exc
        with ref:
            check_s2_grids(row["tile"], row["date"], row["band"], ds, row["href"], ref, b04)


def _absent(row: dict, missing: NotPublished, siblings: tuple[str, ...], settings: TileSettings) -> dict:
    """The record of a tile its server does not publish, when that is what the 404 means (else the
    TilewiseError that fails it): a product whose grid has holes, and another of its tiles on the server."""
    if row["product"] not in GRIDS_WITH_HOLES:
        raise TilewiseError(f"{missing}; a {row['product']} file the index names must exist: check its href")
    origin = urlsplit(row["href"])[:2]
    asked = [h for h in siblings if urlsplit(h)[:2] == origin][:MAX_SIBLINGS_ASKED]
    sign = signer(row.get("sign"), settings.signed_href_min_ttl_seconds)
    for href in asked:
        try:
            gdal_vsi.file_size(gdal_vsi.gdal_path(sign(href)))
        except TilewiseError:
            continue
        log.warning("%s %s is absent: %s, while %s exists", row["product"], row["key"], missing, href)
        return {
            "read": ABSENT,
            "absent": True,
            "reason": f"{missing}, while {href} exists",
            "path": "",
            "bytes": 0,
            "network_bytes": gdal_vsi.network_bytes(),
            "remote_bytes": None,
        }
    raise TilewiseError(
        f"{missing}, and no other {row['product']} tile of the state ({len(asked)} asked) exists on that server: "
        f"check the {row['product']} href template in the config"
    )


def _open_failure(href: str, exc: rasterio.errors.RasterioIOError) -> TilewiseError:
    """What a remote file that GDAL cannot open means: NotPublished for 404/410, else the status said."""
    found = _GDAL_HTTP_STATUS.search(str(exc))
    if found is None:
        return TilewiseError(f"{href}: cannot open it ({exc})")
    status = int(found.group(1))
    try:
        text = f"{href}: HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status code Python does not name
        text = f"{href}: HTTP {status}"
    return NotPublished(text) if status in (404, 410) else TilewiseError(f"{text} (when opening it)")


def _prepare(row: dict, tif: Path, settings: TileSettings, bands: dict[str, str]) -> dict:
    href = row["href"]
    sign = signer(row.get("sign"), settings.signed_href_min_ttl_seconds)
    gdal_vsi.configure_retries(settings.download.attempts, settings.download.backoff_seconds)
    gdal_vsi.reset_network_bytes()
    source, downloaded, remote_bytes = href, 0, None
    scratch = tif.with_name(tif.name + ".download")
    if not gdal_vsi.is_streamable_href(href) and not Path(href).exists():
        hint = (
            " (ESA publishes no WorldCover tile over open water: read the tiles from its server, where a tile "
            "it does not publish counts as absent)"
            if row["product"] in GRIDS_WITH_HOLES
            else ""
        )
        raise TilewiseError(f"{href}: the tile does not exist; the counties that read it fail until it is there{hint}")
    try:
        if gdal_vsi.is_streamable_href(href):
            signed = sign(href)
            source = gdal_vsi.gdal_path(signed)
            try:
                with rasterio.open(source) as ds:
                    why_not, driver = streamable_layout(ds), ds.driver
            except rasterio.errors.RasterioIOError as exc:
                raise _open_failure(href, exc) from exc
            version = remote_version.of(source)  # the version checked here; the counties ask for it again
            check_file(row, source, bands, sign)
            remote_bytes = gdal_vsi.file_size(source)
            if why_not is None and not settings.local_copy:
                why_not = _unvouched(version) or _group_not_streamable(row, settings)
            if why_not is None and not settings.local_copy:
                remote_version.check_same(href, version, source, "while its tile was prepared", RERUN)
                return {
                    "read": IN_PLACE,
                    "path": "",
                    "bytes": 0,
                    "network_bytes": gdal_vsi.network_bytes(),
                    "remote_bytes": remote_bytes,
                    "remote_version": version,
                }
            if why_not is not None:
                log.info("%s: %s", href, why_not)
            if driver != "GTiff" and is_remote(href):  # no useful range reads: fetch it whole
                log.info("%s: downloading it", href)
                try:
                    fetch(signed, scratch, None, settings.download, make_pool(settings.download, maxsize=1))
                except NotFound as exc:  # gone since GDAL looked at it
                    raise NotPublished(f"{href}: {exc}") from exc
                source = str(scratch)
                downloaded = scratch.stat().st_size
        else:
            check_file(row, href, bands, sign)
        record = write_cog(source, tif, window_of(row), settings.codec)
    finally:
        scratch.unlink(missing_ok=True)
    return {
        **record,
        "network_bytes": gdal_vsi.network_bytes() + downloaded,
        "remote_bytes": remote_bytes,
        "original_bytes": None if remote_bytes is not None else Path(href).stat().st_size,
    }


def _unvouched(version: dict) -> str | None:
    """Why a remote file is copied although it could be read in place: its server gives nothing (no
    strong ETag, no Last-Modified) that would tell the counties a new version of the same length."""
    if version["vouched_by"] != "length only":
        return None
    return (
        "its server gives no strong ETag or Last-Modified: a new version of the same length read in place "
        "would go unseen"
    )


def _group_not_streamable(row: dict, settings: TileSettings) -> str | None:
    """Why a band must be converted although it could be read in place: another band of its Sentinel-2
    tile cannot be (the county reads a tile's bands on one grid and block layout, so they are read in
    place all together or converted all together, with the same window). None when all can."""
    sign = signer(row.get("sign"), settings.signed_href_min_ttl_seconds)
    for href in row.get("group_hrefs") or []:
        if href == row["href"]:
            continue
        if not gdal_vsi.is_streamable_href(href):
            return f"its sibling band {href} is a local file"
        try:
            with rasterio.open(gdal_vsi.gdal_path(sign(href))) as ds:
                why_not = streamable_layout(ds) or _unvouched(remote_version.of(gdal_vsi.gdal_path(sign(href))))
        except (rasterio.errors.RasterioIOError, TilewiseError) as exc:
            return f"its sibling band {href} cannot be opened ({exc})"
        if why_not is not None:
            return f"its sibling band {href} is {why_not}"
    return None


def write_cog(source: str, tif: Path, bbox_lonlat, codec: str) -> dict:
    """The window of `source` covering `bbox_lonlat` (all of it when None) as a verified COG at `tif`."""
    tmp = tif.with_name(tif.name + ".part.tif")
    vrt = tif.with_name(tif.name + ".window.vrt")
    try:
        with rasterio.open(source) as src:
            window = clip_window(src, bbox_lonlat)
            whole = (window.width, window.height) == (src.width, src.height)
            opts = {**tile_cog_options(codec, src.dtypes[0]), **full_width_nbits(src)}
            if whole:
                rasterio.shutil.copy(src, tmp, driver="COG", **opts)
            else:
                window_vrt(src, vrt, window).write(vrt)
                with rasterio.open(vrt) as part:
                    rasterio.shutil.copy(part, tmp, driver="COG", **opts)
            size = (src.width, src.height)
        verify_same_pixels(source, tmp, window)
        os.replace(tmp, tif)
    finally:
        tmp.unlink(missing_ok=True)
        vrt.unlink(missing_ok=True)
    return {
        "read": CONVERT if whole else CLIP,
        "path": str(tif),
        "bytes": tif.stat().st_size,
        "mtime_ns": tif.stat().st_mtime_ns,  # with bytes: a county reads this file, not one put in its place
        "window_px": [int(window.col_off), int(window.row_off), int(window.width), int(window.height)],
        "original_size_px": list(size),
        "codec": codec,
        "verified_pixels_equal": True,
    }


def tile_bytes_on_disk(states_root: Path) -> dict[str, int]:
    """Bytes of converted tiles (finished, being written or being downloaded) on disk, per state: not their
    manifests, nor the window VRT (a few KB of XML) a tile is cut through while it is written."""
    out: dict[str, int] = {}
    for state_dir in sorted(p for p in Path(states_root).glob("*") if p.is_dir()):
        total = 0
        for path in state_dir.glob("tiles/*/*"):
            if ".json" in path.name or path.name.endswith(".window.vrt"):
                continue
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # reclaimed while we looked
                pass
        out[state_dir.name] = total
    return out


def write_manifest(path: Path, record: dict) -> None:
    """The tile manifest ({key}.json beside the tile): this module writes and reads it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict:
    record = json.loads(Path(path).read_text())
    if record.get("version") != VERSION:
        raise TilewiseError(
            f"{path}: tile manifest format {record.get('version')!r}, this tilewise reads {VERSION}; "
            "delete it to prepare the tile again"
        )
    return record


def county_read_paths(rows: list[dict], settings: TileSettings, states_root: Path) -> list[dict]:
    """The county's tile rows with `path`, what to open: the signed GDAL name of a tile read in place,
    or the converted COG — converted again here if it was reclaimed after an earlier run (a county run
    again after a code change or `-f`). A tile whose preparation failed fails the county, naming why."""
    out = []
    for row in rows:
        record = read_manifest(row["manifest"])
        if record["status"] != "ok":
            raise TilewiseError(f"tile {row['product']}/{row['key']} ({row['href']}) failed: {record['error']}")
        if record["read"] == ABSENT:
            product = row["product"]
            log.warning("%s tile %s is absent (%s): no %s data there", product, row["key"], record["reason"], product)
            continue
        if record["read"] == IN_PLACE:
            sign = signer(row.get("sign"), settings.signed_href_min_ttl_seconds)
            path = gdal_vsi.gdal_path(sign(row["href"]))
            _check_version(row, record, path, "since its tile was prepared")
            out.append({**row, "path": path})
            continue
        tif = Path(row["tif"])
        why = _not_as_converted(tif, record)
        if why:  # the same window again: a local copy is what the manifest says it was
            log.info("%s: %s; converting it again", tif, why)
            _prepare(row, tif, replace(settings, local_copy=True), {})  # checked when first prepared
            if "mtime_ns" in record:  # the tile its manifest describes again, for the state's other counties
                os.utime(tif, ns=(time.time_ns(), record["mtime_ns"]))
        out.append({**row, "path": str(tif)})
    return out


def _not_as_converted(tif: Path, record: dict) -> str | None:
    """Why the converted tile on disk is not the one its manifest describes: reclaimed, or replaced or
    edited by hand since (another size or modification time: a kept tile of a failed county copied over
    with another band's would be read as this band)."""
    try:
        st = tif.stat()
    except FileNotFoundError:
        return "reclaimed after an earlier run"
    if st.st_size != record["bytes"] or st.st_mtime_ns != record.get("mtime_ns", st.st_mtime_ns):
        return (
            f"replaced or edited since it was converted (size {st.st_size}, manifest {record['bytes']}; "
            f"modified {st.st_mtime_ns} ns, manifest {record.get('mtime_ns')})"
        )
    return None


def check_in_place_versions(rows: list[dict], settings: TileSettings) -> None:
    """After a county's reads: each tile it read in place (rows of county_read_paths) is still the
    version its preparation checked, or TilewiseError (and the tile is prepared again at the next run).
    One HEAD per file: a change during the reads, which GDAL's cached length and blocks would hide."""
    for row in rows:
        if not str(row["path"]).startswith("/vsi"):
            continue
        sign = signer(row.get("sign"), settings.signed_href_min_ttl_seconds)  # a new signature: reads take time
        path = gdal_vsi.gdal_path(sign(row["href"]))
        _check_version(row, read_manifest(row["manifest"]), path, "while the county read it")


def _check_version(row: dict, record: dict, path: str, when: str) -> None:
    """The remote file at `path` is the version the tile's manifest recorded; else the manifest is
    marked failed (its failed_attempts makes the next run prepare the tile again, and with it every
    county that reads it) and the county fails, naming the href, both versions and the fix."""
    try:
        recorded = record.get("remote_version")
        if recorded is None:
            raise TilewiseError(
                f"{row['href']}: its tile was prepared by a tilewise that did not record which version of the "
                f"remote file it checked; {RERUN}"
            )
        remote_version.check_same(row["href"], recorded, path, when, RERUN)
    except TilewiseError as exc:
        marked = {**record, "status": "failed", "error": masked(str(exc))}  # GDAL's HEAD names the signed href
        write_manifest(Path(row["manifest"]), {**marked, "failed_attempts": record.get("failed_attempts", 0) + 1})
        raise


def tile_size_bytes(path) -> int:
    """Bytes of a tile a county read: a converted COG here, or the remote file read in place."""
    name = str(path)
    if name.startswith("/vsi"):
        # pathlib folds the `//` of /vsicurl/https://…; GDAL reads both spellings
        return gdal_vsi.file_size(name)
    return Path(name).stat().st_size


def release(rows: list[dict], runs: str) -> tuple[list[str], list[str]]:
    """Delete each converted tile (`tif` of a row) every reader of which (`counties`) has succeeded;
    `runs` is the path of a county's outcome with `{county}`. Returns (reclaimed, kept) tile paths."""
    reclaimed, kept = [], []
    for row in rows:
        tif = Path(row["tif"])
        readers_ok = all(outcomes.succeeded(Path(runs.format(county=c))) for c in row["counties"].split())
        if readers_ok:
            try:
                tif.unlink()
                reclaimed.append(str(tif))
            except FileNotFoundError:  # in place, or another reader's job reclaimed it first
                pass
        elif tif.exists():
            kept.append(str(tif))
    return reclaimed, kept
