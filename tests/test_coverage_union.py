"""The merge's coverage union: the fast coverage union is used only where it is proved equal to GEOS's
union_all, for every kind of tile set a source gives (and for answers that are wrong on purpose)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import shapely
import shapely.affinity
from affine import Affine

from tilewise.sources import coverage_union


def _mask_polygon(mask: np.ndarray, transform: Affine) -> shapely.Geometry:
    """What the chunk job's polygonize gives for a valid-data mask: its polygons, unioned."""
    shapes = [
        shapely.geometry.shape(g) for g, v in rasterio.features.shapes(mask.astype("uint8"), transform=transform) if v
    ]
    return shapely.make_valid(shapely.union_all(shapes)) if shapes else shapely.Polygon()


def _cut_collar(mask: np.ndarray, side: int, depth: np.ndarray) -> None:
    """A ragged nodata collar on one side (0 top, 1 bottom, 2 left, 3 right), `depth[i]` px deep."""
    for i, d in enumerate(depth):
        if side == 0:
            mask[:d, i] = False
        elif side == 1:
            mask[-d:, i] = False
        elif side == 2:
            mask[i, :d] = False
        else:
            mask[i, -d:] = False


def _tiles(rng, n=6, px=24, origin=(500_000.0, 5_400_000.0), size=1.0, collar=0.4, holes=0.2, missing=0.1):
    """An n × n grid of tiles, some with a ragged nodata collar on a random side, some with a nodata
    hole inside, some missing."""
    tiles = []
    for row in range(n):
        for col in range(n):
            if rng.random() < missing:
                continue
            mask = np.ones((px, px), bool)
            if rng.random() < collar:
                depth = rng.integers(1, px // 2, px)
                _cut_collar(mask, rng.integers(4), depth)
            if rng.random() < holes:
                r, c = rng.integers(3, px - 6, 2)
                mask[r : r + rng.integers(1, 4), c : c + rng.integers(1, 4)] = False
            x0, y0 = origin[0] + col * px * size, origin[1] - row * px * size
            poly = _mask_polygon(mask, Affine(size, 0, x0, 0, -size, y0))
            if not poly.is_empty:
                tiles.append(poly)
    return tiles


def _same(a, b) -> bool:
    return shapely.normalize(a).equals_exact(shapely.normalize(b), 0)


@pytest.mark.parametrize("seed", range(8))
def test_pixel_tiles_with_collars_holes_and_gaps_take_the_fast_path_and_equal_union_all(seed):
    tiles = _tiles(np.random.default_rng(seed))
    fast, why = coverage_union.coverage_union(np.array(tiles, dtype=object))
    assert fast is not None, why
    assert _same(fast, shapely.union_all(tiles))
    assert _same(coverage_union.union(tiles), shapely.union_all(tiles))


@pytest.mark.parametrize("size", [1 / 4096, 1 / 3600])
def test_geographic_tiles(size):
    """1/3600° is no binary fraction: neighbours' edges differ in the last bits, they overlap or
    leave slivers, and union_all answers; 1/4096° tiles share their edges exactly."""
    tiles = _tiles(np.random.default_rng(11), origin=(7.0, 48.0), size=size)
    fast, why = coverage_union.coverage_union(np.array(tiles, dtype=object))
    assert (fast is not None) == (size == 1 / 4096), why
    assert _same(coverage_union.union(tiles), shapely.make_valid(shapely.union_all(tiles)))


def test_a_hole_of_one_pixel_filled_by_no_tile_stays_a_hole():
    ring = np.ones((9, 9), bool)
    ring[4, 4] = False
    tiles = [_mask_polygon(ring, Affine(1, 0, 0, 0, -1, 9)), shapely.box(9, 0, 18, 9)]
    merged = coverage_union.union(tiles)
    assert merged.area == 9 * 9 * 2 - 1
    assert _same(merged, shapely.union_all(tiles))


def test_a_tile_inside_another_ones_hole_fills_it():
    outer = shapely.box(0, 0, 9, 9).difference(shapely.box(3, 3, 6, 6))
    tiles = [outer, shapely.box(3, 3, 6, 6)]
    assert _same(coverage_union.union(tiles), shapely.box(0, 0, 9, 9))  # boxes overlap: union_all answers


def test_pixels_that_touch_only_at_corners():
    checker = np.indices((8, 8)).sum(axis=0) % 2 == 0
    tiles = [_mask_polygon(checker, Affine(1, 0, 0, 0, -1, 8)), _mask_polygon(~checker, Affine(1, 0, 8, 0, -1, 8))]
    assert _same(coverage_union.union(tiles), shapely.union_all(tiles))


@pytest.mark.parametrize(
    "second",
    [
        shapely.box(5, 0, 15, 10),  # half over the first
        shapely.box(2, 2, 4, 4),  # inside the first
        shapely.box(0, 0, 10, 10),  # the same tile twice
        shapely.box(0, 0, 10, 10).difference(shapely.box(4, 4, 6, 6)),  # the same with a hole
        shapely.box(10 - 1e-9, 0, 20, 10),  # a sliver over the edge
    ],
)
def test_overlapping_tiles_are_not_a_coverage_and_union_all_answers(second):
    tiles = [shapely.box(0, 0, 10, 10), second]
    if not np.isclose(shapely.union_all(tiles).area, sum(t.area for t in tiles)):
        fast, _ = coverage_union.coverage_union(np.array(tiles, dtype=object))
        assert fast is None
    assert _same(coverage_union.union(tiles), shapely.make_valid(shapely.union_all(tiles)))


def test_overlapping_pixel_tiles_from_two_grids():
    rng = np.random.default_rng(3)
    tiles = _tiles(rng, n=4) + _tiles(rng, n=4, origin=(500_000.0 + 13.5, 5_400_000.0 - 7.25))
    assert _same(coverage_union.union(tiles), shapely.make_valid(shapely.union_all(tiles)))


def test_rotated_tiles_that_share_edges():
    rng = np.random.default_rng(5)
    tiles = [shapely.affinity.rotate(t, 17.3, origin=(0, 0)) for t in _tiles(rng, n=4, holes=0.5)]
    assert _same(coverage_union.union(tiles), shapely.make_valid(shapely.union_all(tiles)))


def test_multipolygons_and_empty_polygons_among_the_tiles():
    tiles = [
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)]),
        shapely.Polygon(),
        shapely.box(1, 0, 2, 1),
        shapely.box(0, 1, 3, 1.5),
    ]
    merged = coverage_union.union(tiles)
    assert merged.equals(shapely.box(0, 0, 3, 1.5)) and merged.is_valid


