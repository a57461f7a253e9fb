"""Write generated rasters (the demos, the tests and the benchmarks make their inputs with it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


def write_band(path: Path, data: np.ndarray, crs, transform, nodata=None, **creation) -> Path:
    """Write a one-band GeoTIFF (deflate-compressed; `creation` adds GDAL creation options)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
    )
    with rasterio.open(path, "w", **{**profile, **creation}) as ds:
        ds.write(data, 1)
    return path
