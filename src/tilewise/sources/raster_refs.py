"""A raster of a download may read only files of that download.

A VRT names its sources (any path, `/vsicurl/` URL or GDAL connection string), and a few GDAL
formats are descriptions of remote services (WMS, WMTS, WCS, STAC, …): opening them would read
files of the machine or fetch URLs, past every check the unpacker makes on member names. So, before
GDAL opens anything of a download, every VRT's sources are read from its XML and must be files
inside the unpacked folder, and an XML or JSON file GDAL identifies as a remote service is refused;
after opening, GDAL's own file list of each raster must lie inside the folder too (formats that
reference other files in ways not checked before).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tilewise.shared.errors import FileFailure
from tilewise.sources import raster_unread

_HEAD_BYTES = 1024  # what GDAL itself looks at to identify a file
_VRT_MARKS = (b"<VRTDataset", b"<VRTProcessedDataset")
_SOURCE_TAGS = {"sourcefilename", "sourcedataset"}  # GDAL matches XML names without case
# drivers whose datasets are services or catalogues elsewhere, never data in the file itself
_REMOTE_DRIVERS = {"WMS", "WMTS", "WCS", "EEDA", "EEDAI", "DAAS", "PLMOSAIC", "OGCAPI", "STACTA", "STACIT", "NGW"}


def _refusal(root: Path, raster: Path, what: str) -> FileFailure:
    rel = raster.relative_to(root)
    return FileFailure(
        "convert",
        f"{root.name}: {rel} {what}; refused: a raster may read only files of its own download. Ask the producer "
        f"for a fixed archive, or drop it with exclude: [{raster.name!r}] in the recipe (source.yaml)",
    )


def check_tree(root: Path) -> None:
    """`check_before_open` for every file under `root`, whatever its name: a VRT may read another VRT
    named `inner.xml`, which is never opened as a raster of its own."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            check_before_open(root, path)


def check_before_open(root: Path, raster: Path) -> None:
    """Refuse `raster` (a file under the unpacked folder `root`) if opening it would read elsewhere."""
    with open(raster, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if any(mark in head for mark in _VRT_MARKS):
        _check_vrt_sources(root, raster)
    elif head.lstrip()[:1] in (b"<", b"{"):
        driver = raster_unread.raster_driver(raster)
        if driver and driver.upper() in _REMOTE_DRIVERS:
            raise _refusal(root, raster, f"is a {driver} description of data elsewhere (a service or catalogue)")


def _check_vrt_sources(root: Path, vrt: Path) -> None:
    try:
        tree = ET.parse(vrt)
    except ET.ParseError as exc:
        raise _refusal(root, vrt, f"is a VRT whose XML cannot be read to check its sources ({exc})") from None
    for node in tree.iter():
        if not isinstance(node.tag, str) or node.tag.lower() not in _SOURCE_TAGS:
            continue
        text = (node.text or "").strip()
        relative = {k.lower(): v for k, v in node.attrib.items()}.get("relativetovrt", "0").strip() == "1"
        # as GDAL reads it: relative to the VRT's folder, else as given (a path, URL or connection string)
        source = vrt.resolve().parent / text if relative and not text.startswith("/") else Path(text)
        if not (text and source.is_absolute() and _inside(root, source) and source.exists()):
            raise _refusal(root, vrt, f"reads {text!r}, which is not a file of the download")


def check_file_list(root: Path, raster: Path, files: list[str]) -> None:
    """After opening: every file GDAL says the raster reads must lie inside `root`."""
    for name in files:
        if not _inside(root, Path(name)):
            raise _refusal(root, raster, f"reads {name!r}, which lies outside the download")


def _inside(root: Path, path: Path) -> bool:
    return not str(path).startswith("/vsi") and path.resolve().is_relative_to(root.resolve())