def test_a_single_tile_and_none():
    assert _same(coverage_union.union([shapely.box(0, 0, 1, 1)]), shapely.box(0, 0, 1, 1))
    assert coverage_union.union([]).is_empty


def test_an_invalid_polygon_is_left_to_union_all():
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    fast, why = coverage_union.coverage_union(np.array([bowtie, shapely.box(2, 0, 3, 2)], dtype=object))
    assert fast is None and "valid" in why


def _hole_dropped(geom):
    return shapely.MultiPolygon([shapely.Polygon(p.exterior) for p in shapely.get_parts(geom)])


@pytest.mark.parametrize(
    "where, wrong",
    [
        (
            "coverage_clean",
            lambda real: lambda g, **kw: real(g, **kw)[:-1].tolist() + [shapely.Polygon()],
        ),  # a tile lost
        ("coverage_clean", lambda real: lambda g, **kw: shapely.transform(real(g, **kw), lambda c: c + 1e-7)),  # moved
        ("coverage_union_all", lambda real: lambda g, **kw: _hole_dropped(real(g, **kw))),  # a hole filled
        ("coverage_union_all", lambda real: lambda g, **kw: shapely.simplify(real(g, **kw), 1.0)),  # edges changed
        ("coverage_union_all", lambda real: lambda g, **kw: real(np.asarray(g)[:-1], **kw)),  # a tile left out
    ],
)
def test_a_wrong_fast_answer_is_caught_and_union_all_answers(monkeypatch, where, wrong):
    tiles = _tiles(np.random.default_rng(1), holes=1.0, missing=0.3)
    monkeypatch.setattr(coverage_union.shapely, where, wrong(getattr(shapely, where)))
    fast, why = coverage_union.coverage_union(np.array(tiles, dtype=object))
    assert fast is None, "a wrong answer passed the proof"
    monkeypatch.undo()
    assert _same(coverage_union.union(tiles), shapely.union_all(tiles))


