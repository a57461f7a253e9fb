"""Read only the internal blocks of a tiled raster that given boxes touch, and count their bytes.

A COG stores its pixels in 512×512 compressed blocks; GDAL decodes a block only when a read
touches it. Reading the touched blocks one by one into a mosaic (untouched blocks stay `fill`)
reads exactly what the parcels need, and the TIFF block-size tags say how many compressed bytes
that was — the figure a range-reading client (/vsicurl/, /vsis3/) would fetch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window


@dataclass
class BlockMosaic:
    array: np.ndarray  # (rows, cols) of the window; untouched blocks hold `fill`
    transform: Affine  # of the window
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax of the window
    bytes_read: int  # compressed bytes of the blocks read
    bytes_per_box: np.ndarray  # each box's share of those bytes (a block's bytes split among its boxes)


def pixel_ranges(transform: Affine, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(n, 4) int array of col0, row0, col1, row1 (exclusive) covering each (xmin, ymin, xmax, ymax) box."""
    inv = ~transform
    c0, r0 = inv * (boxes[:, 0], boxes[:, 3])
    c1, r1 = inv * (boxes[:, 2], boxes[:, 1])
    lo_c, hi_c = np.minimum(c0, c1), np.maximum(c0, c1)
    lo_r, hi_r = np.minimum(r0, r1), np.maximum(r0, r1)
    out = np.column_stack([np.floor(lo_c), np.floor(lo_r), np.ceil(hi_c), np.ceil(hi_r)]).astype(np.int64)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def block_bytes(ds, band: int, col: int, row: int) -> int:
    size = ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
    return int(size) if size else 0  # sparse (empty) blocks are not stored at all


def read_touched_blocks(ds, band: int, boxes: np.ndarray, fill: float, dtype=None) -> BlockMosaic | None:
    """Read the blocks of `band` that the boxes (in the raster's CRS) touch; None if they touch none."""
    bh, bw = ds.block_shapes[band - 1]
    px = pixel_ranges(ds.transform, boxes, ds.width, ds.height)
    inside = (px[:, 2] > px[:, 0]) & (px[:, 3] > px[:, 1])
    if not inside.any():
        return None
    # block index ranges per box
    b = np.column_stack([px[:, 0] // bw, px[:, 1] // bh, (px[:, 2] - 1) // bw, (px[:, 3] - 1) // bh])
    blocks: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(inside):
        bc0, br0, bc1, br1 = b[i]
        for br in range(br0, br1 + 1):
            for bc in range(bc0, bc1 + 1):
                blocks.setdefault((br, bc), []).append(i)
    rows = [k[0] for k in blocks]
    cols = [k[1] for k in blocks]
    r0, c0 = min(rows) * bh, min(cols) * bw
    r1, c1 = min((max(rows) + 1) * bh, ds.height), min((max(cols) + 1) * bw, ds.width)
    array = np.full((r1 - r0, c1 - c0), fill, dtype=dtype or ds.dtypes[band - 1])
    share = np.zeros(len(boxes))
    total = 0
    for (br, bc), members in blocks.items():
        win = Window(bc * bw, br * bh, min(bw, ds.width - bc * bw), min(bh, ds.height - br * bh))
        data = ds.read(band, window=win)
        array[win.row_off - r0 : win.row_off - r0 + win.height, win.col_off - c0 : win.col_off - c0 + win.width] = data
        nbytes = block_bytes(ds, band, bc, br)
        total += nbytes
        share[members] += nbytes / len(members)
    window = Window(c0, r0, c1 - c0, r1 - r0)
    transform = ds.window_transform(window)
    return BlockMosaic(array, transform, rasterio.windows.bounds(window, ds.transform), total, share)
