"""Tile preprocessing: fetch one needed tile, write it as an internally tiled lossless COG, verify it.

The original is only read (a remote one is downloaded to a scratch copy that is deleted after). The
COG has 512×512 blocks so a parcel read decodes only the blocks it touches; compression stays
(lossless, codec configurable) because block-wise reads work on compressed COGs too.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from tilewise.shared.cog import full_width_nbits, tile_cog_options
from tilewise.shared.download import DownloadSettings, fetch, is_remote, make_pool
from tilewise.shared.errors import TilewiseError

ROWS_PER_CHECK = 1024


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


def convert_tile(href: str, dst: Path, manifest: Path, codec: str, download: DownloadSettings, tiles_dir: Path) -> dict:
    """Convert and verify one tile; `tiles_dir` holds the state's converted tiles (for their peak bytes)."""
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    scratch = dst.with_name(dst.name + ".download")
    source, remote = href, None
    if is_remote(href):
        remote = fetch(href, scratch, None, download, make_pool(download, maxsize=1))
        source = str(scratch)
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
    record = {
        "href": href,
        "bytes": dst.stat().st_size,
        "original_bytes": remote.size if remote else Path(href).stat().st_size,
        "remote": asdict(remote) if remote else None,  # validators and sha256 of the original, for a refresh
        "codec": codec,
        "verified_pixels_equal": True,
        "seconds": round(time.perf_counter() - t0, 3),
        # converted tiles of the state on disk right after this one was written: their peak is the max of these
        "state_tile_bytes_after": sum(p.stat().st_size for p in tiles_dir.rglob("*.tif")),
    }
    write_manifest(manifest, record)
    return record


def write_manifest(path: Path, record: dict) -> None:
    """The tile manifest ({key}.json beside the tile): this module writes and reads it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict:
    return json.loads(Path(path).read_text())
