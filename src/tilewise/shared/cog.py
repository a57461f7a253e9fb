"""COG creation options, one table per purpose, and the one fix-up every COG copy needs.

GDAL's COG driver takes these as creation options (`rasterio.shutil.copy(..., driver="COG", **options)`).
"""

from __future__ import annotations

# Source outputs: Mapterhorn's source_to_cog.py options — LERC with a 1 mm error bound, 512² blocks,
# no overviews (Mapterhorn's downstream stage builds its own pyramid).
MAPTERHORN_COG_OPTIONS = {
    "BLOCKSIZE": 512,
    "OVERVIEWS": "NONE",
    "SPARSE_OK": "YES",
    "BIGTIFF": "YES",
    "COMPRESS": "LERC",
    "MAX_Z_ERROR": 0.001,
}

# Converted biomass tiles: lossless (pixels are verified equal), 512² blocks for windowed reads.
TILE_CODECS = ("DEFLATE", "ZSTD", "LZW")


def tile_cog_options(codec: str, dtype: str) -> dict:
    """Lossless COG options for a converted biomass tile of `dtype` with `codec`."""
    if codec not in TILE_CODECS:
        raise ValueError(f"tile codec {codec!r}: use one of {', '.join(TILE_CODECS)}")
    options = {
        "BLOCKSIZE": 512,
        "COMPRESS": codec,
        "PREDICTOR": "FLOATING_POINT" if dtype.startswith("float") else "YES",
        "OVERVIEWS": "NONE",
        "BIGTIFF": "IF_SAFER",
    }
    if codec in ("DEFLATE", "ZSTD"):
        options["LEVEL"] = 6
    return options


def full_width_nbits(ds) -> dict:
    """NBITS at the full width of the data type when the source declares fewer bits.

    JPEG2000 (Sentinel-2 among others) declares NBITS=15 for uint16 bands; a COG copy would keep the
    15-bit packing, which LERC refuses and which some readers mishandle. The values are unchanged.
    """
    declared = any("NBITS" in ds.tags(b, ns="IMAGE_STRUCTURE") for b in ds.indexes)
    width = "".join(c for c in ds.dtypes[0] if c.isdigit())
    return {"NBITS": int(width)} if declared and width else {}
