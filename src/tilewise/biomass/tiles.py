"""Tile preprocessing: fetch one needed tile, write it as an internally tiled lossless COG, verify it.

The original is only read (a remote one is downloaded to a scratch copy that is deleted after). The
COG has 512×512 blocks so a parcel read decodes only the blocks it touches; compression stays
(lossless, codec configurable) because block-wise reads work on compressed COGs too.

A tile of a published grid that does not exist (ESA publishes no WorldCover tile over open water) is
*absent*, not a failure: only when the server answers 404 or 410 for it while it serves another
tile of the same product and state. Its manifest says `absent`, its tile file is empty, and the
counties that read it have no data of that product there. Any other error fails the tile (and the
counties that read it); so does a missing local file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from tilewise.biomass import state_index
from tilewise.shared.cog import full_width_nbits, tile_cog_options
from tilewise.shared.download import DownloadSettings, NotFound, fetch, head, is_remote, make_pool
from tilewise.shared.errors import FileFailure, TilewiseError

log = logging.getLogger(__name__)
ROWS_PER_CHECK = 1024
MAX_SIBLINGS_ASKED = 50  # other tiles asked (HEAD) before a 404 is called a wrong template, not an absent tile
GRIDS_WITH_HOLES = ("worldcover",)  # products published only where there is land: a 404 may be an absent tile


def verify_same_pixels(original, converted) -> None:
    """Decoded pixels, georeferencing and nodata of the COG equal the original's, or TilewiseError."""
    with rasterio.open(original) as a, rasterio.open(converted) as b:
        for what, x, y in (
            ("size", (a.width, a.height, a.count), (b.width, b.height, b.count)),
            ("CRS", a.crs, b.crs),
            ("transform", a.transform, b.transform),
            ("nodata", a.nodata, b.nodata),
            ("data type", a.dtypes, b.dtypes),
        ):
            if x != y and not (
                what == "nodata" and x is not None and y is not None and math.isnan(x) and math.isnan(y)
            ):
                raise TilewiseError(f"{converted}: {what} differs from the original {original}: {y} vs {x}")
        for row in range(0, a.height, ROWS_PER_CHECK):
            win = Window(0, row, a.width, min(ROWS_PER_CHECK, a.height - row))
            if not np.array_equal(a.read(window=win), b.read(window=win), equal_nan=a.dtypes[0].startswith("float")):
                raise TilewiseError(f"{converted}: pixels in rows {row}–{row + win.height} differ from {original}")


def convert_tile(
    href: str,
    dst: Path,
    manifest: Path,
    codec: str,
    download: DownloadSettings,
    tiles_dir: Path,
    siblings: tuple[str, ...] = (),
) -> dict:
    """Convert and verify one tile; `tiles_dir` holds the state's converted tiles (for their peak bytes).
    `siblings` are the other hrefs of the same published grid: one of them existing makes a 404 absent."""
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    scratch = dst.with_name(dst.name + ".download")
    source, remote = href, None
    if is_remote(href):
        pool = make_pool(download, maxsize=1)
        try:
            remote = fetch(href, scratch, None, download, pool)
        except NotFound as missing:
            if not siblings:  # a grid without holes, or the only tile of its product: a plain failure
                raise
            present = _published_sibling(siblings, download, pool)
            if present is None:
                raise TilewiseError(
                    f"{missing}, and no other tile of it ({len(siblings)} asked) exists on that server: "
                    "check the href template in the config"
                ) from missing
            return _absent(href, dst, manifest, f"{missing}, while {present} exists", tiles_dir, t0)
        source = str(scratch)
    elif not Path(href).exists():
        raise TilewiseError(f"{href}: the tile does not exist; the counties that read it fail until it is there")
    tmp = dst.with_name(dst.name + ".part.tif")
    try:
        with rasterio.open(source) as src:
            opts = {**tile_cog_options(codec, src.dtypes[0]), **full_width_nbits(src)}
            rasterio.shutil.copy(src, tmp, driver="COG", **opts)
        verify_same_pixels(source, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)
    return _record(
        manifest,
        tiles_dir,
        t0,
        href=href,
        bytes=dst.stat().st_size,
        original_bytes=remote.size if remote else Path(href).stat().st_size,
        remote=asdict(remote) if remote else None,  # validators and sha256 of the original, for a refresh
        codec=codec,
        verified_pixels_equal=True,
    )


def _record(manifest: Path, tiles_dir: Path, t0: float, **fields) -> dict:
    record = {
        **fields,
        "seconds": round(time.perf_counter() - t0, 3),
        # converted tiles of the state on disk right after this one was written: their peak is the max of these
        "state_tile_bytes_after": sum(p.stat().st_size for p in tiles_dir.rglob("*.tif")),
    }
    write_manifest(manifest, record)
    return record


def siblings(index_dir: Path, product: str, href: str) -> tuple[str, ...]:
    """The other hrefs of `product` in the state's tile index, when its grid has holes (else none)."""
    if product not in GRIDS_WITH_HOLES:
        return ()
    rows = state_index.read_tiles(index_dir)
    return tuple(t["href"] for t in rows if t["product"] == product and t["href"] != href)


def _published_sibling(siblings: tuple[str, ...], download: DownloadSettings, pool) -> str | None:
    """The first of `siblings` the server has (HEAD), or None."""
    for href in [s for s in siblings if is_remote(s)][:MAX_SIBLINGS_ASKED]:
        try:
            head(href, download, pool)
            return href
        except FileFailure:
            continue
    return None


def _absent(href: str, dst: Path, manifest: Path, reason: str, tiles_dir: Path, t0: float) -> dict:
    """Record a tile that is not published: an empty tile file (the rule's output) and its manifest."""
    dst.write_bytes(b"")
    return _record(
        manifest, tiles_dir, t0, href=href, absent=True, reason=reason, bytes=0, original_bytes=None, remote=None
    )


def present(rows: list[dict]) -> list[dict]:
    """The rows of a county's tile table (with `path` and `manifest`) whose tile exists. An absent one
    is logged: the county has no data of that product there (e.g. no WorldCover valid area)."""
    kept = []
    for row in rows:
        record = read_manifest(Path(row["manifest"]))
        if record.get("absent"):
            log.warning(
                "%s tile %s is absent (%s): no %s data there",
                row["product"],
                row["key"],
                record["reason"],
                row["product"],
            )
        else:
            kept.append(row)
    return kept


def write_manifest(path: Path, record: dict) -> None:
    """The tile manifest ({key}.json beside the tile): this module writes and reads it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict:
    return json.loads(Path(path).read_text())
