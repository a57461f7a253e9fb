"""A lossy COG codec must not move a pixel across the nodata line.

LERC (Mapterhorn's codec, MAX_Z_ERROR 1 mm) stores each 8×8 micro-block as steps above the block's
minimum. A nodata value that is not its block's minimum (nodata 0 beside land below sea level, any
nodata inside the data's range) comes back up to 1 mm off, and is then an elevation; a valid value
within 1 mm of nodata may come back as exactly nodata, and is then a hole. Mapterhorn's own
conversion has the same defect. So after a lossy write the COG's valid pixels are compared with the
source's; where they differ, a LERC COG is written again lossless (MAX_Z_ERROR 0: the same codec,
larger, exact) and any other lossy codec fails the file.

Only blocks whose COG pixels lie within the codec's error of nodata can differ: the source is read
again for those strips only (for LERC; a codec without an error bound is compared everywhere).
"""

from __future__ import annotations

import math

import numpy as np
import rasterio
import rasterio.shutil

from tilewise.shared.errors import FileFailure
from tilewise.sources.raster_describe import extremes, strips, valid_pixels

_LOSSLESS = {"NONE", "LZW", "DEFLATE", "ZSTD", "LZMA", "PACKBITS"}


def error_bound(opts: dict, dtype: str) -> float:
    """How far the COG options may move a pixel's value: 0 when lossless, inf when unbounded."""
    codec = str(opts.get("COMPRESS", "LZW")).upper()
    if _packed(opts, dtype):
        return math.inf  # fewer bits than the type: float16 packing, clipped integers
    if codec in _LOSSLESS:
        return 0.0
    if codec.startswith("LERC"):
        error = float(opts.get("MAX_Z_ERROR", 0))
        if np.dtype(dtype).kind != "f" and error < 0.5:
            return 0.0  # LERC rounds integers exactly below half a unit
        return error
    return math.inf  # JPEG, WEBP: no bound per pixel


def _packed(opts: dict, dtype: str) -> bool:
    return opts.get("NBITS") is not None and int(opts["NBITS"]) < np.dtype(dtype).itemsize * 8


def moved_pixels(src, cog, nodata: float, bound: float) -> int:
    """How many pixels are valid in one of `src` and `cog` (same grid) and not in the other."""
    moved = 0
    # LERC's bound, with float32 rounding to spare, beyond the values GDAL's mask takes for nodata
    # (within ~4.8e-7 relative of it, raster_describe.nodata_pixels): those can cross its edge too
    slack = 2 * bound + 8 * float(np.finfo(np.float32).eps) * abs(nodata)
    for strip in strips(cog, max_pixels=cog.width * cog.block_shapes[0][0]):  # a row of COG blocks at a time
        data = cog.read(1, window=strip)
        if math.isfinite(bound):
            low, high = extremes(data) if data.size else (np.inf, -np.inf)
            if low > nodata + slack or high < nodata - slack or not (np.abs(data - nodata) <= slack).any():
                continue  # every pixel here is too far from nodata to be it, have been it or become it
        valid = valid_pixels(cog, strip, nodata, data)
        moved += int(np.count_nonzero(valid_pixels(src, strip, nodata) != valid))
    return moved


def changed_pixels(src, cog, nodata: float | None) -> tuple[int, int, float]:
    """Comparing every pixel of `src` and `cog` (same grid): how many are valid in one and not the other,
    how many valid in both hold another value, and the largest such difference."""
    moved, changed, worst = 0, 0, 0.0
    for strip in strips(cog, max_pixels=cog.width * cog.block_shapes[0][0]):
        want, got = src.read(1, window=strip), cog.read(1, window=strip)
        valid_src, valid_cog = valid_pixels(src, strip, nodata, want), valid_pixels(cog, strip, nodata, got)
        moved += int(np.count_nonzero(valid_src != valid_cog))
        both = valid_src & valid_cog
        diff = np.abs(got[both].astype("float64") - want[both].astype("float64"))
        if diff.size:
            changed += int(np.count_nonzero(diff))
            worst = max(worst, float(diff.max()))
    return moved, changed, worst


def copy_keeping_nodata(src, nodata: float | None, dst, opts: dict, name: str) -> tuple[str | None, object]:
    """GDAL's COG copy of `src` at `dst` with `opts`, its nodata pixels (and only they) still nodata.
    Returns a warning when it had to be written lossless, and the COG open if it was read to check
    it (the caller closes it), else None."""
    rasterio.shutil.copy(src, dst, driver="COG", **opts)
    bound = error_bound(opts, src.dtypes[0])
    if math.isinf(bound):  # JPEG, WEBP, fewer NBITS: no bound, so every pixel is compared, nodata or not
        with rasterio.open(dst) as cog:
            moved, changed, worst = changed_pixels(src, cog, nodata)
        if moved or changed:
            raise FileFailure(
                "convert",
                f"{name}: with the recipe's cog options (COMPRESS {str(opts.get('COMPRESS')).upper()}, NBITS "
                f"{opts.get('NBITS', 'full')}) {changed:,} valid pixels change value (by up to {worst:g}) and "
                f"{moved:,} cross the nodata value (valid pixels stored as nodata or nodata stored as values): "
                "these options have no error bound; use a lossless codec, or LERC with MAX_Z_ERROR, in `cog:` of "
                "source.yaml",
            )
        return None, None
    if not bound or nodata is None or math.isnan(nodata):  # NaN: LERC keeps it in its own mask
        return None, None
    cog = rasterio.open(dst)
    try:
        moved = moved_pixels(src, cog, nodata, bound)
    except BaseException:
        cog.close()
        raise
    if not moved:
        return None, cog
    cog.close()
    why = (
        f"{moved:,} pixels would cross the nodata value {nodata:g} "
        "(valid pixels stored as nodata or nodata stored as values)"
    )
    codec = str(opts.get("COMPRESS")).upper()
    if not codec.startswith("LERC") or _packed(opts, src.dtypes[0]):
        raise FileFailure(
            "convert",
            f"{name}: with the recipe's cog options (COMPRESS {codec}, NBITS {opts.get('NBITS', 'full')}) {why}; "
            "use a lossless codec in `cog:` of source.yaml",
        )
    rasterio.shutil.copy(src, dst, driver="COG", **{**opts, "MAX_Z_ERROR": 0})
    warning = (
        f"LERC at MAX_Z_ERROR {opts.get('MAX_Z_ERROR')}: {why}, because nodata lies among the data's values; "
        "written lossless (MAX_Z_ERROR 0) instead: the same values, a larger file"
    )
    return warning, None