def _strip(y_near: float, y_far: float, x0=500_000.0, length=1000.0, steps=100):
    """A strip with a plain edge at `y_near` and `steps` extra vertices on a straight edge at `y_far`
    (as a polygonized collar leaves them): they make the strip's area rounding allowance large."""
    far = [(x, y_far) for x in np.linspace(x0 + length, x0, steps + 2)]
    return shapely.Polygon([(x0, y_near), (x0 + length, y_near), *far])


@pytest.mark.parametrize("steps", [0, 100, 1000])
def test_a_gap_of_one_unit_in_the_last_place_stays_a_hole(steps):
    """The cleaner hands a gap one ulp wide to a neighbour (its area grows by less than the rounding
    allowance); the added vertices then lie one ulp off that neighbour's boundary, and the fast
    answer, which would fill the hole, is refused."""
    y = 5_400_000.0
    tiles = [
        _strip(y, y + 1, steps=steps),
        _strip(np.nextafter(y, -np.inf), y - 1, steps=steps),
        shapely.box(499_999.0, y - 1, 500_000.0, y + 1),
        shapely.box(501_000.0, y - 1, 501_001.0, y + 1),
    ]
    merged = coverage_union.union(tiles)
    assert _same(merged, shapely.make_valid(shapely.union_all(tiles)))
    assert sum(len(p.interiors) for p in shapely.get_parts(merged)) == 1


def test_the_middle_tile_of_a_collared_grid_one_unit_in_the_last_place_off():
    """3 × 3 tiles of 1000 px with ragged collars away from the middle one, whose bottom edge is one
    ulp above the top of the tile below: that seam is a hole of the union."""
    rng, px, size = np.random.default_rng(7), 1000, 0.1
    tiles = []
    for row in range(3):
        for col in range(3):
            mask = np.ones((px, px), bool)
            side = 0 if (row, col) == (1, 1) or row == 0 else 1 if row == 2 else 2 if col == 0 else 3
            _cut_collar(mask, side, rng.integers(1, 40 if (row, col) != (1, 1) else 3, px))
            tile = _mask_polygon(
                mask, Affine(size, 0, 500_000.0 + col * px * size, 0, -size, 5_400_000.0 - row * px * size)
            )
            if (row, col) == (1, 1):
                bottom = 5_400_000.0 - 2 * px * size
                lifted = np.nextafter(bottom, np.inf)
                tile = shapely.transform(tile, lambda c, b=bottom, up=lifted: np.where(c == b, up, c))
            tiles.append(tile)
    reference = shapely.make_valid(shapely.union_all(tiles))
    merged = coverage_union.union(tiles)
    assert _same(merged, reference)
    assert sum(len(p.interiors) for p in shapely.get_parts(merged)) == 2


def test_a_corner_near_but_not_on_a_diagonal_edge():
    """(1, 1/3) is not exactly on the edge from (0, 0) to (3, 1): the two triangles meet at two
    points only, and the union keeps them two parts, as union_all does."""
    tiles = [shapely.Polygon([(0, 0), (3, 1), (0, 1)]), shapely.Polygon([(0, 0), (3, 0), (3, 1), (1, 1 / 3)])]
    assert _same(coverage_union.union(tiles), shapely.make_valid(shapely.union_all(tiles)))


