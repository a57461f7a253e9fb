"""The union of a source's coverage polygons: a coverage union where it is proved equal to GEOS's union.

Tiles of a source mostly only share edges, and a polygonized mask has a vertex at every pixel step of
its collar: `shapely.union_all` nodes those vertices again at every level of its cascade (0.9 s for
200 tiles of 1000², tens of seconds for 20,000). A coverage union passes over every edge once. It
needs polygons that do not overlap and whose shared edges have the same vertices, so GEOS's
coverage cleaner first nodes them with no snapping: it moves no vertex, adds one where a tile's
edge passes another's corner, and gives an overlap to one of the polygons that share it.

It is tried only on polygons whose bounding boxes do not overlap (tiles of one grid only touch;
on overlapping tiles the cleaner costs up to a thousand times more than union_all), and its answer
is kept only when it is proved to be the union of the polygons; otherwise (or for anything but
valid polygons) `union_all` gives the answer:
- every polygon keeps its area and all its vertices when noded, and its added vertices lie exactly
  on its boundary: nothing moved, no overlap or gap was given to it;
- no edge is shared by more than two polygons, and the union's edges are, coordinate for
  coordinate, exactly the edges of the noded polygons that no other polygon shares: the outline of
  a set of polygons that meet only along edges;
- the union is valid and its area is the sum of the polygons' areas (a duplicate tile would
  otherwise cancel out).
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import shapely

log = logging.getLogger(__name__)

_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
# below this many polygons the cleaner is not split: its halves would cost more than they save
_SPLIT_FROM = 1000


def union(geoms, workers: int = 1) -> shapely.Geometry:
    """The union of polygons, valid and normalized (GEOS's `union_all` and `make_valid` where the
    coverage union cannot prove its answer). `workers`: threads for the coverage union (GEOS runs
    without the GIL)."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_empty(geoms)]
    if len(geoms) > 1:
        with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
            merged, why = coverage_union(geoms, pool)
        if merged is not None:
            return shapely.normalize(merged)
        log.info("coverage union not used (%s): GEOS's union_all instead", why)
    # in GEOS's normal form (rings from their lowest vertex, parts in order): the same bytes whatever
    # the threads, the tiles' order or the path that answered
    return shapely.normalize(shapely.make_valid(shapely.union_all(geoms)))


def coverage_union(geoms: np.ndarray, pool: ThreadPoolExecutor | None = None) -> tuple[shapely.Geometry | None, str]:
    """(the union, "") where proved, else (None, why not). `geoms`: none of them empty. With `pool`,
    the cleaner runs on two halves at once and the proof's checks beside the union (same answer)."""
    run = pool.submit if pool is not None else _now
    halves = np.array_split(geoms, 2)
    types_ok = np.isin(shapely.get_type_id(geoms), _POLYGONAL).all()
    if not types_ok or not all(f.result() for f in [run(lambda g: shapely.is_valid(g).all(), h) for h in halves]):
        return None, "not only valid polygons"
    if _boxes_overlap(geoms):  # overlapping tiles: the cleaner would cost far more than union_all
        return None, "the polygons' bounding boxes overlap"
    areas = shapely.area(geoms)
    tolerances = _area_rounding(geoms)
    try:
        noded = _clean(geoms, pool)
    except shapely.errors.GEOSException as exc:
        return None, f"noding failed: {exc}"
    changed = np.abs(shapely.area(noded) - areas) > tolerances
    if changed.any():
        return None, f"{int(changed.sum())} polygon(s) overlap another one"
    only_noded = run(_only_noded, geoms, noded)
    counted = run(lambda: _count_rows(_edges(noded)))
    try:
        merged = shapely.coverage_union_all(noded)
    except shapely.errors.GEOSException as exc:
        merged, refused = None, exc
    if not only_noded.result():
        return None, "noding moved a vertex"
    if merged is None:
        return None, f"the coverage union refused: {refused}"
    edges, shared_by = counted.result()
    if (shared_by > 2).any():
        return None, "an edge is shared by more than two polygons"
    merged_counted = run(lambda: _count_rows(_edges(np.array([merged], dtype=object))))
    valid = merged.is_valid
    merged_edges, repeated = merged_counted.result()
    if (repeated > 1).any() or not np.array_equal(edges[shared_by == 1], merged_edges):
        return None, "its edges are not the polygons' outline"
    total, rounding = math.fsum(areas.tolist()), math.fsum(tolerances.tolist()) + float(_area_rounding([merged])[0])
    if abs(merged.area - total) > rounding or not valid:
        return None, f"its area {merged.area!r} is not the polygons' {total!r}, or it is not valid"
    return merged, ""


