"""Benchmark: the merge's coverage union against GEOS's union_all, on the source bench's tiles.

The tiles are those of bench/source_pipeline.py (40 a row, one in seven with a ragged nodata
collar on two sides, 1 m pixels in EPSG:25832), polygonized as a chunk job does. Printed: the time
of `shapely.union_all` (what the merge used before, the floor) and of `coverage_union.union` (the
coverage union and its proof, or union_all where the proof fails), alternating `--repeat` times,
medians, and whether both give the same polygons vertex for vertex. Not a test.

    .venv/bin/python bench/coverage_union.py --files 2000 --px 256
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import numpy as np
import shapely
from rasterio.features import shapes
from rasterio.transform import from_origin

from tilewise.sources import coverage_union
from tilewise_demo.source import ragged_collar

COLS = 40


def tile_polygon(i: int, px: int) -> shapely.Geometry:
    col, row = i % COLS, i // COLS
    valid = np.ones((px, px), "float32")
    if i % 7 == 3:
        valid = ragged_collar(valid, i)
    transform = from_origin(400_000 + col * px, 5_700_000 - row * px, 1, 1)
    mask = (valid == 1).astype("uint8")
    parts = [shapely.geometry.shape(g) for g, v in shapes(mask, mask=mask, transform=transform) if v]
    return shapely.union_all(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with mp.Pool() as pool:
        tiles = np.array(pool.starmap(tile_polygon, [(i, args.px) for i in range(args.files)]), dtype=object)
    print(f"{args.files} tiles of {args.px}², {int(shapely.get_num_coordinates(tiles).sum()):,} vertices")
    floor, ours = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        old = shapely.make_valid(shapely.union_all(tiles))
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        new = coverage_union.union(tiles)
        ours.append(time.perf_counter() - t)
    proved, why = coverage_union.coverage_union(tiles)
    same = shapely.normalize(old).equals_exact(shapely.normalize(new), 0)
    print(f"union_all (before)        {statistics.median(floor):8.2f} s")
    print(f"coverage union and proof  {statistics.median(ours):8.2f} s  ({'proved' if proved is not None else why})")
    print(f"ratio                     {statistics.median(ours) / statistics.median(floor):8.2f}")
    print(f"same polygons, vertex for vertex: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
