"""Catalog entries for the workflow tests and benchmarks, in Mapterhorn's layout (files served over HTTP)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import yaml

from tilewise.sources.catalog import METADATA_KEYS

REPO = Path(__file__).resolve().parents[2]
DEMO_LICENSE = REPO / "catalog" / "demo" / "LICENSE.pdf"


def write_entry(
    catalog: Path,
    name: str,
    urls: list[str],
    metadata: dict,
    license_pdf: Path = DEMO_LICENSE,
    recipe: dict | None = None,
) -> Path:
    """Write a catalog entry in Mapterhorn's layout (plus source.yaml when a recipe is given)."""
    entry = catalog / name
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls))
    (entry / "metadata.json").write_text(json.dumps({k: metadata[k] for k in METADATA_KEYS}, indent=4))
    shutil.copyfile(license_pdf, entry / "LICENSE.pdf")
    if recipe is not None:
        (entry / "source.yaml").write_text(yaml.safe_dump(recipe))
    return entry


def make_entry(catalog: Path, name: str, urls: list[str], recipe: dict | None = None) -> Path:
    metadata = {
        "name": name,
        "website": "http://127.0.0.1/",
        "license": "CC0-1.0",
        "producer": "tilewise tests",
        "resolution": 1.0,
        "access_year": 2026,
    }
    return write_entry(catalog, name, urls, metadata, DEMO_LICENSE, recipe)


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def serve_tiles(http, n: int, start: int = 0) -> list[str]:
    """n zipped demo tiles (500×500 float32, EPSG:25832) on the server; returns their URLs."""
    from tilewise_demo.source import geotiff_bytes

    urls = []
    for i in range(start, start + n):
        http.files[f"/tiles/t{i:03d}.zip"] = zipped(f"t{i:03d}.tif", geotiff_bytes(i % 16))
        urls.append(http.url(f"tiles/t{i:03d}.zip"))
    return urls