def _clean(geoms: np.ndarray, pool: ThreadPoolExecutor | None) -> np.ndarray:
    """GEOS's coverage cleaner, with no snapping. With `pool`, on two halves at once (split across the
    longer side of the extent), each with the polygons that touch it: a polygon's noding depends only
    on the polygons it touches (what else could end on its edges?), and the proof checks the whole."""
    if pool is None or len(geoms) < _SPLIT_FROM:
        return shapely.coverage_clean(geoms, snapping_distance=0.0)
    bounds = shapely.bounds(geoms)
    extent = bounds[:, 2:].max(axis=0) - bounds[:, :2].min(axis=0)
    axis = 0 if extent[0] >= extent[1] else 1
    halves = np.array_split(np.argsort(bounds[:, axis] + bounds[:, axis + 2], kind="stable"), 2)
    boxes = shapely.box(*bounds.T)
    tree = shapely.STRtree(boxes)
    jobs = []
    for own in halves:
        touching = np.unique(tree.query(boxes[own], predicate="intersects")[1])
        with_halo = np.concatenate([own, np.setdiff1d(touching, own, assume_unique=True)])
        jobs.append((own, pool.submit(shapely.coverage_clean, geoms[with_halo], snapping_distance=0.0)))
    noded = np.empty(len(geoms), dtype=object)
    for own, job in jobs:
        noded[own] = job.result()[: len(own)]
    return noded


class _Done:
    """The answer of a call made at once, shaped like a Future's."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _now(fn, *args, **kwargs) -> _Done:
    return _Done(fn(*args, **kwargs))


def _only_noded(geoms: np.ndarray, noded: np.ndarray) -> bool:
    """Each noded polygon has every vertex of its polygon, and its other vertices lie exactly on its
    polygon's boundary (a neighbour's corner on an axis-parallel edge does; a vertex a few units in
    the last place off it, which may close a gap of that width, does not)."""
    before, after = _vertices(geoms), _vertices(noded)
    flagged = [np.column_stack([v, np.full(len(v), flag, np.int64)]) for v, flag in ((before, 0), (after, 1))]
    rows, first = _sorted_groups(np.vstack(flagged), key_columns=3)  # then before (0) ahead of after (1)
    last = np.roll(first, -1)
    if ((rows[first, 3] == 0) & (rows[last, 3] == 0)).any():
        return False  # a vertex of a polygon is not in its noded polygon
    added = rows[first & (rows[:, 3] == 1)]
    if not len(added):
        return True
    polygon, xy = added[:, 0], np.ascontiguousarray(added[:, 1:3]).view(np.float64)
    return bool((shapely.distance(shapely.points(xy), shapely.boundary(geoms[polygon])) == 0).all())


def _boxes_overlap(geoms: np.ndarray) -> bool:
    """Whether the interiors of two polygons' bounding boxes meet (tiles of one grid only touch)."""
    return len(overlapping_boxes(geoms, first_only=True)) > 0


def overlapping_boxes(geoms, first_only: bool = False, batch: int = 64) -> np.ndarray:
    """The indices of the polygons whose bounding box's interior meets another one's (with
    `first_only`, those of the first batch that has any). Asked a batch at a time: stacked tiles
    would otherwise make every pair an answer."""
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    boxes = shapely.box(*bounds.T)
    tree = shapely.STRtree(boxes)
    found = []
    for start in range(0, len(boxes), batch):
        a, b = tree.query(boxes[start : start + batch], predicate="intersects")
        a = a + start
        width = np.minimum(bounds[a, 2], bounds[b, 2]) - np.maximum(bounds[a, 0], bounds[b, 0])
        height = np.minimum(bounds[a, 3], bounds[b, 3]) - np.maximum(bounds[a, 1], bounds[b, 1])
        meet = (a != b) & (width > 0) & (height > 0)
        if meet.any():
            found.append(np.unique(a[meet]))
            if first_only:
                break
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _vertices(geoms: np.ndarray) -> np.ndarray:
    """Every vertex as three integers: the index of its polygon, and the bits of x and y."""
    xy, polygon = shapely.get_coordinates(geoms, return_index=True)
    return np.column_stack([polygon.astype(np.int64), (xy + 0.0).view(np.int64)])  # + 0.0: -0.0 is 0.0


def _edges(geoms: np.ndarray) -> np.ndarray:
    """Every ring segment as four integers (the bits of its end points' coordinates, in an order that
    does not depend on its direction)."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    bits = (xy + 0.0).view(np.int64)
    same_ring = ring[1:] == ring[:-1]
    a, b = bits[:-1][same_ring], bits[1:][same_ring]
    b_first = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
    return np.where(b_first[:, None], np.hstack([b, a]), np.hstack([a, b]))


def _count_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows, sorted, and how often each occurs."""
    rows, first = _sorted_groups(rows, key_columns=rows.shape[1])
    starts = np.flatnonzero(first)
    return rows[starts], np.diff(np.append(starts, len(rows)))


def _sorted_groups(rows: np.ndarray, key_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` sorted by all their columns, and where each run of equal first `key_columns` starts."""
    rows = rows[np.lexsort(rows.T[::-1])]
    first = np.ones(len(rows), bool)
    first[1:] = (rows[1:, :key_columns] != rows[:-1, :key_columns]).any(axis=1)
    return rows, first


def _area_rounding(geoms) -> np.ndarray:
    """How far rounding can move each polygon's computed area: GEOS sums one cross product of
    coordinate differences per vertex, each off by a few units in the last place of extent²."""
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    return 64 * np.finfo(float).eps * shapely.get_num_coordinates(geoms) * extent * extent
