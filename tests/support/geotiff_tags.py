"""A baseline float32 GeoTIFF written tag by tag: geotags GDAL never writes together (a ModelTiepoint with a
ModelPixelScale beside a ModelTransformation), little- or big-endian, classic or BigTIFF."""

from __future__ import annotations

import struct

import numpy as np

DOUBLE, SHORT, LONG, LONG8 = 12, 3, 4, 16
_FORMAT = {SHORT: "H", LONG: "I", DOUBLE: "d", LONG8: "Q"}
PIXEL_SCALE, TIEPOINT, TRANSFORMATION, GEOKEYS = 33550, 33922, 34264, 34735


def geokeys(epsg: int) -> tuple[int, list]:
    """A GeoKeyDirectory of the projected CRS `epsg`, pixels as areas."""
    keys = [(1024, 0, 1, 1), (1025, 0, 1, 1), (3072, 0, 1, epsg)]
    return SHORT, [1, 1, 0, len(keys)] + [v for k in keys for v in k]


def write_geotiff(path, data: np.ndarray, tags: dict[int, tuple[int, list]], order="<", big=False) -> None:
    """`data` (float32, one strip) with the baseline tags and `tags` (tag → (type, values))."""
    h, w = data.shape
    pixels = data.astype(order + "f4").tobytes()
    offset_type = LONG8 if big else LONG
    base = {256: (LONG, [w]), 257: (LONG, [h]), 258: (SHORT, [32]), 259: (SHORT, [1]), 262: (SHORT, [1])}
    base |= {273: (offset_type, [0]), 277: (SHORT, [1]), 278: (LONG, [h]), 279: (offset_type, [len(pixels)])}
    base |= {339: (SHORT, [3])}
    entries = sorted({**base, **tags}.items())
    inline, entry = (8, "HHQ") if big else (4, "HHI")  # a value of up to `inline` bytes sits in its entry
    head = 16 if big else 8
    # header, entry count, entries, next IFD's offset; then the values that do not fit, then the pixels
    extra_at = head + (8 if big else 2) + (20 if big else 12) * len(entries) + (8 if big else 4)
    extra, values = b"", []
    for _tag, (kind, vals) in entries:
        raw = struct.pack(order + _FORMAT[kind] * len(vals), *vals)
        if len(raw) <= inline:
            values.append(raw.ljust(inline, b"\0"))
        else:
            values.append(struct.pack(order + ("Q" if big else "I"), extra_at + len(extra)))
            extra += raw
    pixel_at = extra_at + len(extra)
    out = (b"II" if order == "<" else b"MM") + struct.pack(order + "H", 43 if big else 42)
    out += struct.pack(order + "HHQ", 8, 0, head) if big else struct.pack(order + "I", head)
    out += struct.pack(order + ("Q" if big else "H"), len(entries))
    for (tag, (kind, vals)), value in zip(entries, values, strict=True):
        if tag == 273:
            value = struct.pack(order + _FORMAT[offset_type], pixel_at).ljust(inline, b"\0")
        out += struct.pack(order + entry, tag, kind, len(vals)) + value
    out += bytes(8 if big else 4) + extra + pixels
    with open(path, "wb") as f:
        f.write(out)
