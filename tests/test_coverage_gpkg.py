"""The coverage GeoPackage writer: GDAL's GPKG driver through rasterio's libgdal, as pyogrio wrote it."""

import sqlite3

import numpy as np
import pyogrio
import pytest
import shapely
from pyogrio.raw import write as pyogrio_write
from pyproj import CRS

from tilewise.shared.errors import TilewiseError
from tilewise.sources import coverage_gpkg

BOX = shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])
HOLED = shapely.MultiPolygon(
    [shapely.box(0, 0, 1, 1), shapely.Polygon([(2, 2), (3, 2), (3, 3), (2, 2)], [[(2.5, 2.2), (2.9, 2.2), (2.9, 2.6)]])]
)
CRSS = [CRS.from_epsg(e) for e in (4326, 3857, 25832, 2056, 3031)] + [
    CRS.from_proj4("+proj=tmerc +lon_0=9 +k=0.9996 +x_0=500000 +ellps=GRS80 +units=m +no_defs")
]


def _dump(path):
    with sqlite3.connect(path) as db:
        return list(db.iterdump()), db.execute("PRAGMA user_version").fetchone()


@pytest.mark.parametrize("crs", CRSS, ids=["4326", "3857", "25832", "2056", "3031", "proj-string"])
@pytest.mark.parametrize("geom", [HOLED, shapely.MultiPolygon()], ids=["polygons", "empty"])
def test_the_geopackage_holds_what_pyogrio_wrote(tmp_path, crs, geom):
    ours, theirs = tmp_path / "ours.gpkg", tmp_path / "theirs.gpkg"
    coverage_gpkg.write(geom, crs, ours)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": coverage_gpkg.FIXED_GPKG_DATE})
    pyogrio_write(
        theirs,
        geometry=np.array([geom.wkb], dtype=object),
        field_data=[],
        fields=[],
        layer="union",
        driver="GPKG",
        geometry_type="MultiPolygon",
        crs=crs.to_wkt(),
        GEOMETRY_NAME="geom",
        SPATIAL_INDEX="NO",
    )
    assert _dump(ours) == _dump(theirs)  # every table and row, and the GeoPackage version
    info = pyogrio.read_info(ours, layer="union")
    assert (info["features"], info["geometry_type"], info["geometry_name"]) == (1, "MultiPolygon", "geom")
    assert shapely.from_wkb(pyogrio.raw.read(ours)[2][0]).equals_exact(geom, 0)
    again = tmp_path / "again.gpkg"
    coverage_gpkg.write(geom, crs, again)
    assert again.read_bytes() == ours.read_bytes()  # reproducible


def test_a_failed_write_keeps_the_file_before_and_leaves_no_temporary(tmp_path):
    class NotACRS:
        def to_wkt(self):
            return "not a CRS"

    path = tmp_path / "c.gpkg"
    coverage_gpkg.write(BOX, CRS.from_epsg(4326), path)
    good = path.read_bytes()
    with pytest.raises(TilewiseError, match=r"c\.tmp\.gpkg: GDAL could not read the CRS of"):
        coverage_gpkg.write(BOX, NotACRS(), path)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["c.gpkg"]


def test_a_folder_where_the_file_goes_is_a_clear_error(tmp_path):
    (tmp_path / "c.gpkg").mkdir()
    with pytest.raises(TilewiseError, match="c.gpkg: cannot put the coverage GeoPackage in place"):
        coverage_gpkg.write(BOX, CRS.from_epsg(4326), tmp_path / "c.gpkg")
    assert not list(tmp_path.glob("*.tmp.gpkg"))


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(TilewiseError, match=str(tmp_path / "nope")):
        coverage_gpkg.write(BOX, CRS.from_epsg(4326), tmp_path / "nope" / "c.gpkg")
