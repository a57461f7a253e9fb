import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from tilewise.shared.errors import FileFailure
from tilewise.sources.raster_describe import describe
from tilewise.sources.raster_find import find_rasters
from tilewise.sources.rasters import Piece, plan_pieces, window_is_empty, write_cog
from tilewise.sources.recipe import Recipe
from tilewise_demo.rasters import write_band

from conftest import shared
from support.rasterchecks import assert_mapterhorn_cog, assert_same_pixels, expected_bounds_row, valid_area

# Every elevation format of the shared MANIFEST, with the recipe it needs (ASC and XYZ carry no CRS).
FORMATS = [
    ("elevation/geotiff/dem-hills.tiff", Recipe()),
    ("elevation/geotiff/storml_elev_orig.tif", Recipe()),
    ("elevation/asc/SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.asc", Recipe(crs="EPSG:4326")),
    ("elevation/asc/west_bijou_escarpment_snippet.asc", Recipe(crs="EPSG:4326")),
    ("elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz", Recipe(crs="EPSG:2056")),
    ("elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1197.xyz", Recipe(crs="EPSG:2056")),
    ("elevation/dted/n43.dt0", Recipe()),
    ("elevation/dted/n00_e006_3arc_v2.dt1", Recipe()),
    ("elevation/aig/aigrid_sta_24bytes/teststa", Recipe()),
    (
        "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/GRANULE/"
        "L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m/T29UNU_20221005T115411_B04_60m.jp2",
        Recipe(),
    ),
]


@pytest.mark.parametrize("rel, recipe", FORMATS, ids=[f[0].rsplit("/", 1)[-1][:40] for f in FORMATS])
def test_every_format_becomes_a_faithful_cog(tmp_path, rel, recipe):
    src = shared(rel)
    (piece,) = plan_pieces(src, recipe)
    assert piece.name == (src.name if src.is_dir() else src.stem) + ".tif"
    out = tmp_path / piece.name
    write_cog(piece, recipe, out, tmp_path)
    assert_mapterhorn_cog(out)
    assert_same_pixels(out, src)
    with rasterio.open(out) as ds:
        if recipe.crs:
            assert ds.crs == rasterio.crs.CRS.from_user_input(recipe.crs)
    row, geom, _ = describe(out)
    assert (row["left"], row["bottom"], row["right"], row["top"], row["width"], row["height"]) == expected_bounds_row(
        out
    )
    assert geom.is_valid
    assert geom.area == pytest.approx(valid_area(out), rel=1e-9)


def test_hgt_inside_its_zip_and_no_crs_failure(tmp_path):
    import zipfile

    with zipfile.ZipFile(shared("elevation/hgt/N10W110.hgt.zip")) as zf:
        zf.extractall(tmp_path)
    (hgt,) = find_rasters(tmp_path)
    write_cog(Piece(hgt, "N10W110.tif"), Recipe(), tmp_path / "N10W110.tif", tmp_path)
    assert_same_pixels(tmp_path / "N10W110.tif", hgt)
    asc = shared("elevation/asc/west_bijou_escarpment_snippet.asc")
    with pytest.raises(FileFailure, match=r"has no CRS; set `crs:` in the recipe"):
        write_cog(Piece(asc, "x.tif"), Recipe(), tmp_path / "x.tif", tmp_path)


def _raster(path, data, transform, nodata=None, crs="EPSG:25832"):
    return write_band(path, data, crs, transform, nodata)


def test_slices_follow_mapterhorn_names_and_skip_empty_tiles(tmp_path):
    data = np.random.default_rng(1).uniform(0, 100, (700, 1300)).astype("float32")
    data[512:, :512] = -9999  # one whole slice without data
    src = _raster(tmp_path / "big.tif", data, from_origin(500000, 5600000, 1, 1), nodata=-9999)
    recipe = Recipe(slice_px=512)
    pieces = plan_pieces(src, recipe)
    assert [p.name for p in pieces] == [f"big_tile_{x}_{y}.tif" for x in (0, 512, 1024) for y in (0, 512)]
    kept = [p for p in pieces if not window_is_empty(p, recipe)]
    assert "big_tile_0_512.tif" not in [p.name for p in kept] and len(kept) == 5
    for p in kept:
        write_cog(p, recipe, tmp_path / p.name, tmp_path)
        assert_same_pixels(tmp_path / p.name, src, window=p.window)
        with rasterio.open(tmp_path / p.name) as ds:
            assert ds.bounds.left == 500000 + p.window.col_off and ds.bounds.top == 5600000 - p.window.row_off


def test_nodata_assignment_with_and_without_force(tmp_path):
    data = np.array([[0, 1], [2, -5]], dtype="float32")
    has = _raster(tmp_path / "has.tif", data, from_origin(0, 2, 1, 1), nodata=-5)
    none = _raster(tmp_path / "none.tif", data, from_origin(0, 2, 1, 1))
    for src, recipe, expected in [
        (has, Recipe(nodata=0), -5),
        (has, Recipe(nodata=0, force_nodata=True), 0),
        (none, Recipe(nodata=0), 0),
    ]:
        write_cog(Piece(src, "o.tif"), recipe, tmp_path / "o.tif", tmp_path)
        with rasterio.open(tmp_path / "o.tif") as ds:
            assert ds.nodata == expected
        assert_same_pixels(tmp_path / "o.tif", src, nodata=expected)


def test_south_up_raster_needs_and_gets_an_orientation_fix(tmp_path):
    data = np.arange(12, dtype="float32").reshape(3, 4)
    src = _raster(tmp_path / "s.tif", data, Affine(10, 0, 1000, 0, 10, 2000))  # rows run south to north
    with pytest.raises(FileFailure, match="fix_orientation: true"):
        write_cog(Piece(src, "o.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    write_cog(Piece(src, "o.tif"), Recipe(fix_orientation=True), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.transform.e < 0 and ds.bounds == (1000, 2000, 1040, 2030)
        np.testing.assert_array_equal(ds.read(1), data[::-1])


def test_bounds_row_swaps_left_and_right_across_the_antimeridian(tmp_path):
    data = np.ones((10, 10), dtype="float32")
    src = _raster(tmp_path / "dateline.tif", data, from_origin(179.5, 61, 0.1, 0.1), crs="EPSG:4326")
    write_cog(Piece(src, "d.tif"), Recipe(), tmp_path / "d.tif", tmp_path)
    row, _, _ = describe(tmp_path / "d.tif")
    assert row["left"] == pytest.approx(20037508.34, abs=1) and row["right"] == pytest.approx(-20032448.37, abs=1)
    assert (row["width"], row["height"]) == (10, 10)
