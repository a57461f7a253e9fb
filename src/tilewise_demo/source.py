"""Generate the demo source's data (no network): synthetic 1 m DEM tiles in the formats and packagings
real producers ship — zip, 7z, multi-volume 7z, a zip inside a zip, a bare GeoTIFF, an ASCII grid
without CRS — so the demo exercises every path of the pipeline.

    python -m tilewise_demo.source [catalog/demo/data]
"""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

import numpy as np
import py7zr
import rasterio
from rasterio.transform import from_origin

DEMO_CRS = "EPSG:25832"
TILE_PX = 500
ORIGIN_E, ORIGIN_N = 400_000.0, 5_650_000.0  # somewhere in Hesse, like a German 1 m state DEM
NODATA = -9999.0
COLS = 4  # tiles are laid out 4 across


def terrain(col_off: float, row_off: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth hills (metres) on a 1 m grid; continuous across tile edges."""
    y, x = np.mgrid[row_off : row_off + height, col_off : col_off + width].astype(np.float64)
    rng = np.random.default_rng(seed)
    z = 300.0 + 0.01 * x - 0.004 * y
    for _ in range(6):
        kx, ky = rng.uniform(0.002, 0.02, 2)
        z += rng.uniform(5, 40) * np.sin(kx * x + rng.uniform(0, 6)) * np.cos(ky * y + rng.uniform(0, 6))
    return z.astype(np.float32)


def ragged_collar(data: np.ndarray, seed: int) -> np.ndarray:
    """Set an irregular band along two edges to nodata, like the border tiles of a state DEM."""
    rng = np.random.default_rng(seed)
    h, w = data.shape
    depth = (h // 5 + np.cumsum(rng.integers(-3, 4, w))).clip(1, h // 2)
    rows = np.arange(h)[:, None]
    out = data.copy()
    out[rows < depth[None, :]] = NODATA
    side = (w // 6 + np.cumsum(rng.integers(-3, 4, h))).clip(1, w // 2)
    out[np.arange(w)[None, :] > (w - side[:, None])] = NODATA
    return out


def tile(index: int) -> tuple[np.ndarray, object]:
    col, row = index % COLS, index // COLS
    data = terrain(col * TILE_PX, row * TILE_PX, TILE_PX, TILE_PX)
    if index % 7 == 3:
        data = ragged_collar(data, index)
    transform = from_origin(ORIGIN_E + col * TILE_PX, ORIGIN_N - row * TILE_PX, 1.0, 1.0)
    return data, transform


def geotiff_bytes(index: int, with_crs: bool = True) -> bytes:
    data, transform = tile(index)
    buf = io.BytesIO()
    profile = dict(
        driver="GTiff",
        width=TILE_PX,
        height=TILE_PX,
        count=1,
        dtype="float32",
        transform=transform,
        nodata=NODATA,
        crs=DEMO_CRS if with_crs else None,
    )
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data, 1)
        buf.write(mem.read())
    return buf.getvalue()


def asc_text(index: int) -> str:
    data, transform = tile(index)
    header = (
        f"ncols {TILE_PX}\nnrows {TILE_PX}\nxllcorner {transform.c}\n"
        f"yllcorner {transform.f - TILE_PX}\ncellsize 1\nNODATA_value {NODATA:g}\n"
    )
    return header + "\n".join(" ".join(f"{v:.3f}" for v in r) for r in data) + "\n"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _7z(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return buf.getvalue()


@cache
def _multi_volume() -> bytes:
    return _7z({"dgm1_12.tif": geotiff_bytes(12)})  # made once: both volumes must cut the same bytes


def _volume(part: int) -> Callable[[], bytes]:
    def build() -> bytes:
        multi = _multi_volume()
        half = len(multi) // 2
        return multi[:half] if part == 1 else multi[half:]

    return build


def demo_files() -> dict[str, Callable[[], bytes]]:
    """File name → a function making its content, for every line of the demo's file_list.txt."""
    files: dict[str, Callable[[], bytes]] = {
        f"dgm1_{i:02d}.zip": partial(lambda i: _zip({f"dgm1_{i:02d}.tif": geotiff_bytes(i)}), i) for i in range(10)
    }
    files["dgm1_10_11.7z"] = lambda: _7z({"dgm1_10.tif": geotiff_bytes(10), "dgm1_11.tif": geotiff_bytes(11)})
    files["dgm1_12.7z.001"], files["dgm1_12.7z.002"] = _volume(1), _volume(2)
    files["dgm1_13_nested.zip"] = lambda: _zip({"inner/dgm1_13.zip": _zip({"dgm1_13.tif": geotiff_bytes(13)})})
    files["dgm1_14.tif"] = lambda: geotiff_bytes(14)
    files["dgm1_15.zip"] = lambda: _zip({"dgm1_15.asc": asc_text(15).encode()})
    return files


def generate(data_dir: Path) -> list[Path]:
    """Write the demo files into `data_dir`; existing ones are kept so reruns stay up to date."""
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in demo_files().items():
        path = data_dir / name
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(build())
            tmp.replace(path)
            written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "catalog/demo/data")
    made = generate(target)
    print(f"demo data in {target}: {len(made)} file(s) written, {len(demo_files()) - len(made)} already there")
