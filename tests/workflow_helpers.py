"""Build catalog entries for workflow tests: files are served by the test's HTTP server."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from tilewise.catalog import write_entry

from conftest import REPO


def make_entry(catalog: Path, name: str, urls: list[str], recipe: dict | None = None) -> Path:
    metadata = {
        "name": name,
        "website": "http://127.0.0.1/",
        "license": "CC0-1.0",
        "producer": "tilewise tests",
        "resolution": 1.0,
        "access_year": 2026,
    }
    return write_entry(catalog, name, urls, metadata, REPO / "catalog" / "demo" / "LICENSE.pdf", recipe)


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def serve_tiles(http, n: int, start: int = 0) -> list[str]:
    """n zipped demo tiles (500×500 float32, EPSG:25832) on the server; returns their URLs."""
    from tilewise.demo import geotiff_bytes

    urls = []
    for i in range(start, start + n):
        http.files[f"/tiles/t{i:03d}.zip"] = zipped(f"t{i:03d}.tif", geotiff_bytes(i % 16))
        urls.append(http.url(f"tiles/t{i:03d}.zip"))
    return urls
