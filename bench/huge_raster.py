"""Benchmark: one huge raster through the source pipeline in bounded memory (issue 15, point 2).

A producer's float32 raster of N × N pixels (40,000² by default, 6.4 GB of pixels) in EPSG:25832
with a ragged nodata collar on all four sides is generated strip by strip (ZSTD, 512² blocks) and
listed as a local path of a catalog entry. In the same run it measures, each in its own process
(wall time and peak RSS of the process and everything it waited for, from `os.wait4`):

- the floor: the COG conversion alone (GDAL's COG driver with Mapterhorn's options, as the workflow);
- the workflow with no slicing in the recipe: convert, bounds, coverage polygons, merge, tarball;
- the workflow with `slice_px` (16,384 by default).

The peak RSS of a workflow run is that of its largest process (a chunk job, or snakemake itself).
Target: under 2 GB. Not a test.

    .venv/bin/python bench/huge_raster.py [--px 40000] [--slice-px 16384] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from _measure import measured
from rasterio.transform import from_origin

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.catalog import write_entry
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]
NODATA = -9999.0
STRIP_ROWS = 1024


def collar_depths(px: int, seed: int) -> list[np.ndarray]:
    """Nodata depth in pixels along each edge (top, bottom per column; left, right per row): random walks."""
    rng = np.random.default_rng(seed)
    base = max(px // 80, 2)
    return [(base + np.cumsum(rng.integers(-3, 4, px))).clip(1, px // 4) for _ in range(4)]


def make_raster(path: Path, px: int) -> None:
    top, bottom, left, right = collar_depths(px, 15)
    x = np.arange(px, dtype=np.float32)[None, :]
    profile = dict(
        driver="GTiff",
        width=px,
        height=px,
        count=1,
        dtype="float32",
        crs="EPSG:25832",
        transform=from_origin(400_000, 5_700_000, 1, 1),
        nodata=NODATA,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="ZSTD",
        predictor=3,
        zstd_level=1,
        bigtiff="YES",
    )
    with rasterio.open(path, "w", **profile) as ds:
        for row0 in range(0, px, STRIP_ROWS):
            rows = np.arange(row0, min(row0 + STRIP_ROWS, px), dtype=np.float32)[:, None]
            z = 300 + 0.002 * x + 0.003 * rows + 20 * np.sin(x / 700) * np.cos(rows / 900)
            r = rows.astype(int)
            cols = np.arange(px)[None, :]
            outside = (r < top[None, :]) | (r >= px - bottom[None, :])
            outside |= (cols < left[r[:, 0]][:, None]) | (cols >= px - right[r[:, 0]][:, None])
            z[outside] = NODATA
            ds.write(z.astype(np.float32), 1, window=((row0, row0 + len(rows)), (0, px)))


FLOOR = """
import sys, rasterio.shutil
from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
rasterio.shutil.copy(sys.argv[1], sys.argv[2], driver="COG", **MAPTERHORN_COG_OPTIONS)
"""


def run_workflow(root: Path, raster: Path, slice_px: int | None) -> dict:
    name = f"huge{slice_px or ''}"
    work = root / f"work-{name}"
    metadata = {"name": name, "website": "-", "license": "CC0-1.0", "producer": "bench", "resolution": 1.0}
    recipe = {"slice_px": slice_px} if slice_px else {}
    write_entry(root / "catalog", name, [str(raster)], metadata | {"access_year": 2026}, recipe=recipe)
    config = ["--config", f"catalog={root / 'catalog'}", f"source={name}", "state=[]"]
    result = measured(snakemake_cmd(REPO, work, *config, cores=2))
    with rasterio.open(next((work / "source-store" / name).glob("*.tif"))) as ds:
        result["first_output"] = f"{ds.width}×{ds.height}"
    result["outputs"] = len(list((work / "source-store" / name).glob("*.tif")))
    shutil.rmtree(work)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--px", type=int, default=40_000, help="raster width and height in pixels")
    ap.add_argument("--slice-px", type=int, default=16_384)
    ap.add_argument("--keep", type=Path, help="work here; a raster generated there before is reused")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="tilewise-huge-"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        raster = root / f"dem_{args.px}.tif"
        if not raster.exists():
            t0 = time.perf_counter()
            make_raster(root / "partial.tif", args.px)
            (root / "partial.tif").rename(raster)
            print(f"generated {raster.name}: {raster.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s")
        floor = measured([sys.executable, "-c", FLOOR, str(raster), str(root / "floor.tif")])
        (root / "floor.tif").unlink()
        os.sync()
        whole = run_workflow(root, raster, None)
        os.sync()
        sliced = run_workflow(root, raster, args.slice_px)
        report(args, floor, whole, sliced)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def report(args, floor: dict, whole: dict, sliced: dict) -> None:
    print(
        f"raster: {args.px:,}×{args.px:,} float32 with a ragged nodata collar ({args.px**2 * 4 / 1e9:.1f} GB of pixels)"
    )
    print(f"{'':34}{'wall s':>9}{'peak RSS MB':>13}{'outputs':>9}")
    rows = [
        ("floor (COG conversion alone)", floor, ""),
        ("workflow, no slicing", whole, str(whole["outputs"])),
        (f"workflow, slice_px {args.slice_px}", sliced, str(sliced["outputs"])),
    ]
    for label, r, outputs in rows:
        print(f"{label:34}{r['wall_s']:9.1f}{r['peak_rss_bytes'] / 1e6:13.0f}{outputs:>9}")
    worst = max(whole["peak_rss_bytes"], sliced["peak_rss_bytes"])
    print(f"peak RSS of any job             {worst / 1e6:.0f} MB (target < 2000 MB): {'yes' if worst < 2e9 else 'NO'}")
    print(f"time workflow/floor             {whole['wall_s'] / floor['wall_s']:.2f} (no slicing)")


if __name__ == "__main__":
    main()
