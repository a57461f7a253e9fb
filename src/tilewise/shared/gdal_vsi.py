"""GDAL's virtual file systems for files that live elsewhere: their GDAL names, sizes, and the bytes
GDAL fetched over the network.

rasterio opens `/vsicurl/` and `/vsis3/` names but has no Python call for a file's size, its HTTP
headers, GDAL's cache of it or GDAL's network counters, so those go to the GDAL library rasterio
loaded, through ctypes (C functions of GDAL's stable API: VSIFOpenL/VSIFSeekL/VSIFTellL,
VSIGetFileMetadata, VSICurlPartialClearCache, VSINetworkStatsReset/GetAsSerializedJSON).
"""

from __future__ import annotations

import ctypes
import json
import os
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import rasterio  # noqa: F401 (loads the GDAL library whose counters we read)

from tilewise.shared.errors import TilewiseError
from tilewise.shared.libgdal import declare, rasterio_libgdal

# GDAL reads these once, at its first network access: set before any remote file is opened.
os.environ.setdefault("CPL_VSIL_NETWORK_STATS_ENABLED", "YES")
# No directory listing and no sidecar probing (.aux.xml, .ovr, .msk) on remote files: each would be a
# request, and a signed href's sidecars do not exist anyway.
os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")

_SEEK_END = 2


def is_streamable_href(href: str) -> bool:
    """An href GDAL can read by ranges where it lives: http(s) or s3."""
    return urlsplit(href).scheme in ("http", "https", "s3")


def gdal_path(href: str) -> str:
    """The name GDAL opens `href` by: /vsicurl/ for http(s), /vsis3/ for s3://, a path as it is."""
    parts = urlsplit(href)
    if parts.scheme in ("http", "https"):
        return "/vsicurl/" + href
    if parts.scheme == "s3":
        return f"/vsis3/{parts.netloc}{parts.path}"
    return href


def configure_retries(attempts: int, backoff_seconds: float) -> None:
    """GDAL retries HTTP 429/5xx of window reads like our downloads do (config `download:`)."""
    os.environ["GDAL_HTTP_MAX_RETRY"] = str(max(0, attempts - 1))
    os.environ["GDAL_HTTP_RETRY_DELAY"] = str(max(backoff_seconds, 0.1))


@cache
def _gdal() -> ctypes.CDLL:
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    return declare(
        rasterio_libgdal(),
        (
            ("VSIFOpenL", vp, [cp, cp]),
            ("VSIFSeekL", ci, [vp, ctypes.c_uint64, ci]),
            ("VSIFTellL", ctypes.c_uint64, [vp]),
            ("VSIFCloseL", ci, [vp]),
            ("VSINetworkStatsGetAsSerializedJSON", vp, [vp]),
            ("VSIFree", None, [vp]),
            ("VSIGetFileMetadata", ctypes.POINTER(cp), [cp, cp, vp]),
            ("CSLDestroy", None, [ctypes.POINTER(cp)]),
            ("VSICurlPartialClearCache", None, [cp]),
        ),
    )


def file_size(path: str) -> int:
    """Bytes of a file GDAL can open (a local path, /vsicurl/, /vsis3/ …)."""
    if not path.startswith("/vsi"):
        return Path(path).stat().st_size
    lib = _gdal()
    handle = lib.VSIFOpenL(path.encode(), b"rb")
    if not handle:
        raise TilewiseError(f"{path}: cannot open it to read its size (missing, or access refused)")
    try:
        lib.VSIFSeekL(handle, 0, _SEEK_END)
        return int(lib.VSIFTellL(handle))
    finally:
        lib.VSIFCloseL(handle)


def headers(path: str) -> dict[str, str]:
    """The HTTP headers a remote file (/vsicurl/, /vsis3/ …) has now, names in lower case: one fresh
    HEAD request (GDAL asks the server each time, never its cache)."""
    lib = _gdal()
    found = lib.VSIGetFileMetadata(path.encode(), b"HEADERS", None)
    if not found:
        raise TilewiseError(f"{path}: cannot ask the server for its headers (missing, or access refused)")
    try:
        out, i = {}, 0
        while found[i]:
            name, _, value = found[i].decode("latin-1").partition("=")
            out[name.strip().lower()] = value.strip()
            i += 1
        return out
    finally:
        lib.CSLDestroy(found)


def forget(path: str) -> None:
    """Drop what GDAL cached of a remote file (its size, headers and blocks): the next read asks the
    server again."""
    _gdal().VSICurlPartialClearCache(path.encode())


def reset_network_bytes() -> None:
    _gdal().VSINetworkStatsReset()


def network_bytes() -> int:
    """Body bytes GDAL downloaded (all files, all virtual file systems) since the last reset."""
    lib = _gdal()
    pointer = lib.VSINetworkStatsGetAsSerializedJSON(None)
    if not pointer:
        return 0
    try:
        stats = json.loads(ctypes.string_at(pointer).decode())
    finally:
        lib.VSIFree(pointer)
    return sum(int(m.get("downloaded_bytes", 0)) for m in stats.get("methods", {}).values())
