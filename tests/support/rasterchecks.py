"""Checks shared by the raster and workflow tests: a COG is Mapterhorn's, and equals its source."""

from __future__ import annotations

import math

import numpy as np
import rasterio
from rasterio.warp import transform_bounds
from rio_cogeo.cogeo import cog_validate


def assert_mapterhorn_cog(path) -> None:
    valid, errors, _ = cog_validate(str(path), strict=False)
    assert valid, errors
    assert open(path, "rb").read(4) in (b"II+\x00", b"MM\x00+"), "not BigTIFF"
    with rasterio.open(path) as ds:
        tags = ds.tags(ns="IMAGE_STRUCTURE")
        assert tags["COMPRESSION"] == "LERC" and tags["MAX_Z_ERROR"] == "0.001" and tags["LAYOUT"] == "COG"
        assert ds.block_shapes == [(512, 512)] * ds.count
        assert ds.overviews(1) == []


def assert_same_pixels(cog, source, window=None, nodata=None) -> None:
    """Valid pixels within 1 mm (LERC's bound; plus float32 rounding) and the same validity mask."""
    with rasterio.open(cog) as a, rasterio.open(source) as b:
        got = a.read(1, masked=True)
        want = b.read(1, window=window).astype("float64")
        nd = nodata if nodata is not None else b.nodata
    want_mask = np.zeros(want.shape, bool) if nd is None else (np.isnan(want) if math.isnan(nd) else want == nd)
    np.testing.assert_array_equal(np.ma.getmaskarray(got), want_mask)
    diff = np.abs(got.filled(0).astype("float64") - np.where(want_mask, 0, want))
    tolerance = 0.001 + np.abs(want) * np.finfo(np.float32).eps * 2
    assert np.all(diff <= tolerance), float(diff.max())


def expected_bounds_row(cog) -> tuple:
    """Mapterhorn's source_bounds.py row, right for a raster inside Web Mercator not crossing ±180°."""
    with rasterio.open(cog) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds)
        return (left, bottom, right, top, ds.width, ds.height)


def valid_area(cog) -> float:
    with rasterio.open(cog) as ds:
        return float((ds.dataset_mask() > 0).sum()) * abs(ds.transform.a * ds.transform.e)
