"""Read only the internal blocks of a tiled raster that given boxes touch, each once, and count their bytes.

A COG stores its pixels in 512×512 compressed blocks; GDAL decodes a block only when a read
touches it. Reading the touched blocks one by one into a mosaic (untouched blocks stay `fill`)
reads exactly what the parcels need, and the TIFF block-size tags say how many compressed bytes
that was — the figure a range-reading client (/vsicurl/, /vsis3/) would fetch.

A county is read in groups of parcels (processing windows) and, with several processes, in parts;
a block on the edge of two groups or parts is touched by both. `read_groups` keeps such a block
decoded until its last group has it, and `Preloaded` holds the blocks several parts touch, read
once before the parts start: every block is read from its file once per county.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

Block = tuple[int, int]  # (block row, block column)


@dataclass
class BlockMosaic:
    array: np.ndarray  # (rows, cols) of the window; untouched blocks hold `fill`
    transform: Affine  # of the window
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax of the window
    bytes_read: int  # compressed bytes of the blocks read from the file for this mosaic
    bytes_per_box: np.ndarray  # each box's share of the bytes of the blocks it touches (split among all its readers)
    blocks_read: list[Block] = field(default_factory=list)  # the blocks read from the file for this mosaic


@dataclass
class Preloaded:
    """Decoded blocks read before a county's parts start, with the number of boxes in the whole county
    touching each (so each part gives every parcel its true share of their bytes)."""

    blocks: dict = field(default_factory=dict)  # (file name, band, block) -> (array, compressed bytes, boxes)

    def load(self, ds, band: int, touched: dict[Block, np.ndarray]) -> int:
        """Read the `touched` blocks (block -> indices of the county's boxes touching it); their bytes."""
        total = 0
        for block, members in touched.items():
            nbytes = block_bytes(ds, band, block[1], block[0])
            self.blocks[(ds.name, band, block)] = (_read_block(ds, band, block), nbytes, len(members))
            total += nbytes
        return total


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


def touched_blocks(ds, band: int, boxes: np.ndarray) -> dict[Block, np.ndarray]:
    """The blocks of `band` that the boxes (in the raster's CRS) touch, each with the indices of its boxes."""
    bh, bw = ds.block_shapes[band - 1]
    px = pixel_ranges(ds.transform, boxes, ds.width, ds.height)
    inside = np.flatnonzero((px[:, 2] > px[:, 0]) & (px[:, 3] > px[:, 1]))
    if not len(inside):
        return {}
    px = px[inside]
    br0, bc0 = px[:, 1] // bh, px[:, 0] // bw
    rows, cols = (px[:, 3] - 1) // bh - br0 + 1, (px[:, 2] - 1) // bw - bc0 + 1
    per_box = rows * cols  # blocks each box touches, enumerated row-major below
    box = np.repeat(np.arange(len(px)), per_box)
    k = np.arange(len(box)) - np.repeat(np.cumsum(per_box) - per_box, per_box)
    block_row, block_col = br0[box] + k // cols[box], bc0[box] + k % cols[box]
    key = block_row * (ds.width // bw + 2) + block_col
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    return {
        (int(block_row[order[s]]), int(block_col[order[s]])): inside[box[members]]
        for s, members in zip(starts, np.split(order, starts[1:]), strict=True)
    }


def _read_block(ds, band: int, block: Block) -> np.ndarray:
    bh, bw = ds.block_shapes[band - 1]
    row, col = block
    return ds.read(band, window=Window(col * bw, row * bh, min(bw, ds.width - col * bw), min(bh, ds.height - row * bh)))


def read_groups(
    ds, band: int, boxes: np.ndarray, groups: list[np.ndarray], fill: float, preloaded: Preloaded | None = None
) -> Iterator[BlockMosaic | None]:
    """For each group (indices into `boxes`), the mosaic of the blocks its boxes touch, or None if they
    touch none. Each block is read once: a block several groups touch is kept until the last of them,
    one in `preloaded` is not read at all. A box's share of a block's bytes is split among every box
    touching it (here and, for a preloaded block, in the whole county)."""
    per_group = [touched_blocks(ds, band, boxes[idx]) for idx in groups]
    uses_left = Counter(block for touched in per_group for block in touched)
    readers = Counter()  # boxes touching each block, over all groups
    for touched in per_group:
        readers.update({block: len(members) for block, members in touched.items()})
    held: dict[Block, tuple[np.ndarray, int]] = {}
    for idx, touched in zip(groups, per_group, strict=True):
        if not touched:
            yield None
            continue
        yield _mosaic(ds, band, len(idx), touched, fill, held, uses_left, readers, preloaded)


def _mosaic(ds, band, n_boxes, touched, fill, held, uses_left, readers, preloaded) -> BlockMosaic:
    bh, bw = ds.block_shapes[band - 1]
    rows = [b[0] for b in touched]
    cols = [b[1] for b in touched]
    r0, c0 = min(rows) * bh, min(cols) * bw
    r1, c1 = min((max(rows) + 1) * bh, ds.height), min((max(cols) + 1) * bw, ds.width)
    array = np.full((r1 - r0, c1 - c0), fill, dtype=ds.dtypes[band - 1])
    share = np.zeros(n_boxes)
    total, read = 0, []
    for block, members in touched.items():
        outside = preloaded.blocks.get((ds.name, band, block)) if preloaded else None
        if outside is not None:
            data, nbytes, county_readers = outside
        elif block in held:
            (data, nbytes), county_readers = held[block], readers[block]
        else:
            data, nbytes, county_readers = (
                _read_block(ds, band, block),
                block_bytes(ds, band, block[1], block[0]),
                readers[block],
            )
            total += nbytes
            read.append(block)
        uses_left[block] -= 1
        if uses_left[block]:
            held[block] = (data, nbytes)
        else:
            held.pop(block, None)
        top, left = block[0] * bh - r0, block[1] * bw - c0
        array[top : top + data.shape[0], left : left + data.shape[1]] = data
        share[members] += nbytes / county_readers
    window = Window(c0, r0, c1 - c0, r1 - r0)
    transform = ds.window_transform(window)
    return BlockMosaic(array, transform, rasterio.windows.bounds(window, ds.transform), total, share, read)
