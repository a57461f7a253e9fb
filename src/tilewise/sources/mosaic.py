"""Which COGs of a source Mapterhorn's downstream stage mosaics together, and which of them it would drop.

Its aggregation_covering puts a source's files into groups: the files of one maxzoom (the first zoom
finer than both their horizontal and vertical resolution, at least 12) whose bounds, buffered by
300 m, reach one aggregation tile (at zoom maxzoom − 6, between 6 and 12; other sources only make it
finer). aggregation_reproject mosaics each group with `gdalbuildvrt`, which keeps only the files that
match the group's first (by file name) in CRS, band count, band data types, colour interpretation,
scale and offset: it skips every other file with a warning no one reads, and that file's area is
missing from the tiles. Such files must not ship in one source (`check`).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import rasterio
from pyproj import CRS as PyprojCRS
from rasterio.crs import CRS

from tilewise.shared.errors import TilewiseError
from tilewise.shared.web_mercator import X_MAX_3857

MACROTILE_Z = 12  # Mapterhorn's utils.macrotile_z
OVERVIEWS = 6  # utils.num_overviews: an aggregation tile spans this many zooms below its maxzoom
BUFFER_M = 2 * 150  # aggregation_covering's buffer: 2 × utils.macrotile_buffer_3857


def key(ds) -> dict:
    """What gdalbuildvrt compares, of an open raster: its CRS (a digest of its WKT) and per band the
    data type, colour interpretation, scale and offset."""
    wkt = ds.crs.to_wkt() if ds.crs else ""
    bands = [[ds.dtypes[i], ds.colorinterp[i].name, ds.scales[i], ds.offsets[i]] for i in range(ds.count)]
    return {"crs": hashlib.md5(wkt.encode()).hexdigest(), "bands": bands}


def maxzoom(row: dict) -> int:
    """aggregation_covering's maxzoom of a bounds.csv row (its resolution formula, also across ±180°)."""
    left, bottom, right, top = (float(row[k]) for k in ("left", "bottom", "right", "top"))
    across = (right - left) if left < right else (left - right)
    horizontal, vertical = across / int(row["width"]), (top - bottom) / int(row["height"])
    for z in range(33):
        if 2 * X_MAX_3857 / 512 / 2**z < min(horizontal, vertical):
            return max(z, MACROTILE_Z)
    return MACROTILE_Z  # pixels under 0.02 mm (no real raster): aggregation_covering raises on such a row


def tiles(row: dict, z: int) -> set[tuple[int, int]]:
    """The tiles of zoom `z` the row's buffered bounds overlap (both parts of a row across ±180°)."""
    left, bottom, right, top = (float(row[k]) for k in ("left", "bottom", "right", "top"))
    parts = [(left, right)] if left < right else [(left, X_MAX_3857), (-X_MAX_3857, right)]
    size = 2 * X_MAX_3857 / 2**z
    last = 2**z - 1

    def span(lo: float, hi: float) -> range:  # tiles whose open interval meets (lo, hi), from the low edge
        first = min(max(math.floor((lo + X_MAX_3857) / size), 0), last)
        end = min(max(math.ceil((hi + X_MAX_3857) / size) - 1, 0), last)
        return range(first, end + 1)

    rows = span(-(top + BUFFER_M), -(bottom - BUFFER_M))  # tile rows count from the top
    return {(x, y) for lo, hi in parts for x in span(lo - BUFFER_M, hi + BUFFER_M) for y in rows}


def groups(outputs: list[dict]) -> list[list[int]]:
    """Indices of the outputs that may form one of gdalbuildvrt's mosaics, each sorted by file name."""
    by_tile: dict[tuple, list[int]] = defaultdict(list)
    for i, out in enumerate(outputs):
        z = maxzoom(out)
        for tile in tiles(out, min(MACROTILE_Z, z - OVERVIEWS)):
            by_tile[(z, tile)].append(i)
    found = {tuple(sorted(g, key=lambda i: outputs[i]["filename"])) for g in by_tile.values() if len(g) > 1}
    return [list(g) for g in sorted(found)]


def check(outputs: list[dict], paths: list[Path], source: str) -> None:
    """Refuse a source two of whose COGs Mapterhorn's downstream stage would mosaic although they differ in
    what gdalbuildvrt compares. `paths`: where each output's COG is now (read for ledgers without a key)."""
    keys: list[dict | None] = [out.get("mosaic") for out in outputs]
    same_crs: dict[tuple[str, str], str] = {}  # '' when alike, else what differs

    def key_of(i: int) -> dict:
        if keys[i] is None:
            with rasterio.open(paths[i]) as ds:
                keys[i] = key(ds)
        return keys[i]

    def other_crs(i: int, j: int) -> str:  # gdalbuildvrt compares CRSs as OSRIsSame does, not their WKT
        pair = (key_of(i)["crs"], key_of(j)["crs"])
        if pair not in same_crs:
            with rasterio.open(paths[i]) as a, rasterio.open(paths[j]) as b:
                same_crs[pair] = "" if a.crs == b.crs else f"CRS {_crs_name(b.crs)}, not {_crs_name(a.crs)}"
        return same_crs[pair]

    clashes: dict[tuple[int, int], str] = {}
    for group in groups(outputs):
        first = group[0]
        for i in group[1:]:
            if (first, i) in clashes:
                continue
            if why := _differs(key_of(first), key_of(i), lambda f=first, j=i: other_crs(f, j)):
                clashes[(first, i)] = why
    if not clashes:
        return
    names = [(outputs[i]["filename"], outputs[j]["filename"], why) for (i, j), why in clashes.items()]
    listing = [f"  {other} differs from {first}: {why}" for first, other, why in names]
    more = f"\n  … and {len(listing) - 20:,} more" if len(listing) > 20 else ""
    raise TilewiseError(
        f"source {source}: {len(clashes):,} COG(s) differ from a COG that Mapterhorn's downstream stage mosaics "
        "them with (the same resolution zoom, one aggregation tile):\n"
        + "\n".join(listing[:20])
        + more
        + "\nIts gdalbuildvrt (aggregation_reproject) keeps only the files like the first of a mosaic and skips the "
        "others without an error: their area would be missing from its tiles. Give the source's files one CRS, "
        "band count and data type before listing them (gdalwarp -t_srs, gdal_translate -b 1 -ot Float32), or "
        "list the files that differ in a catalog entry of their own. Nothing in the store was changed."
    )


def _differs(a: dict, b: dict, other_crs) -> str:
    """What gdalbuildvrt would find different between two keys ('' when nothing)."""
    if len(a["bands"]) != len(b["bands"]):
        return f"{len(b['bands'])} band(s), not {len(a['bands'])}"
    for n, (x, y) in enumerate(zip(a["bands"], b["bands"], strict=True), 1):
        for what, u, v in zip(("data type", "colour interpretation", "scale", "offset"), x, y, strict=True):
            if u != v:
                return f"band {n} {what} {v}, not {u}"
    return other_crs() if a["crs"] != b["crs"] else ""


def _crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "none"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else repr(PyprojCRS.from_wkt(crs.to_wkt()).name)
