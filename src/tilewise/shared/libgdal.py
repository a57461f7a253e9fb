"""The GDAL library rasterio loaded, for the few C calls rasterio has no Python API for (a driver's
creation option list, a remote file's size, GDAL's network counters).

A process may hold several libgdal builds: pyogrio's wheel (loaded by geopandas) bundles its own, with
other drivers and options and its own counters. So the first libgdal in the process is not
necessarily rasterio's: rasterio's bundled one (wheels), else a mapped one that is not another
wheel's (a source build), else the system's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from pathlib import Path

import rasterio

from tilewise.shared.errors import TilewiseError

_OTHER_WHEELS = ("pyogrio", "fiona", "osgeo")


@cache
def rasterio_libgdal() -> ctypes.CDLL:
    return ctypes.CDLL(_path())


def declare(lib: ctypes.CDLL, signatures) -> ctypes.CDLL:
    """Give functions of `lib` their C signatures, each `(name, result type, argument types)`:
    ctypes would otherwise pass and return C ints, which truncates pointers."""
    for name, restype, argtypes in signatures:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def _path() -> str:
    bundled = sorted((Path(rasterio.__file__).parent.parent / "rasterio.libs").glob("libgdal*"))
    if bundled:
        return str(bundled[0])
    try:
        mapped = sorted(
            {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "/libgdal" in line}
        )
    except OSError:  # not Linux
        mapped = []
    ours = [m for m in mapped if not any(w in m for w in _OTHER_WHEELS)]
    found = ours[0] if ours else ctypes.util.find_library("gdal")
    if not found:
        raise TilewiseError("cannot find the GDAL library rasterio loaded")
    return found
