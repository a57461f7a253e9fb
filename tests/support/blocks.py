"""One read of the blocks some boxes touch, as a county's single group reads them."""

import numpy as np

from tilewise.biomass.blocks import BlockMosaic, read_groups


def read_touched_blocks(ds, band: int, boxes: np.ndarray, fill: float) -> BlockMosaic | None:
    """Read the blocks of `band` that the boxes (in the raster's CRS) touch; None if they touch none."""
    return next(read_groups(ds, band, boxes, [np.arange(len(boxes))], fill))
