"""Geometry reprojection, the one helper both pipelines use."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS, Transformer


def to_crs(geom, src: CRS | int | str, dst: CRS | int | str, densify: float | None = None):
    """Reproject shapely geometries (one or an array) from `src` to `dst`.

    `densify` (in source units) adds vertices first, so straight edges stay faithful after a curved
    projection."""
    if densify:
        geom = shapely.segmentize(geom, densify)
    t = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
