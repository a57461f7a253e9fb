"""Benchmark: the merge's coverage union against GEOS's union_all, on the source bench's tiles.

The tiles are those of bench/source_pipeline.py (40 a row, one in seven with a ragged nodata
collar on two sides, 1 m pixels in EPSG:25832), polygonized as a chunk job does. Printed: the time
of `shapely.union_all` (what the merge used before, the floor) and of `coverage_union.union` (the
coverage union and its proof, or union_all where the proof fails) with one thread and with the
merge's two, alternating `--repeat` times, medians, and whether they give the same polygons vertex
for vertex (and the two coverage unions the same bytes). Not a test.

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
MERGE_THREADS = 2  # rules/merge.smk's threads


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
    floor, ours, threaded = [], [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        old = shapely.make_valid(shapely.union_all(tiles))
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        new = coverage_union.union(tiles)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        two = coverage_union.union(tiles, workers=MERGE_THREADS)
        threaded.append(time.perf_counter() - t)
    proved, why = coverage_union.coverage_union(tiles)
    same = shapely.normalize(old).equals_exact(shapely.normalize(new), 0)
    floor_s = statistics.median(floor)
    print(f"{'union_all (before)':<44}{floor_s:8.2f} s")
    for label, times in (("1 thread", ours), (f"{MERGE_THREADS} threads (the merge's)", threaded)):
        median = statistics.median(times)
        print(f"{'coverage union and proof, ' + label:<44}{median:8.2f} s  ratio {median / floor_s:.2f}")
    print(f"proved: {'yes' if proved is not None else why}")
    print(f"same polygons, vertex for vertex: {'yes' if same else 'NO'}")
    print(f"{MERGE_THREADS} threads give the same bytes as 1: {'yes' if two.wkb == new.wkb else 'NO'}")


if __name__ == "__main__":
    main()
