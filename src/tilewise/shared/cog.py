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


def cog_option_problems(options: dict) -> list[str]:
    """What GDAL's COG driver would refuse or ignore in `options`, checked against the driver's own
    creation option list (names, and values of each option's type), without writing anything.

    GDAL itself only warns about an unknown option or value and goes on (COMPRESS=NOSUCHCODEC gives
    an uncompressed COG), and a bad integer can even abort the process, so the options are checked
    here before any file is converted. rasterio passes values upper-cased, as compared here.
    """
    known = _cog_creation_options()
    problems = []
    for key, value in options.items():
        spec = known.get(str(key).upper())
        if spec is None:
            problems.append(f"{key}: not a creation option of GDAL's COG driver (it has {', '.join(sorted(known))})")
            continue
        why = _value_problem(spec, str(value).upper())
        if why:
            problems.append(f"{key}: {value!r} {why}")
    return problems


_BOOLEAN = ("YES", "NO", "TRUE", "FALSE", "ON", "OFF", "1", "0")


def _value_problem(spec, text: str) -> str | None:
    kind = spec.get("type", "string")
    if kind == "string-select":
        allowed = {v.text.upper() for v in spec.findall("Value") if v.text}
        allowed |= {v.get("alias").upper() for v in spec.findall("Value") if v.get("alias")}
        return None if text in allowed else f"is not one of {', '.join(v.text for v in spec.findall('Value'))}"
    if kind == "boolean":
        return None if text in _BOOLEAN else "is not a boolean (YES or NO)"
    if kind in ("int", "integer", "float"):
        try:
            number = int(text) if kind != "float" else float(text)
        except ValueError:
            return f"is not {'an integer' if kind != 'float' else 'a number'}"
        if spec.get("min") is not None and number < float(spec.get("min")):
            return f"is below the minimum {spec.get('min')}"
        if spec.get("max") is not None and number > float(spec.get("max")):
            return f"is above the maximum {spec.get('max')}"
    return None


def _cog_creation_options() -> dict:
    """Option name (and alias) → its <Option> element, from the COG driver of the GDAL rasterio runs."""
    import xml.etree.ElementTree as ET

    text = _driver_metadata_item("COG", "DMD_CREATIONOPTIONLIST")
    options = {}
    for option in ET.fromstring(text).iter("Option"):
        for attr in ("name", "alias", "deprecated_alias"):
            if option.get(attr):
                options[option.get(attr).upper()] = option
    return options


def _driver_metadata_item(driver: str, item: str) -> str:
    """A GDAL driver's metadata item through GDAL's C API: rasterio has no Python call for it, so this
    asks the very libgdal rasterio loaded (GDALGetDriverByName, GDALGetMetadataItem)."""
    import ctypes

    import rasterio

    from tilewise.shared.libgdal import declare, rasterio_libgdal

    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    lib = declare(rasterio_libgdal(), (("GDALGetDriverByName", vp, [cp]), ("GDALGetMetadataItem", cp, [vp, cp, cp])))
    with rasterio.Env():  # registers the drivers
        handle = lib.GDALGetDriverByName(driver.encode())
        value = lib.GDALGetMetadataItem(handle, item.encode(), None) if handle else None
    if not value:
        raise RuntimeError(f"GDAL {rasterio.__gdal_version__} has no {driver} driver or no {item}")
    return value.decode()