@pytest.mark.parametrize(
    "tiles",
    [
        [shapely.box(-i, -i, i + 1, i + 1) for i in range(200)],  # nested
        [shapely.box(0, 0, 1, 1)] * 200,  # the same tile again and again
        [shapely.Point(i % 20, i // 20).buffer(0.8) for i in range(400)],  # overlapping circles
    ],
    ids=["nested", "identical", "overlapping"],
)
def test_tiles_whose_boxes_overlap_go_to_union_all_without_the_cleaner(monkeypatch, tiles):
    """On stacked tiles GEOS's cleaner costs up to a thousand times more than union_all."""

    def cleaner(*args, **kwargs):
        raise AssertionError("the cleaner ran on overlapping tiles")

    reference = shapely.make_valid(shapely.union_all(tiles))
    monkeypatch.setattr(coverage_union.shapely, "coverage_clean", cleaner)
    assert _same(coverage_union.union(tiles), reference)


def _t_junction_tiles(rows=12):
    """Tiles 8 high left of x = 0, 2 high right of it: three corners of the short tiles end on each tall
    tile's edge, so that edge is noded with vertices of the other half, and some short tiles have a
    ragged collar."""
    rng = np.random.default_rng(3)
    left = [
        _mask_polygon(np.ones((8, 4), bool), Affine(1, 0, -4.0 * (1 + c), 0, -1, 8.0 * r))
        for r in range(rows)
        for c in range(3)
    ]
    right = []
    for r in range(rows * 4):
        mask = np.ones((4, 5), bool)
        if rng.random() < 0.5:
            _cut_collar(mask, 3, rng.integers(1, 3, 4))
        right.append(_mask_polygon(mask, Affine(1, 0, 0.0, 0, -0.5, 8.0 * (r // 4) - (r % 4) * 2.0)))
    return left + right


def _mixed_grid_tiles(n=30, seed=3):
    """Boxes of a 0.1° grid, some of them split 3 × 3 (a finer neighbouring grid), some missing,
    shuffled: the cleaner on one half starts some rings at another vertex than on the whole."""
    rng = np.random.default_rng(seed)
    tiles = []
    for i in range(n):
        for j in range(n):
            if rng.random() < 0.15:
                continue
            if rng.random() < 0.3:
                parts = [(a, b) for a in range(3) for b in range(3) if rng.random() > 0.2]
                tiles += [
                    shapely.box(
                        7 + (i + a / 3) / 10,
                        7 + (j + b / 3) / 10,
                        7 + (i + (a + 1) / 3) / 10,
                        7 + (j + (b + 1) / 3) / 10,
                    )
                    for a, b in parts
                ]
            else:
                tiles.append(shapely.box(7 + i / 10, 7 + j / 10, 7 + (i + 1) / 10, 7 + (j + 1) / 10))
    return list(np.array(tiles, dtype=object)[rng.permutation(len(tiles))])


@pytest.mark.parametrize(
    "tiles",
    [_t_junction_tiles(), _tiles(np.random.default_rng(5), n=12, holes=0.5, missing=0.2), _mixed_grid_tiles()],
    ids=["t-junctions across the seam", "collared grid", "mixed grids shuffled"],
)
def test_the_cleaner_split_in_two_halves_gives_the_same_union_byte_for_byte(monkeypatch, tiles):
    one = coverage_union.union(tiles)
    monkeypatch.setattr(coverage_union, "_SPLIT_FROM", 2)
    split = []
    real = coverage_union.shapely.coverage_clean
    monkeypatch.setattr(coverage_union.shapely, "coverage_clean", lambda g, **kw: split.append(len(g)) or real(g, **kw))
    two = coverage_union.union(tiles, workers=2)
    assert len(split) == 2 and sum(split) > len(tiles), "the cleaner did not run on two halves with their halos"
    assert two.wkb == one.wkb
    assert coverage_union.union(tiles[::-1]).wkb == one.wkb, "the tiles' order changed the bytes"
    assert _same(one, shapely.union_all(tiles))


def test_halves_cleaned_without_the_polygons_that_touch_them_are_caught(monkeypatch):
    """The halo is what makes the split right: without it, a tall tile's edge misses the short tiles'
    corners across the seam, and the proof refuses the answer (union_all gives it)."""
    tiles = np.array(_t_junction_tiles(), dtype=object)

    def halves_alone(geoms, pool):
        order = np.argsort(shapely.bounds(geoms)[:, 0], kind="stable")
        noded = np.empty(len(geoms), dtype=object)
        for own in np.array_split(order, 2):
            noded[own] = shapely.coverage_clean(geoms[own], snapping_distance=0.0)
        return noded

    monkeypatch.setattr(coverage_union, "_clean", halves_alone)
    fast, why = coverage_union.coverage_union(tiles)
    assert fast is None and why
    monkeypatch.undo()
    assert _same(coverage_union.union(tiles, workers=2), shapely.make_valid(shapely.union_all(tiles)))
