"""Coverage polygons reprojected into the coverage CRS stay valid across ±180° and around the poles."""

import pytest
import shapely
from pyproj import CRS

from tilewise.shared.reproject import reproject, reproject_all

X_MAX = 20037508.342789244
WGS84, MERCATOR = CRS.from_epsg(4326), CRS.from_epsg(3857)


def parts(geom):
    return sorted(tuple(round(v, 6) for v in p.bounds) for p in shapely.get_parts(geom))


@pytest.mark.parametrize(
    "case, geom, src, dst, expected",
    [
        # a GLO-30 W180 tile overhangs −180° by half a pixel: the sliver goes to the east end
        (
            "glo30 W180",
            shapely.box(-180.000139, 51, -179.000139, 52),
            WGS84,
            WGS84,
            [(-180, 51, -179.000139, 52), (179.999861, 51, 180, 52)],
        ),
        ("0…360 longitudes", shapely.box(170, 0, 200, 10), WGS84, WGS84, [(-180, 0, -160, 10), (170, 0, 180, 10)]),
        ("Web Mercator past X_MAX", shapely.box(20037000, 0, 20038000, 1000), MERCATOR, MERCATOR, None),
        ("UTM 60 across 180", shapely.box(600000, 6000000, 700000, 6100000), CRS.from_epsg(32660), WGS84, None),
    ],
)
def test_polygons_across_the_antimeridian_are_cut_there(case, geom, src, dst, expected):
    got = reproject(geom, src, dst)
    assert got.is_valid and len(shapely.get_parts(got)) == 2
    west, east = sorted(shapely.get_parts(got), key=lambda p: p.bounds[0])
    limit = X_MAX if dst == MERCATOR else 180
    assert west.bounds[0] == pytest.approx(-limit) and east.bounds[2] == pytest.approx(limit)
    if expected:
        assert parts(got) == [tuple(float(v) for v in e) for e in expected]


@pytest.mark.parametrize("epsg, pole_y", [(3031, -X_MAX), (3413, X_MAX)])
def test_a_polygon_around_a_pole_becomes_a_band_clipped_at_the_mercator_limit(epsg, pole_y):
    square = shapely.box(-1500000, -1500000, 1500000, 1500000).difference(shapely.box(-10000, -10000, 10000, 10000))
    got = reproject(square, CRS.from_epsg(epsg), MERCATOR)
    assert got.is_valid and got.bounds[0] == pytest.approx(-X_MAX) and got.bounds[2] == pytest.approx(X_MAX)
    assert pole_y in (got.bounds[1], got.bounds[3]) and max(abs(v) for v in got.bounds) <= X_MAX + 1e-6
    lonlat = reproject(square, CRS.from_epsg(epsg), WGS84)  # into longitudes: down to the hole at the pole
    assert lonlat.is_valid and lonlat.bounds[0] == -180 and lonlat.bounds[2] == 180
    assert 89.8 < abs(lonlat.bounds[1 if epsg == 3031 else 3]) < 89.9  # the hole's corners, 14 km from the pole
    assert not lonlat.contains(shapely.Point(0, pole_y / X_MAX * 89.99))


def test_a_plain_polygon_is_reprojected_as_before():
    box = shapely.box(-5, 40, 5, 50)
    assert reproject(box, WGS84, WGS84) is box
    got = reproject(box, WGS84, MERCATOR)
    assert got.bounds == pytest.approx((-556597.45, 4865942.28, 556597.45, 6446275.84), abs=0.01)


LONLAT = [shapely.box(-180.000139, 51, -179.000139, 52), shapely.box(170, 0, 200, 10), shapely.box(-5, 40, 5, 50)]
METRES = [shapely.box(20037000, 0, 20038000, 1000), shapely.box(600000, 6000000, 700000, 6100000)]


@pytest.mark.parametrize(
    "src, dst, geoms",
    [
        (WGS84, WGS84, LONLAT),
        (MERCATOR, MERCATOR, METRES),
        (CRS.from_epsg(25832), CRS.from_epsg(25832), METRES[1:]),
        (CRS.from_epsg(32660), WGS84, METRES[1:]),
    ],
)
def test_polygons_reprojected_all_at_once_are_each_reprojected_as_alone(src, dst, geoms):
    """The merge asks the CRS questions once for all polygons: the same CRS is no shortcut into
    longitudes or Web Mercator, where a polygon past ±180° is still cut."""
    together = reproject_all(geoms, src, dst)
    assert [g.wkb for g in together] == [reproject(g, src, dst).wkb for g in geoms]
    projected_alike = src == dst == CRS.from_epsg(25832)
    pairs = list(zip(together, geoms, strict=True))
    assert all(a is b for a, b in pairs) == projected_alike
    assert projected_alike or any(a.wkb != b.wkb for a, b in pairs)  # cut at ±180°, or reprojected
