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

import numpy as np
import shapely

log = logging.getLogger(__name__)

_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def union(geoms) -> shapely.Geometry:
    """The union of polygons, valid (GEOS's `union_all` and `make_valid` where the coverage union
    cannot prove its answer)."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_empty(geoms)]
    if len(geoms) > 1:
        merged, why = coverage_union(geoms)
        if merged is not None:
            return merged
        log.info("coverage union not used (%s): GEOS's union_all instead", why)
    return shapely.make_valid(shapely.union_all(geoms))


def coverage_union(geoms: np.ndarray) -> tuple[shapely.Geometry | None, str]:
    """(the union, "") where proved, else (None, why not). `geoms`: none of them empty."""
    if not np.isin(shapely.get_type_id(geoms), _POLYGONAL).all() or not shapely.is_valid(geoms).all():
        return None, "not only valid polygons"
    if _boxes_overlap(geoms):  # overlapping tiles: the cleaner would cost far more than union_all
        return None, "the polygons' bounding boxes overlap"
    areas = shapely.area(geoms)
    tolerances = _area_rounding(geoms)
    try:
        noded = shapely.coverage_clean(geoms, snapping_distance=0.0)
    except shapely.errors.GEOSException as exc:
        return None, f"noding failed: {exc}"
    changed = np.abs(shapely.area(noded) - areas) > tolerances
    if changed.any():
        return None, f"{int(changed.sum())} polygon(s) overlap another one"
    if not _only_noded(geoms, noded):
        return None, "noding moved a vertex"
    try:
        merged = shapely.coverage_union_all(noded)
    except shapely.errors.GEOSException as exc:
        return None, f"the coverage union refused: {exc}"
    edges, shared_by = _count_rows(_edges(noded))
    if (shared_by > 2).any():
        return None, "an edge is shared by more than two polygons"
    merged_edges, repeated = _count_rows(_edges(np.array([merged], dtype=object)))
    if (repeated > 1).any() or not np.array_equal(edges[shared_by == 1], merged_edges):
        return None, "its edges are not the polygons' outline"
    total, rounding = math.fsum(areas.tolist()), math.fsum(tolerances.tolist()) + float(_area_rounding([merged])[0])
    if abs(merged.area - total) > rounding or not merged.is_valid:
        return None, f"its area {merged.area!r} is not the polygons' {total!r}, or it is not valid"
    return merged, ""


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


def _boxes_overlap(geoms: np.ndarray, batch: int = 64) -> bool:
    """Whether the interiors of two polygons' bounding boxes meet (tiles of one grid only touch).
    Asked a batch at a time: stacked tiles would otherwise make every pair an answer."""
    bounds = shapely.bounds(geoms)
    boxes = shapely.box(*bounds.T)
    tree = shapely.STRtree(boxes)
    for start in range(0, len(boxes), batch):
        a, b = tree.query(boxes[start : start + batch], predicate="intersects")
        a = a + start
        width = np.minimum(bounds[a, 2], bounds[b, 2]) - np.maximum(bounds[a, 0], bounds[b, 0])
        height = np.minimum(bounds[a, 3], bounds[b, 3]) - np.maximum(bounds[a, 1], bounds[b, 1])
        if ((a != b) & (width > 0) & (height > 0)).any():
            return True
    return False


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
