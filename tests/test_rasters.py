import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import Affine, from_origin

from tilewise.shared.errors import FileFailure
from tilewise.sources.convert_set import gdal_env
from tilewise.sources.raster_describe import describe
from tilewise.sources.raster_find import open_rasters
from tilewise.sources.rasters import Piece, plan_pieces, window_is_empty, write_cog, write_output
from tilewise.sources.recipe import Recipe
from tilewise_demo.rasters import write_band

from conftest import REPO, shared
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
]
# A JPEG2000 raster, but reflectance (up to 17,360): no elevation, refused by the range rule below
S2_B04 = (
    "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/GRANULE/"
    "L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m/T29UNU_20221005T115411_B04_60m.jp2"
)


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
    with rasterio.open(out) as ds:
        row, geom, _ = describe(ds)
    assert (row["left"], row["bottom"], row["right"], row["top"], row["width"], row["height"]) == expected_bounds_row(
        out
    )
    assert geom.is_valid
    assert geom.area == pytest.approx(valid_area(out), rel=1e-9)


def test_hgt_inside_its_zip_and_no_crs_failure(tmp_path):
    import zipfile

    with zipfile.ZipFile(shared("elevation/hgt/N10W110.hgt.zip")) as zf:
        zf.extractall(tmp_path)
    ((hgt, _),) = open_rasters(tmp_path)
    write_cog(Piece(hgt, "N10W110.tif"), Recipe(), tmp_path / "N10W110.tif", tmp_path)
    assert_same_pixels(tmp_path / "N10W110.tif", hgt)
    asc = shared("elevation/asc/west_bijou_escarpment_snippet.asc")
    with pytest.raises(FileFailure, match=r"has no CRS; set `crs:` in the recipe"):
        write_cog(Piece(asc, "x.tif"), Recipe(), tmp_path / "x.tif", tmp_path)


def _remote(name: str):
    """A file list's line of a download `name` from a web server (a chunk's member)."""
    from tilewise.sources.catalog import FileEntry

    return FileEntry(None, f"https://example.org/{name}", name, name)


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


# every axis-aligned orientation: mirrored rows and/or columns (a 180° rotation is both), and transposed
_ORIENTATIONS = {
    f"{'T' if transposed else ''}a{sa:+d}e{se:+d}": (
        Affine(0, 10 * sa, 1000, -10 * se, 0, 2000) if transposed else Affine(10 * sa, 0, 1000, 0, -10 * se, 2000)
    )
    for transposed in (False, True)
    for sa in (1, -1)
    for se in (1, -1)
    if transposed or (sa, se) != (1, 1)
}


@pytest.mark.parametrize("transform", _ORIENTATIONS.values(), ids=_ORIENTATIONS.keys())
@pytest.mark.parametrize("nodata", [None, -9999])
def test_orientation_fix_puts_every_pixel_where_the_producer_put_it(tmp_path, transform, nodata):
    """Each output pixel holds the source pixel under its centre, on a north-up grid with the same
    footprint (GDAL's own warp keeps a negative pixel width for mirrored columns)."""
    data = np.random.default_rng(3).integers(100, 1000, (5, 7)).astype("float32")
    src = _raster(tmp_path / "s.tif", data, transform, nodata=nodata)
    write_cog(Piece(src, "o.tif"), Recipe(fix_orientation=True), tmp_path / "o.tif", tmp_path)
    with rasterio.open(src) as s, rasterio.open(tmp_path / "o.tif") as o:
        assert o.transform.a > 0 and o.transform.e < 0 and o.transform.b == o.transform.d == 0
        assert np.allclose(o.bounds, s.bounds if transform.a > 0 and transform.e < 0 else _footprint(s))
        out, valid = o.read(1), o.dataset_mask() > 0
        rows, cols = np.indices(out.shape)
        x, y = rasterio.transform.xy(o.transform, rows.ravel(), cols.ravel())
        src_rows, src_cols = rasterio.transform.rowcol(s.transform, x, y)
        assert valid.all() and (out.ravel() == data[src_rows, src_cols]).all()


def _footprint(ds):
    corners = [ds.transform @ c for c in [(0, 0), (ds.width, 0), (0, ds.height), (ds.width, ds.height)]]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


@pytest.mark.parametrize(
    "transform", [Affine(10, 0, 1000, 0, 10, 2000), Affine.rotation(30) * Affine(10, 0, 0, 0, -10, 0)]
)
def test_a_raster_not_north_up_with_slices_asked_fails_naming_both_keys_and_the_fix(tmp_path, transform):
    src = _raster(tmp_path / "r.tif", np.ones((8, 8), "float32"), transform)
    recipe = Recipe(fix_orientation=True, slice_px=512)
    (piece,) = plan_pieces(src, recipe)
    with pytest.raises(FileFailure, match=r"both `fix_orientation` and `slice_px`.*gdalwarp r.tif north_up.tif"):
        write_cog(piece, recipe, tmp_path / "o.tif", tmp_path)


X_MAX = 20037508.342789244


def _x(lon):
    return lon * X_MAX / 180


def _y(lat):
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137


# (case, crs, transform, size, expected (left, bottom, right, top) or None: no row, outside Web Mercator)
POLE_3031 = from_origin(-500000, 500000, 10000, 10000)  # ±500 km around the south pole
BOUNDS_CASES = [
    ("crosses at 180 in lon/lat", "EPSG:4326", from_origin(179.5, 61, 0.1, 0.1), (10, 10), (179.5, 60, -179.5, 61)),
    # a Copernicus GLO-30 W180 tile: its origin is half a pixel west of −180
    (
        "glo30 W180 half a pixel over",
        "EPSG:4326",
        from_origin(-180.000138888889, 52.000138888889, 1 / 3600, 1 / 3600),
        (3600, 3600),
        (179.999861111111, 51.000138888889, -179.000138888889, 52.000138888889),
    ),
    (
        "UTM 60N tile across 180",
        "EPSG:32660",
        from_origin(600000, 6100000, 1000, 1000),
        (100, 100),
        (178.5307, 54.1092, -179.8724, 55.0367),
    ),
    (
        "EPSG:3031 tile across 180, no pole",
        "EPSG:3031",
        from_origin(-100000, -1500000, 1000, 1000),
        (200, 500),
        (176.1859, -76.2581, -176.1859, -71.7201),
    ),
    ("whole globe", "EPSG:4326", from_origin(-180, 90, 1, 1), (360, 180), (-180, -90, 180, 90)),
    # tiles of a 0…360° grid: an edge on ±180°, and one whole half past it
    ("west edge on +180, past it", "EPSG:4326", from_origin(180, 10, 0.2, 0.2), (100, 50), (-180, 0, -160, 10)),
    ("east edge on -180, past it", "EPSG:4326", from_origin(-200, 10, 0.2, 0.2), (100, 50), (160, 0, 180, 10)),
    ("180…360", "EPSG:4258", from_origin(180, 10, 1, 1), (180, 10), (-180, 0, 0, 10)),
    ("190…200, wholly past +180", "EPSG:4326", from_origin(190, 10, 1, 1), (10, 10), (-170, 0, -160, 10)),
    ("reaches the north pole", "EPSG:4326", from_origin(10, 90, 0.5, 0.5), (4, 20), (10, 80, 12, 90)),
    ("south pole inside (EPSG:3031)", "EPSG:3031", POLE_3031, (100, 100), (-180, -90, 180, -83.4987)),
    ("north pole inside (EPSG:3413)", "EPSG:3413", from_origin(-500000, 500000, 10000, 10000), (100, 100), None),
    ("entirely beyond 85.0511°N", "EPSG:4326", from_origin(0, 90, 0.1, 0.1), (10, 40), "outside"),
]


@pytest.mark.parametrize("case, crs, transform, size, expected", BOUNDS_CASES, ids=[c[0] for c in BOUNDS_CASES])
def test_bounds_stay_inside_web_mercator(tmp_path, case, crs, transform, size, expected):
    """Clamped at ±85.0511°, never swapped for a full-width raster, true edges (left > right) across ±180."""
    from tilewise.shared.web_mercator import lonlat_bounds
    from tilewise.sources.raster_describe import bounds_row

    src = _raster(tmp_path / "r.tif", np.ones(size[::-1], dtype="float32"), transform, crs=crs)
    with rasterio.open(src) as ds:
        if expected == "outside":
            assert lonlat_bounds(ds.crs, ds.bounds) is None
            return
        row = bounds_row(ds)
    got = (row["left"], row["bottom"], row["right"], row["top"])
    assert all(math.isfinite(v) and abs(v) <= X_MAX for v in got)
    if expected is None:  # the north pole: every longitude, up to the Mercator limit
        assert (got[0], got[2], got[3]) == (-X_MAX, X_MAX, X_MAX) and got[1] > _y(83)
        return
    west, south, east, north = expected
    lat = lambda v: max(min(v, 85.0511287798), -85.0511287798)  # noqa: E731
    want = (_x(west), _y(lat(south)), _x(east), _y(lat(north)))
    assert got == pytest.approx(want, abs=50)  # 50 m: pyproj's ellipsoid tweaks and 4-decimal expectations
    assert (got[0] > got[2]) == (west > east)  # only a real crossing has left > right


def test_bounds_that_disagree_with_their_longitudes_fail_loudly(tmp_path, monkeypatch):
    """A world-wide EPSG:3857 row for a raster 20° wide is never written (Mapterhorn's arithmetic gone wrong)."""
    from tilewise.sources import raster_describe

    monkeypatch.setattr(raster_describe, "plain_bounds_3857", lambda crs, b: (-X_MAX + 1, 0, X_MAX, 1e6))
    src = _raster(tmp_path / "r.tif", np.ones((10, 20), "float32"), from_origin(10, 10, 1, 1), crs="EPSG:4326")
    with rasterio.open(src) as ds, pytest.raises(FileFailure, match=r"r.tif: its bounds in EPSG:3857 .* are not"):
        raster_describe.bounds_row(ds)


def _band_masked_vrt(folder):
    """A producer's VRT whose band has its own mask (not per dataset), in files named relative to it."""
    folder.mkdir()
    _raster(folder / "d.tif", np.full((20, 20), 5, "uint16"), from_origin(0, 100, 1, 1))
    mask = np.full((20, 20), 255, "uint8")
    mask[:5] = 0
    with rasterio.open(folder / "m.tif", "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8") as ds:
        ds.write(mask, 1)
    source = (
        '<SimpleSource><SourceFilename relativeToVRT="1">{}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>'
    )
    (folder / "p.vrt").write_text(
        '<VRTDataset rasterXSize="20" rasterYSize="20"><SRS>EPSG:25832</SRS>'
        "<GeoTransform>500000,1,0,5600100,0,-1</GeoTransform>"
        f'<VRTRasterBand dataType="UInt16" band="1">{source.format("d.tif")}'
        f'<MaskBand><VRTRasterBand dataType="Byte">{source.format("m.tif")}</VRTRasterBand></MaskBand>'
        "</VRTRasterBand></VRTDataset>"
    )
    return folder / "p.vrt"


@pytest.mark.parametrize("recipe", [Recipe(), Recipe(nodata=0), Recipe(crs="EPSG:25833", slice_px=512)])
def test_a_band_mask_becomes_the_cogs_mask(tmp_path, recipe):
    vrt = _band_masked_vrt(tmp_path / "in")
    (piece,) = plan_pieces(vrt, recipe)
    write_cog(piece, recipe, tmp_path / "o.tif", tmp_path / "scratch")
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert (ds.dataset_mask() == 0).sum() == 100 and ds.nodata == recipe.nodata


def test_a_nodata_the_band_cannot_hold_fails_loudly(tmp_path):
    src = _raster(tmp_path / "u.tif", np.ones((4, 4), "uint16"), from_origin(0, 4, 1, 1))
    with pytest.raises(FileFailure, match=r"u.tif: its uint16 band cannot hold the recipe's nodata -9999"):
        write_cog(Piece(src, "o.tif"), Recipe(nodata=-9999), tmp_path / "o.tif", tmp_path)


OLD_PRJ = (  # an ArcInfo-era .prj, as ArcInfo Workstation and ArcView 3 wrote them
    "Projection    UTM\nZone          32\nDatum         WGS84\nZunits        {z}\nUnits         METERS\n"
    "Spheroid      WGS84\nXshift        0.0000000000\nYshift        0.0000000000\nParameters\n"
)


def _ascii_grid_with_prj(folder: Path, prj: str, name: str = "dem") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.asc").write_text(
        "ncols 3\nnrows 2\nxllcorner 500000\nyllcorner 5600000\ncellsize 10\nNODATA_value -9999\n1 2 3\n4 5 6\n"
    )
    (folder / f"{name}.prj").write_text(prj)
    return folder / f"{name}.asc"


@pytest.mark.parametrize("zunits", ["FEET", "feet", "DECIMETERS", "0.3048"])
def test_an_old_esri_prj_giving_heights_in_other_units_fails(tmp_path, zunits):
    """An ArcInfo-era `.prj` says its heights' unit on a `Zunits` line; GDAL reads the rest as the CRS
    and drops it, so heights in feet shipped as metres, exit 0."""
    src = _ascii_grid_with_prj(tmp_path / "in", OLD_PRJ.format(z=zunits))
    with pytest.raises(FileFailure, match=rf"dem.asc: band 1 does not hold metres .*Zunits {zunits} in dem.prj"):
        write_cog(Piece(src, "o.tif"), Recipe(), tmp_path / "o.tif", tmp_path)


@pytest.mark.parametrize("zunits", ["NO", "METERS", "meters", None])
def test_an_old_esri_prj_of_metres_or_no_height_unit_converts(tmp_path, zunits):
    prj = OLD_PRJ.format(z=zunits) if zunits else OLD_PRJ.replace("Zunits        {z}\n", "")
    src = _ascii_grid_with_prj(tmp_path / "in", prj)
    write_cog(Piece(src, "o.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.crs.to_epsg() == 32632 and ds.read(1).tolist() == [[1, 2, 3], [4, 5, 6]]


def _half_float_tif(path, nodata, void):
    """A GeoTIFF of 16-bit floats (GDAL: Float32 with NBITS=16) whose voids were written as `void`."""
    data = np.random.default_rng(2).uniform(100, 900, (20, 30)).astype("float32")
    data[3:6, 4:9] = void
    with rasterio.open(
        path, "w", driver="GTiff", width=30, height=20, count=1, dtype="float32", nbits=16,
        crs="EPSG:25832", transform=from_origin(500000, 5600000, 2, 2), nodata=nodata,
    ) as ds:  # fmt: skip
        ds.write(data, 1)
    return path


@pytest.mark.parametrize(
    "nodata, recipe, stored",
    [
        (-9999.0, Recipe(), "-10000"),  # the commonest void value: 16 bits hold it as -10000, an elevation
        (-32767.0, Recipe(), "-32768"),
        (-9999.0, Recipe(nodata=-1111.1, force_nodata=True), "-1111"),  # a recipe's value too
        (None, Recipe(nodata=-9999), "-10000"),
    ],
)
def test_a_nodata_16_bit_floats_cannot_hold_fails_naming_the_value_they_hold(tmp_path, nodata, recipe, stored):
    """A band of 16-bit floats stores its voids as the nearest such float (-9999 as -10000): GDAL's mask
    compares them with the declared -9999 and finds them valid, so they shipped as elevations of
    -10,000 m, inside the Earth's range, exit 0."""
    src = _half_float_tif(tmp_path / "h.tif", nodata, recipe.nodata if recipe.nodata is not None else nodata)
    with pytest.raises(FileFailure, match=rf"h.tif: band 1 holds 16-bit floats, which store the nodata .* as {stored}"):
        write_cog(Piece(src, "o.tif"), recipe, tmp_path / "o.tif", tmp_path)


@pytest.mark.parametrize("nodata", [-32768.0, -10000.0, float("nan"), 0.0, -3.4028234663852886e38])
def test_a_nodata_16_bit_floats_hold_masks_their_voids(tmp_path, nodata):
    """Held exactly, or beyond their range (stored as -inf, which is never valid): the voids are no data."""
    src = _half_float_tif(tmp_path / "h.tif", nodata, nodata)
    write_cog(Piece(src, "o.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        row, geom, _ = describe(ds)
        assert geom.area == pytest.approx((600 - 15) * 4)


@pytest.mark.parametrize("nodata", [float("nan"), None, -9999.0])
def test_nan_and_inf_are_never_valid(tmp_path, nodata):
    data = np.ones((600, 700), "float32")
    data[:, 512:] = np.nan  # the second slice column holds nothing else
    data[:4, :4], data[4:6, :4] = np.inf, -np.inf
    data[10:12, :3] = -9999
    src = _raster(tmp_path / "n.tif", data, from_origin(500000, 5600000, 1, 1), nodata=nodata)
    recipe = Recipe(slice_px=512)
    pieces = [p for p in plan_pieces(src, recipe) if not window_is_empty(p, recipe)]
    assert [p.name for p in pieces] == ["n_tile_0_0.tif", "n_tile_0_512.tif"]
    write_cog(Piece(src, "n.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        _, geom, _ = describe(ds)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert (ds.nodata is None and nodata is None) or ds.nodata == nodata or np.isnan(ds.nodata)
    assert geom.area == 600 * 512 - 16 - 8 - (6 if nodata == -9999 else 0)


def _as_downstream_warps_it(cog: Path) -> np.ndarray:
    """Mapterhorn's aggregation_reproject: gdalwarp to Web Mercator with `-dstnodata -9999`, the source's
    own nodata (or none) as it declares it."""
    from rasterio.warp import calculate_default_transform, reproject

    with rasterio.open(cog) as ds:
        transform, width, height = calculate_default_transform(ds.crs, "EPSG:3857", ds.width, ds.height, *ds.bounds)
        out = np.full((height, width), -9999, "float32")
        reproject(rasterio.band(ds, 1), out, dst_transform=transform, dst_crs="EPSG:3857", dst_nodata=-9999)
    return out


def _nan_holes(dtype: str, where: str) -> np.ndarray:
    data = (np.arange(600 * 700).reshape(600, 700) % 977 / 3).astype(dtype)
    if where == "hole":
        data[200:260, 300:420] = np.nan
    elif where == "collar":
        data[:, :37], data[-20:, :] = np.nan, np.nan
    elif where == "speckle":
        data[np.random.default_rng(5).random(data.shape) < 0.01] = np.nan
    return data


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where", ["hole", "collar", "speckle"])
@pytest.mark.parametrize("keep_original", [False, True])
def test_nan_voids_without_a_declared_nodata_are_declared_in_the_cog(tmp_path, dtype, where, keep_original):
    """NaN voids of a raster without nodata: Mapterhorn's downstream gdalwarp read them as data (NaN in
    its tile, hiding a lower-priority source there). The COG declares NaN as its nodata; pixels are kept."""
    data = _nan_holes(dtype, where)
    src = _raster(tmp_path / "n.tif", data, from_origin(500000, 5600000, 1, 1))
    written = write_output(Piece(src, "n.tif"), Recipe(keep_original=keep_original), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as cog:
        assert cog.nodata is not None and math.isnan(cog.nodata)
        read = cog.read(1)
    assert np.array_equal(np.isnan(read), np.isnan(data))
    assert np.allclose(read, data, atol=0.001, equal_nan=True)
    assert not np.isnan(_as_downstream_warps_it(tmp_path / "o.tif")).any()
    assert keep_original == ("NaN without a declared nodata" in (written.warning or ""))


@pytest.mark.parametrize("nodata", [None, -9999.0])
def test_a_float_raster_without_nan_voids_keeps_its_nodata_as_mapterhorn_does(tmp_path, nodata):
    data = _nan_holes("float32", "none")
    src = _raster(tmp_path / "n.tif", data, from_origin(500000, 5600000, 1, 1), nodata=nodata)
    write_cog(Piece(src, "n.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as cog:
        assert cog.nodata == nodata


def test_only_the_slices_holding_nan_voids_declare_them(tmp_path):
    data = _nan_holes("float32", "none")
    data[550:, 600:] = np.nan  # in the last slice only
    src = _raster(tmp_path / "n.tif", data, from_origin(500000, 5600000, 1, 1))
    recipe = Recipe(slice_px=512)
    declared = {}
    for piece in plan_pieces(src, recipe):
        write_cog(piece, recipe, tmp_path / piece.name, tmp_path)
        with rasterio.open(tmp_path / piece.name) as cog:
            declared[piece.name] = cog.nodata is not None and math.isnan(cog.nodata)
    assert declared == {
        "n_tile_0_0.tif": False,
        "n_tile_0_512.tif": False,
        "n_tile_512_0.tif": False,
        "n_tile_512_512.tif": True,
    }


@pytest.mark.parametrize("nodata", [None, 0])
def test_orientation_fix_of_a_raster_with_an_alpha_band(tmp_path, nodata):
    """The alpha band stays (gdalwarp's rule) and marks the fill; masked garbage never becomes data."""
    data = np.stack([np.full((64, 64), 7, "uint16"), np.full((64, 64), 255, "uint16")])
    data[1, :10], data[0, :10] = 0, 999
    rotated = Affine(0.94, 0.34, 506000, 0.34, -0.94, 5600000)
    profile = dict(driver="GTiff", width=64, height=64, count=2, dtype="uint16", crs="EPSG:25832", transform=rotated)
    with rasterio.open(tmp_path / "a.tif", "w", alpha="yes", **profile) as ds:
        ds.write(data)
    write_cog(
        Piece(tmp_path / "a.tif", "o.tif"), Recipe(fix_orientation=True, nodata=nodata), tmp_path / "o.tif", tmp_path
    )
    with rasterio.open(tmp_path / "o.tif") as ds:
        valid = ds.dataset_mask() > 0
        assert ds.transform.b == 0 and ds.colorinterp[1] == rasterio.enums.ColorInterp.alpha
        assert (ds.read(1)[valid] == 7).all() and 0 < valid.sum() < valid.size


def _strip_cases(folder):
    """Rasters of every validity class the coverage rule knows, each in a few shapes of invalid pixels."""
    rng = np.random.default_rng(7)
    t = from_origin(500000, 5600000, 1, 1)
    ragged = np.ones((300, 260), "float32")
    for r in range(300):  # a ragged collar on every side, as a producer's clipped tile has
        ragged[r, : rng.integers(0, 40)] = -9999
        ragged[r, 260 - rng.integers(0, 40) :] = -9999
    ragged[: rng.integers(5, 30)] = -9999
    ragged[120:180, 100:140] = -9999  # a hole
    speckle = np.where(rng.random((97, 61)) < 0.45, np.float32(np.nan), np.float32(3))  # diagonal touches
    speckle[40:44, :] = np.inf
    rows = np.ones((200, 64), "int16")
    rows[50:100] = 0  # whole invalid rows: a strip without data between two with data
    mask = np.full((90, 70), 255, "uint8")
    mask[::3, ::5] = 0
    masked = folder / "masked.tif"
    with rasterio.open(
        masked, "w", driver="GTiff", width=70, height=90, count=1, dtype="uint16", crs="EPSG:25832", transform=t
    ) as ds:
        ds.write(np.full((90, 70), 9, "uint16"), 1)
        ds.write_mask(mask)
    return [
        write_band(folder / "ragged.tif", ragged, "EPSG:25832", t, -9999, tiled=True, blockxsize=32, blockysize=32),
        _raster(folder / "speckle.tif", speckle, t, nodata=3.5),
        _raster(folder / "rows.tif", rows, t, nodata=0),
        _raster(folder / "full.tif", np.ones((40, 30), "float32"), t, nodata=0),
        _raster(folder / "empty.tif", np.zeros((40, 30), "float32"), t, nodata=0),
        masked,
        shared("elevation/geotiff/storml_elev_orig.tif"),
        shared("elevation/dted/n43.dt0"),
    ]


@pytest.mark.parametrize("max_pixels", [1, 700, 5000])
def test_coverage_strip_by_strip_equals_one_read(tmp_path, max_pixels):
    """A raster too large to read at once is polygonized in strips: the same polygons, vertex for vertex."""
    from tilewise.sources.raster_describe import any_valid, coverage, strips

    for path in _strip_cases(tmp_path):
        with rasterio.open(path) as ds:
            whole = coverage(ds)
            by_strips = coverage(ds, max_pixels=max_pixels)
            assert len(list(strips(ds, max_pixels=max_pixels))) > (1 if ds.width * ds.height > max_pixels else 0)
            assert by_strips.is_valid and by_strips.geom_type == whole.geom_type, path.name
            assert shapely.equals(by_strips, whole) or whole.is_empty and by_strips.is_empty, path.name
            assert shapely.normalize(by_strips).equals_exact(shapely.normalize(whole), 0), path.name
            assert any_valid(ds) == (not whole.is_empty)


# CRSs of European state DEMs and others, each with its area of use (GDAL picks transformations by area)
_CRS_AREAS = {
    25832: (300000, 5300000, 800000, 6100000),
    2056: (2480000, 1070000, 2840000, 1300000),
    27700: (0, 0, 650000, 1200000),
    31287: (100000, 280000, 700000, 590000),
    3035: (2600000, 1400000, 6500000, 5400000),
    28992: (10000, 300000, 280000, 620000),
    5514: (-900000, -1250000, -430000, -930000),
    3763: (-120000, -300000, 160000, 280000),
    32618: (200000, 4000000, 800000, 7000000),
    2193: (1100000, 4700000, 2100000, 6200000),
    4326: (-170, -60, 170, 80),
    4269: (-120, 25, -70, 50),
}


@pytest.mark.parametrize("epsg", list(_CRS_AREAS))
def test_plain_bounds_equal_rasterios_transform_bounds_bit_for_bit(epsg):
    """bounds.csv keeps Mapterhorn's source_bounds.py values exactly, by a cheaper route."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    from tilewise.sources.raster_describe import plain_bounds_3857

    rng = np.random.default_rng(epsg)
    x0, y0, x1, y1 = _CRS_AREAS[epsg]
    crs = CRS.from_epsg(epsg)
    for _ in range(12):
        w = (x1 - x0) * 10 ** rng.uniform(-5, -1)
        x, y = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - w)
        if rng.random() < 0.5:  # whole-metre corners, as most producers' grids have
            x, y, w = round(x), round(y), max(round(w), 1)
        bounds = (x, y, x + w, y + w * rng.uniform(0.5, 2))
        assert plain_bounds_3857(crs, bounds) == transform_bounds(crs, "EPSG:3857", *bounds), bounds


# --- a raster reads only files of its own download -----------------------------------------------


def _vrt(sources: str, tag="SourceFilename") -> str:
    """A 20×20 VRT whose band reads `sources` (`(text, relativeToVRT)` pairs separated by `|`)."""
    simple = "".join(
        f'<SimpleSource><{tag} relativeToVRT="{rel}">{text}</{tag}><SourceBand>1</SourceBand></SimpleSource>'
        for text, rel in (s.rsplit("@", 1) for s in sources.split("|"))
    )
    return (
        '<VRTDataset rasterXSize="20" rasterYSize="20"><SRS>EPSG:25832</SRS>'
        "<GeoTransform>500000,1,0,5600100,0,-1</GeoTransform>"
        f'<VRTRasterBand dataType="UInt16" band="1">{simple}</VRTRasterBand></VRTDataset>'
    )


@pytest.mark.parametrize(
    "files, offending",
    [
        ({"dem.vrt": _vrt("{outside}@0")}, "{outside}"),
        ({"sub/dem.vrt": _vrt("../../outside.tif@1")}, "../../outside.tif"),
        ({"dem.vrt": _vrt("tile.tif@1|{url}@0")}, "{url}"),
        ({"dem.vrt": _vrt("WMS:{url}@0")}, "WMS:{url}"),
        ({"dem.vrt": _vrt("tile.tif@0")}, "tile.tif"),  # relative to the working folder, not the VRT
        ({"a.vrt": _vrt("b.vrt@1"), "b.vrt": _vrt("{outside}@0")}, "{outside}"),  # the outer one is opened first
        ({"x.wms": "<GDAL_WMS><Service name='TMS'><ServerUrl>{url}</ServerUrl></Service></GDAL_WMS>"}, "WMS"),
        # behind a name never opened as a raster (a sidecar's suffix): checked all the same
        ({"a.vrt": _vrt("inner.xml@1"), "inner.xml": _vrt("{outside}@0")}, "{outside}"),
        (
            {
                "a.vrt": _vrt("s.xml@1"),
                "s.xml": "<GDAL_WMS><Service name='TMS'><ServerUrl>{url}</ServerUrl></Service></GDAL_WMS>",
            },
            "WMS",
        ),
    ],
    ids=["absolute", "dotdot", "vsicurl", "wms-string", "cwd-relative", "nested", "wms-file", "via-xml", "wms-xml"],
)
def test_a_raster_that_reads_outside_its_download_is_refused_before_gdal_reads(tmp_path, http, files, offending):
    _raster(tmp_path / "outside.tif", np.ones((20, 20), "uint16"), from_origin(0, 100, 1, 1))
    http.files["/x.tif"] = (tmp_path / "outside.tif").read_bytes()
    url = "/vsicurl/" + http.url("x.tif")
    root = tmp_path / "unpacked" / "dgm.zip"
    root.mkdir(parents=True)
    _raster(root / "tile.tif", np.ones((20, 20), "uint16"), from_origin(0, 100, 1, 1))
    for name, text in files.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text.format(outside=tmp_path / "outside.tif", url=url))
    with pytest.raises(FileFailure, match="refused: a raster may read only files of its own download") as err:
        list(open_rasters(root))
    member = next(name for name, text in files.items() if offending in text or "GDAL_WMS" in text)
    assert str(err.value).startswith(f"dgm.zip: {member} ")
    assert offending.format(outside=tmp_path / "outside.tif", url=url) in str(err.value)
    assert f"exclude: [{Path(member).name!r}]" in str(err.value)
    assert http.log == []  # nothing was fetched


def test_vrts_that_read_only_their_download_open_and_views_of_converted_rasters_are_skipped(tmp_path):
    from tilewise.sources.raster_find import judge, views

    root = tmp_path / "dgm.zip"
    (root / "tiles").mkdir(parents=True)
    for i in range(2):
        _raster(root / "tiles" / f"t{i}.tif", np.ones((20, 20), "uint16"), from_origin(500000 + 20 * i, 5600100, 1, 1))
    (root / "mosaic.vrt").write_text(_vrt("tiles/t0.tif@1|tiles/t1.tif@1"))
    (root / "of_mosaic.vrt").write_text(_vrt("mosaic.vrt@1"))
    (root / "raw.bin").write_bytes(np.ones((20, 20), "uint16").tobytes())  # raw data the VRT gives a grid to
    (root / "raw.vrt").write_text(
        '<VRTDataset rasterXSize="20" rasterYSize="20"><SRS>EPSG:25832</SRS><GeoTransform>500000,1,0,5600100,0,-1'
        '</GeoTransform><VRTRasterBand dataType="UInt16" band="1" subClass="VRTRawRasterBand">'
        '<SourceFilename relativeToVRT="1">raw.bin</SourceFilename><ImageOffset>0</ImageOffset><PixelOffset>2'
        "</PixelOffset><LineOffset>40</LineOffset><ByteOrder>LSB</ByteOrder></VRTRasterBand></VRTDataset>"
    )
    # an image without georeferencing (skipped): a mosaic of it and t0 is no view (it alone places that image's
    # pixels: skipping it lost them), nor is a VRT giving it a grid
    _raster(root / "tiles" / "nocrs.tif", np.ones((20, 20), "uint16"), Affine.identity(), crs=None)
    (root / "with_skipped.vrt").write_text(_vrt("tiles/t0.tif@1|tiles/nocrs.tif@1"))
    (root / "gives_grid.vrt").write_text(_vrt("tiles/nocrs.tif@1"))
    kept, opened = {}, {}
    for path, ds in open_rasters(root):
        opened[path] = {Path(f).resolve() for f in ds.files}
        notes, _ = judge(ds, str(path.relative_to(root)), None)
        if not any(n.kind == "skipped" for n in notes):
            kept[path] = opened[path]
    skipped = views(kept, root, opened)
    assert sorted(str(p.relative_to(root)) for p in kept if p not in skipped) == [
        "gives_grid.vrt",
        "raw.vrt",
        "tiles/t0.tif",
        "tiles/t1.tif",
        "with_skipped.vrt",
    ]
    assert skipped[root / "mosaic.vrt"].reason.startswith("a view of other rasters of this download (tiles/t0.tif, ")
    assert "(mosaic.vrt)" in skipped[root / "of_mosaic.vrt"].reason
    assert root / "with_skipped.vrt" not in skipped


@pytest.mark.parametrize(
    "band, srs, refused",
    [
        ("<Scale>0.1</Scale>", "EPSG:25832", "scale 0.1"),  # the tiles hold decimetres
        ("<Offset>-100</Offset>", "EPSG:25832", "offset -100"),
        ("<UnitType>ft</UnitType>", "EPSG:25832", "unit 'ft'"),
        ("", "EPSG:25832+5715", "depths"),  # MSL depth
        ("", "EPSG:25832+8228", "heights in foot"),
        ("<UnitType>m</UnitType>", "EPSG:25832+5783", None),  # DHHN92 height, metres
        ("", "EPSG:25832", None),
    ],
)
def test_a_mosaic_that_says_its_tiles_are_no_metres_fails_their_download(tmp_path, band, srs, refused):
    """A VRT mosaic beside its tiles is skipped as a view, and the tiles are converted: when the mosaic's band
    declares a scale, an offset, a unit or a vertical CRS the tiles do not carry, the producer says the tiles
    hold no metres, and they were shipped raw as metres (decimetres 4500 as 4500 m). Such a download fails."""
    from types import SimpleNamespace

    from tilewise.sources.convert_set import _elevation_rasters
    from tilewise.sources.raster_find import HeldOpen

    root = tmp_path / "dgm.zip"
    (root / "tiles").mkdir(parents=True)
    for i in range(2):
        _raster(
            root / "tiles" / f"t{i}.tif", np.full((20, 20), 4500, "uint16"), from_origin(500000 + 20 * i, 5600100, 1, 1)
        )
    mosaic = _vrt("tiles/t0.tif@1|tiles/t1.tif@1").replace('band="1">', f'band="1">{band}')
    (root / "mosaic.vrt").write_text(mosaic.replace("<SRS>EPSG:25832</SRS>", f"<SRS>{srs}</SRS>"))
    job = SimpleNamespace(recipe=Recipe())
    with HeldOpen() as held:
        if refused:
            with pytest.raises(FileFailure, match=rf"mosaic.vrt: band 1 does not hold metres as stored .*{refused}"):
                _elevation_rasters(job, root, "dgm.zip", [], held)
            return
        kept, notes, _ = _elevation_rasters(job, root, "dgm.zip", [], held)
    assert sorted(p.name for p in kept) == ["t0.tif", "t1.tif"]
    assert [n.raster for n in notes if n.kind == "skipped"] == ["mosaic.vrt"]


@pytest.mark.parametrize("image", ["PNG", "JPEG", "GTiff"])
def test_rasters_that_share_a_sidecar_are_no_views_of_each_other(tmp_path, image):
    """dem.tif and an image beside it (a hillshade dem.png, dem.jpg, or a second GeoTIFF dem.tiff)
    both read dem.wld: a shared sidecar carries no pixels, so neither is a view of the other (each was
    skipped as the other's view, and both were lost)."""
    from tilewise.sources.raster_find import views

    root = tmp_path / "tile.zip"
    root.mkdir()
    values = np.arange(64 * 64, dtype="float32").reshape(64, 64) + 100
    other = {"PNG": "dem.png", "JPEG": "dem.jpg", "GTiff": "dem.tiff"}[image]
    for name, driver, data in (("dem.tif", "GTiff", values), (other, image, (values % 256).astype("uint8"))):
        with rasterio.open(root / name, "w", driver=driver, width=64, height=64, count=1, dtype=data.dtype) as ds:
            ds.write(data, 1)
    (root / "dem.wld").write_text("1.0\n0\n0\n-1.0\n500000.5\n5600000.5\n")
    kept, opened = {}, {}
    with gdal_env():  # as a chunk opens them: sidecars are found whatever the environment says
        for path, ds in open_rasters(root):
            opened[path] = {Path(f).resolve() for f in ds.files}
            assert (root / "dem.wld").resolve() in opened[path], "GDAL reads the world file for both"
            kept[path] = opened[path]
    assert sorted(kept) == sorted([root / "dem.tif", root / other])
    assert views(kept, root, opened) == {}


# --- two rasters of one download with one output name: the advice keeps exactly one -----------------


@pytest.mark.parametrize(
    "first, second",
    [("dem.TIF", "dem.tif"), ("X.asc", "X.tif"), ("a/x.tif", "b/X.TIF"), ("K[1]*.TIF", "k[1]*.tif")],
)
def test_the_exclude_advised_for_a_collision_keeps_exactly_one_raster(first, second):
    from types import SimpleNamespace

    from tilewise.sources.convert_set import _collision_in_one_file
    from tilewise.sources.names import safe_name
    from tilewise.sources.rasters import output_stem

    outputs = {r: safe_name(output_stem(Path(r)) + ".tif") for r in (first, second)}
    job = SimpleNamespace(recipe=Recipe())
    members = [SimpleNamespace(group="dgm.zip", name="dgm.zip")]
    message = _collision_in_one_file(job, members, outputs[second], (first, outputs[first]), second)
    (pattern,) = [eval(p)[0] for p in re.findall(r"exclude: (\[.*?\])(?: |$)", message)]  # noqa: S307
    dropped = [r for r in (first, second) if Recipe(exclude=(pattern,)).excludes(Path(r).name, outputs[r])]
    assert len(dropped) == 1, (message, dropped)


def _convert_job(folder: Path, recipe: Recipe):
    """What convert_set reads of a chunk job, working in `folder` (its staging folder made)."""
    from types import SimpleNamespace

    from tilewise.sources.unpack import UnpackLimits

    job = SimpleNamespace(
        recipe=recipe,
        entry_dir=folder,
        scratch=folder / "scratch",
        staging=folder / "staging",
        limits=UnpackLimits(1 << 30, 1000.0),
    )
    job.staging.mkdir()
    return job


def test_a_download_whose_rasters_were_all_excluded_says_so(tmp_path):

    from tilewise.sources.convert_set import convert_set

    download = tmp_path / "dl" / "dgm.zip"
    download.parent.mkdir()
    import zipfile

    with zipfile.ZipFile(download, "w") as zf:
        for name in ("dem.TIF", "dem2.tif"):
            _raster(tmp_path / name, np.ones((4, 4), "float32"), from_origin(0, 100, 1, 1))
            zf.write(tmp_path / name, name)
    job = _convert_job(tmp_path, Recipe(exclude=("dem*",)))
    outputs, notes, excluded = convert_set(job, 0, [_remote("dgm.zip")], [download])
    assert outputs == [] and excluded == ["dem.TIF", "dem2.tif"]
    assert [(n.kind, n.reason) for n in notes] == [
        ("skipped", "the recipe's exclude patterns (dem*) matched every raster: no output")
    ]


def test_each_raster_is_opened_once_from_its_judging_to_its_cog_and_the_cogs_are_the_same(tmp_path, monkeypatch):
    """A raster kept open from its judging to its conversion (one GDAL open, not two: ~1.5 ms of PROJ
    lookups a file) gives the COG a fresh open gives, byte for byte; a download of more rasters than
    are held open converts them all, the others opened again."""
    import hashlib
    import zipfile
    from collections import Counter

    from tilewise.sources import convert_set as convert_set_module
    from tilewise.sources.raster_find import HeldOpen

    count = HeldOpen().limit + 2
    download = tmp_path / "dl" / "dgm.zip"
    download.parent.mkdir()
    with zipfile.ZipFile(download, "w") as zf:
        for i in range(count):
            data = np.arange(64 * 64, dtype="float32").reshape(64, 64) + i
            data[:3, : 10 + i] = -9999
            _raster(tmp_path / f"dem{i}.tif", data, from_origin(400_000 + 64 * i, 5_700_000, 1, 1), nodata=-9999)
            zf.write(tmp_path / f"dem{i}.tif", f"dem{i}.tif")
    opens = Counter()
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opens[Path(str(path)).name] += 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    job = _convert_job(tmp_path, Recipe())
    with convert_set_module.gdal_env():
        outputs, notes, _ = convert_set_module.convert_set(job, 0, [_remote("dgm.zip")], [download])
    assert notes == [] and sorted(o["filename"] for o in outputs) == [f"dem{i}.tif" for i in range(count)]
    raster_opens = {name: n for name, n in opens.items() if name.startswith("dem") and not name.startswith("00000-")}
    held = HeldOpen().limit
    # judged: every raster once; converted: the held ones without another open, the others opened again;
    # described: every COG (under its scratch name, `dem{i}.tif` too) once
    assert sum(raster_opens.values()) == count + (count - held) + count
    monkeypatch.setattr(rasterio, "open", real_open)
    for out in outputs:
        fresh = tmp_path / "fresh" / out["filename"]
        fresh.parent.mkdir(exist_ok=True)
        write_cog(Piece(tmp_path / out["filename"], out["filename"]), Recipe(), fresh, tmp_path / "vrt")
        assert hashlib.md5(fresh.read_bytes()).hexdigest() == out["md5"]


def _convert_download(folder: Path, download: Path, recipe: Recipe, monkeypatch, hold: bool) -> list[tuple]:
    """convert_set of a copy of `download`, with rasters held open from their judging (as a chunk
    does) or each opened again for its conversion: per output (name, md5, AREA_OR_POINT, tag names)."""
    import zipfile  # noqa: F401 (the caller's downloads are zips)

    from tilewise.sources import convert_set as convert_set_module
    from tilewise.sources.raster_find import HeldOpen

    if not hold:
        monkeypatch.setattr(HeldOpen, "keep", lambda self, path, ds: None)
    copy = folder / "dl" / download.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(download.read_bytes())
    job = _convert_job(folder, recipe)
    try:
        with convert_set_module.gdal_env():
            outputs, _, _ = convert_set_module.convert_set(job, 0, [_remote(copy.name)], [copy])
    finally:
        monkeypatch.undo()
    rows = []
    for out in outputs:
        with rasterio.open(job.staging / out["staged"]) as ds:
            rows.append((out["filename"], out["md5"], ds.tags().get("AREA_OR_POINT"), sorted(ds.tags())))
    return rows


def _zip_of(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_every_slice_of_a_raster_held_open_is_the_slice_of_a_raster_opened_again(tmp_path, monkeypatch):
    """A held raster serves only its first conversion: GDAL's GPKG driver empties a dataset's metadata
    after a first copy, so the later slices of a GeoPackage raster held open lost AREA_OR_POINT=Point
    (half a pixel off), IDENTIFIER and ZOOM_LEVEL (found by a fresh-eye attack)."""
    gpkg = tmp_path / "dem.gpkg"
    with rasterio.open(
        gpkg, "w", driver="GPKG", width=100, height=80, count=1, dtype="int16", crs="EPSG:3857",
        transform=from_origin(1_000_000, 6_000_000, 10, 10), nodata=-32768,
    ) as ds:  # fmt: skip
        ds.write((np.arange(80 * 100).reshape(80, 100) % 700).astype("int16"), 1)
    download = _zip_of(tmp_path / "dem.zip", {"dem.gpkg": gpkg.read_bytes()})
    held = _convert_download(tmp_path / "held", download, Recipe(slice_px=64), monkeypatch, hold=True)
    again = _convert_download(tmp_path / "again", download, Recipe(slice_px=64), monkeypatch, hold=False)
    assert [row[2] for row in held] == ["Point"] * 4
    assert held == again


def test_a_scratch_vrt_never_overwrites_a_file_of_the_download(tmp_path, monkeypatch):
    """The VRT a recipe's `crs:` makes for dem0.tif is written beside it under a name no member has:
    a member named dem0.tif.tilewise.vrt (here a raw-data VRT, a raster of its own) stays, and is
    converted, whether the rasters are held open or opened again (found by a fresh-eye attack: it was
    overwritten and deleted)."""
    raw_vrt = (
        f'<VRTDataset rasterXSize="20" rasterYSize="20"><SRS>{rasterio.crs.CRS.from_epsg(25832).to_wkt()}</SRS>'
        "<GeoTransform>400000, 1, 0, 5700000, 0, -1</GeoTransform>"
        '<VRTRasterBand dataType="UInt16" band="1" subClass="VRTRawRasterBand">'
        '<SourceFilename relativeToVRT="1">raw.bin</SourceFilename><ImageOffset>0</ImageOffset>'
        "<PixelOffset>2</PixelOffset><LineOffset>40</LineOffset><ByteOrder>LSB</ByteOrder>"
        "</VRTRasterBand></VRTDataset>"
    )
    tif = tmp_path / "dem0.tif"
    _raster(tif, np.ones((16, 16), "float32"), from_origin(400_000, 5_700_000, 1, 1))
    members = {"dem0.tif": tif.read_bytes(), "dem0.tif.tilewise.vrt": raw_vrt.encode()}
    download = _zip_of(tmp_path / "dl.zip", {**members, "raw.bin": np.arange(400, dtype="<u2").tobytes()})
    held = _convert_download(tmp_path / "held", download, Recipe(crs="EPSG:25833"), monkeypatch, hold=True)
    again = _convert_download(tmp_path / "again", download, Recipe(crs="EPSG:25833"), monkeypatch, hold=False)
    assert sorted(row[0] for row in held) == ["dem0.tif", "dem0.tif.tilewise.tif"]
    assert held == again


_AUX = (
    '<PAMDataset><SRS dataAxisToSRSAxisMapping="1,2">EPSG:25832</SRS>'
    "<GeoTransform>600000, 1, 0, 5700000, 0, -1</GeoTransform>"
    '<PAMRasterBand band="1"><NoDataValue>1</NoDataValue><Scale>0.1</Scale><Offset>-100</Offset>'
    "<UnitType>m</UnitType></PAMRasterBand></PAMDataset>"
)


def _bare_tif_with_aux(path, georeferenced: bool) -> None:
    """An int16 GeoTIFF (decimetres), with or without its own geotags, and a .aux.xml giving its grid,
    nodata, scale, offset and unit."""
    profile = dict(driver="GTiff", width=20, height=10, count=1, dtype="int16")
    if georeferenced:
        profile |= dict(crs="EPSG:25832", transform=from_origin(600000, 5700000, 1, 1))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((10, 20), 2000, "int16"), 1)
    Path(f"{path}.aux.xml").write_text(_AUX)  # replaces any GDAL wrote


@pytest.mark.parametrize("pam", ["NO", "YES"])
def test_a_grid_in_an_aux_xml_counts_whatever_the_environment_says(tmp_path, pam):
    """GDAL_PAM_ENABLED=NO (a common container setting) made GDAL ignore .aux.xml files: the same zip
    then gave a COG 100 km off, without its nodata or scale. A chunk reads them always."""
    _bare_tif_with_aux(tmp_path / "dem.tif", georeferenced=False)
    # in a process of its own: GDAL keeps PAM's setting, and a later test in this one must not inherit it
    code = (
        "import sys, rasterio; from tilewise.sources.convert_set import gdal_env\n"
        "with gdal_env(), rasterio.open(sys.argv[1]) as ds:\n"
        "    print(ds.transform.c, ds.transform.f, ds.nodata, ds.scales[0], ds.offsets[0])"
    )
    env = {**os.environ, "GDAL_PAM_ENABLED": pam, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-c", code, str(tmp_path / "dem.tif")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["600000.0", "5700000.0", "1.0", "0.1", "-100.0"], out.stderr


def _convert_folder(tmp_path, folder: Path, recipe: Recipe | None = None):
    """`folder` zipped as one download and converted as a chunk does: its outputs and notes."""
    import zipfile

    from tilewise.sources.convert_set import convert_set

    download = tmp_path / "dl" / "dgm.zip"
    download.parent.mkdir(parents=True)
    with zipfile.ZipFile(download, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    job = _convert_job(tmp_path, recipe or Recipe())
    with gdal_env():
        outputs, notes, _ = convert_set(job, 0, [_remote("dgm.zip")], [download])
    return {o["filename"]: job.staging / o["staged"] for o in outputs}, notes


def _pam(srs=None, transform=None, band=""):
    from xml.sax.saxutils import escape

    srs = f"<SRS>{escape(srs)}</SRS>" if srs else ""
    transform = f"<GeoTransform>{transform}</GeoTransform>" if transform else ""
    band = f'<PAMRasterBand band="1">{band}</PAMRasterBand>' if band else ""
    return f"<PAMDataset>{srs}{transform}{band}</PAMDataset>"


_OWN_GRID = from_origin(500000.5, 5600000.25, 0.5, 0.5)
_CONTRADICTING_PAM = {
    "grid moved": (_pam(transform="600000, 0.5, 0, 5700000, 0, -0.5"), "grid"),
    "grid by a world file": (None, "grid"),
    "pixel size": (_pam(transform="500000.5, 1, 0, 5600000.25, 0, -1"), "grid"),
    "another zone": (_pam(srs="EPSG:25833"), "CRS"),
    "another datum": (_pam(srs="EPSG:32632"), None),  # ETRS89 and WGS84 put UTM 32N at the same place: no conflict
    "heights in feet": (_pam(srs="EPSG:25832+6360"), "CRS"),
    "nodata": (_pam(band="<NoDataValue>-9999</NoDataValue>"), "nodata"),
    "scale": (_pam(band="<Scale>1</Scale>"), "scale"),
    "unit": (_pam(band="<UnitType>m</UnitType>"), "unit"),
}


def _with_mask(folder: Path, size: tuple[int, int]) -> None:
    """`folder/dem.tif`, 40×30 of 50 m, and the external mask GDAL writes for a raster of `size`
    (its top rows invalid) as `dem.tif.msk` beside it."""
    for where, (width, height) in ((folder / "other", size), (folder, (40, 30))):
        where.mkdir(exist_ok=True)
        with (
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False),
            rasterio.open(
                where / "dem.tif",
                "w",
                driver="GTiff",
                width=width,
                height=height,
                count=1,
                dtype="float32",
                crs="EPSG:25832",
                transform=from_origin(500000, 5600000, 1, 1),
            ) as ds,
        ):
            ds.write(np.full((1, height, width), 50, "float32"))
            mask = np.full((height, width), 255, "uint8")
            mask[: height // 2] = 0
            ds.write_mask(mask)
    os.replace(folder / "other" / "dem.tif.msk", folder / "dem.tif.msk")
    for leftover in (folder / "other").iterdir():
        leftover.unlink()
    (folder / "other").rmdir()


def _mask_folder(tmp_path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    _with_mask(folder, size)
    return folder


def _fails_at_convert(tmp_path: Path, folder: Path, match: str) -> None:
    with pytest.raises(FileFailure, match=match) as failed:
        _convert_folder(tmp_path, folder)
    assert failed.value.step == "convert"


def _top_half_is_void(tmp_path: Path, folder: Path) -> bool:
    outputs, _ = _convert_folder(tmp_path, folder)
    with rasterio.open(outputs["dem.tif"]) as cog:
        valid = cog.dataset_mask() > 0
    return not valid[:15].any() and valid[15:].all()


@pytest.mark.parametrize("size", [(80, 60), (40, 60), (80, 30), (20, 15), (39, 30), (40, 31)])
def test_an_external_mask_of_another_size_fails_the_file(tmp_path, size):
    """GDAL reads `dem.tif.msk` whatever its size: a larger one gave its top left corner as the raster's mask
    (a tile shipped with the wrong voids, or all void), a smaller one a raw "Access window out of range"."""
    folder = _mask_folder(tmp_path, size)
    match = rf"dem.tif: its mask dem.tif.msk is {size[0]}×{size[1]} pixels where the raster is 40×30.*"
    _fails_at_convert(tmp_path, folder, match + r"exclude: \['dem.tif.msk'\]")


def test_an_external_mask_of_the_rasters_size_marks_its_voids(tmp_path):
    assert _top_half_is_void(tmp_path, _mask_folder(tmp_path))


_UNREAD_MASKS = {
    "garbage": lambda good: b"not a mask " * 40,
    "empty": lambda good: b"",
    "cut after its header": lambda good: good[:16],
    "zeros": lambda good: bytes(len(good)),
}
MASK_NAMES = ["dem.tif.msk", "dem.tif.MSK", "DEM.TIF.MSK", "dem.Tif.msk"]  # GDAL finds each


@pytest.mark.parametrize("name", MASK_NAMES)
@pytest.mark.parametrize("case", list(_UNREAD_MASKS))
def test_an_external_mask_gdal_cannot_open_fails_the_file(tmp_path, case, name):
    """GDAL drops a `dem.tif.msk` it cannot open without a word: the voids it marks shipped as elevations
    (the raster has no nodata of its own)."""
    folder = _mask_folder(tmp_path)
    good = (folder / "dem.tif.msk").read_bytes()
    (folder / "dem.tif.msk").unlink()
    (folder / name).write_bytes(_UNREAD_MASKS[case](good))
    match = rf"dem.tif: its mask {re.escape(name)} is not read with it: GDAL cannot open it.*"
    _fails_at_convert(tmp_path, folder, match + rf"exclude: \['{re.escape(name)}'\]")


@pytest.mark.parametrize("name", MASK_NAMES[1:])
def test_an_external_mask_named_in_another_case_marks_its_voids(tmp_path, name):
    folder = _mask_folder(tmp_path)
    (folder / "dem.tif.msk").rename(folder / name)
    assert _top_half_is_void(tmp_path, folder)


@pytest.mark.parametrize("case", list(_CONTRADICTING_PAM))
def test_a_sidecar_that_contradicts_the_rasters_own_georeferencing_fails_the_file(tmp_path, case):
    """GDAL takes a `.aux.xml`'s CRS, grid, nodata, scale or unit over a GeoTIFF's own tags (and over a world
    file) without a word: the COG shipped 100 km off, in another zone, or with its voids as 0 m elevations.
    Which of the two the producer means is unknown: the file fails, naming the sidecar, both values and the fix."""
    pam, what = _CONTRADICTING_PAM[case]
    folder = tmp_path / "in"
    folder.mkdir()
    data = np.full((8, 8), 2500, "int16")
    data[0] = 0
    if case == "grid by a world file":  # a raster without geotags: its grid is its world file's
        write_band(folder / "dem.tif", data, None, None, 0)
        (folder / "dem.tfw").write_text("0.5\n0\n0\n-0.5\n500000.75\n5600000\n")
        pam = _pam(srs="EPSG:25832", transform="600000, 0.5, 0, 5700000, 0, -0.5")
    else:
        _raster(folder / "dem.tif", data, _OWN_GRID, nodata=0)
    if case in ("scale", "unit"):  # the raster's own: decimetres, a unit other than the sidecar's
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(folder / "dem.tif", "r+") as ds:  # in its tags
            ds.scales, ds.units = ((0.1,), ("dm",)) if case == "scale" else ((1.0,), ("ft",))
    (folder / "dem.tif.aux.xml").write_text(pam)
    if what is None:
        outputs, _ = _convert_folder(tmp_path, folder)
        assert list(outputs) == ["dem.tif"]
        return
    with pytest.raises(
        FileFailure,
        match=rf"dem.tif: its sidecar dem.tif.aux.xml contradicts the raster's own .*{what}"
        r".*exclude: \['dem.tif.aux.xml'\]",
    ) as failed:
        _convert_folder(tmp_path, folder)
    assert failed.value.step == "convert"


_AGREEING_PAM = {
    "statistics only": _pam(
        band='<Metadata><MDI key="STATISTICS_MINIMUM">1</MDI><MDI key="STATISTICS_MAXIMUM">9</MDI>'
        '<MDI key="STATISTICS_MEAN">5</MDI></Metadata>'
    ),
    "the same, as ArcGIS writes it": _pam(
        srs=rasterio.crs.CRS.from_epsg(25832).to_wkt(version="WKT1_ESRI"),
        transform="5.0000050000000000e+05, 5.0000000000000000e-01, 0.0000000000000000e+00, "
        "5.6000002500000000e+06, 0.0000000000000000e+00, -5.0000000000000000e-01",
        band="<NoDataValue>-3.40282346638529e+38</NoDataValue>",
    ),
}


@pytest.mark.parametrize("case", list(_AGREEING_PAM))
def test_a_sidecar_that_agrees_with_the_raster_changes_nothing(tmp_path, case):
    """ArcGIS's statistics, or the raster's own CRS (as ESRI WKT), grid and nodata (in decimal) repeated: the
    same COG pixels, grid and CRS as the raster alone gives."""
    read = {}
    for sidecar in (False, True):
        folder = tmp_path / f"in{sidecar}"
        folder.mkdir()
        data = np.arange(64, dtype="float32").reshape(8, 8) + 100
        data[0, 0] = -3.4028234663852886e38
        _raster(folder / "dem.tif", data, _OWN_GRID, nodata=-3.4028234663852886e38)
        if sidecar:
            (folder / "dem.tif.aux.xml").write_text(_AGREEING_PAM[case])
        outputs, _ = _convert_folder(tmp_path / f"run{sidecar}", folder)
        with rasterio.open(outputs["dem.tif"]) as ds:
            read[sidecar] = (ds.crs, ds.transform, ds.read(1).tolist(), ds.read_masks(1).tolist())
    assert read[True] == read[False]


@pytest.mark.parametrize(
    "sidecar", ["DEM.TIF.AUX.XML", "dem.TIF.aux.xml", "Dem.tif.aux.xml", "dem.tif.AUX.XML", "dem.tiff.aux.xml"]
)
def test_a_sidecar_named_after_a_raster_that_gdal_does_not_read_fails(tmp_path, sidecar):
    """GDAL reads a raster's `.aux.xml` only under its exact name: one made where names are one in any case
    (DEM.TIF.AUX.XML beside dem.tif), or of the raster under another suffix, was dropped with the nodata in
    it, and the voids shipped as 0 m. The download fails naming it and the name GDAL reads."""
    folder = tmp_path / "in"
    folder.mkdir()
    data = np.full((8, 8), 250, "float32")
    data[0] = 0
    _raster(folder / "dem.tif", data, _OWN_GRID)
    (folder / sidecar).write_text(_pam(band="<NoDataValue>0</NoDataValue>"))
    with pytest.raises(
        FileFailure,
        match=rf"{re.escape(sidecar)} is named after the raster dem.tif, .*only as "
        r"dem.tif.aux.xml",
    ):
        _convert_folder(tmp_path, folder)


_MATRIX_GRIDS = {  # a ModelTransformation beside a ModelTiepoint of (0, 0) at (500000, 5600000) with 2 × 3 m pixels
    "another origin": ((2.0, 0, 600000.0, 0, -3.0, 5700000.0), True),
    "another pixel size": ((1.0, 0, 500000.0, 0, -1.0, 5600000.0), True),
    "rotated": ((2.0, 0.5, 500000.0, 0.5, -3.0, 5600000.0), True),
    "the same grid": ((2.0, 0, 500000.0, 0, -3.0, 5600000.0), False),
}


@pytest.mark.parametrize("layout", ["<", ">", "<big", ">big"])
@pytest.mark.parametrize("case", list(_MATRIX_GRIDS))
def test_a_geotiff_whose_two_grids_differ_fails(tmp_path, case, layout):
    """A GeoTIFF holding a ModelTiepoint with a ModelPixelScale and also a ModelTransformation (two writers' tags
    in one file) has two grids: GDAL took the first without a word (other readers take the second). Where they
    differ the file fails naming both; where they agree it converts (little- and big-endian, classic and BigTIFF)."""
    from support.geotiff_tags import DOUBLE, GEOKEYS, PIXEL_SCALE, TIEPOINT, TRANSFORMATION, geokeys, write_geotiff

    (a, b, c, d, e, f), refused = _MATRIX_GRIDS[case]
    folder = tmp_path / "in"
    folder.mkdir()
    tags = {
        PIXEL_SCALE: (DOUBLE, [2.0, 3.0, 0.0]),
        TIEPOINT: (DOUBLE, [0, 0, 0, 500000.0, 5600000.0, 0]),
        TRANSFORMATION: (DOUBLE, [a, b, 0, c, d, e, 0, f, 0, 0, 0, 0, 0, 0, 0, 1]),
        GEOKEYS: geokeys(25832),
    }
    write_geotiff(folder / "dem.tif", np.full((8, 8), 250.0, "float32"), tags, layout[0], layout.endswith("big"))
    if refused:
        with pytest.raises(FileFailure, match=r"dem.tif: its GeoTIFF tags give two grids, .*ModelTransformation"):
            _convert_folder(tmp_path, folder)
    else:
        outputs, _ = _convert_folder(tmp_path, folder)
        with rasterio.open(outputs["dem.tif"]) as ds:
            assert tuple(ds.transform)[:6] == (2, 0, 500000, 0, -3, 5600000)


_ASC = "ncols 4\nnrows 4\nxllcorner 500000\nyllcorner 5599996\ncellsize 1\nNODATA_value -9999\n" + "1 2 3 4\n" * 4
_UNREAD_SIDECARS = {  # raster and its files → what the sidecar that GDAL reads no part of says, or None if it agrees
    "stale world file beside geotags": ("dem.tif", {"dem.tfw": "1\n0\n0\n-1\n600000.5\n5700000.5\n"}, "grid"),
    "world file in upper case": ("dem.tif", {"DEM.TFW": "1\n0\n0\n-1\n600000.5\n5700000.5\n"}, "grid"),
    ".tifw of another pixel size": ("dem.tif", {"dem.tifw": "2\n0\n0\n-2\n500001\n5599999\n"}, "grid"),
    "prj of another zone beside a geotiff": ("dem.tif", {"dem.prj": "EPSG:25833"}, "CRS"),
    "prj in degrees beside a geotiff in metres": ("dem.tif", {"dem.prj": "EPSG:4326"}, "CRS"),
    "asc's aux.xml srs beside its prj": ("dem.asc", {"dem.prj": "EPSG:25832", "dem.asc.aux.xml": "EPSG:25833"}, "CRS"),
    "asc's aux.xml nodata beside its header's": (
        "dem.asc",
        {"dem.prj": "EPSG:25832", "dem.asc.aux.xml": '<PAMRasterBand band="1"><NoDataValue>0</NoDataValue>'},
        "nodata",
    ),
    "aux.xml's AREA_OR_POINT against the GeoTIFF's": (
        "dem.tif",
        {"dem.tif.aux.xml": '<Metadata><MDI key="AREA_OR_POINT">Point</MDI></Metadata><PAMRasterBand band="1">'},
        "AREA_OR_POINT",
    ),
    "world file that agrees, in decimals": (
        "dem.tif",
        {"dem.tfw": "1.0000000000\n0\n0\n-1\n500000.5\n5599999.5\n"},
        None,
    ),
    "prj of the same CRS as ESRI WKT": ("dem.tif", {"dem.prj": "esri"}, None),
    "a world file of another raster": ("dem.tif", {"other.tfw": "1\n0\n0\n-1\n600000.5\n5700000.5\n"}, None),
    "the .wld of a coarser preview": (
        "dem.tif",
        {"dem.png": "preview", "dem.wld": "8\n0\n0\n-8\n500004\n5599996\n"},
        None,
    ),
}


@pytest.mark.parametrize("case", list(_UNREAD_SIDECARS))
def test_a_sidecar_gdal_does_not_follow_fails_where_it_disagrees(tmp_path, case):
    """A sidecar named after a raster that says another grid, CRS or nodata than GDAL reads (the GeoTIFF's own
    tags win over a world file, GTiff never reads a `.prj`, an ASCII grid's header and `.prj` win over its
    `.aux.xml`): two georeferencings of one raster, one shipped without a word. Sidecars that agree (in
    decimals, as ESRI WKT) or name another raster change nothing."""
    from rasterio.crs import CRS

    raster, sidecars, what = _UNREAD_SIDECARS[case]
    folder = tmp_path / "in"
    folder.mkdir()
    if raster == "dem.asc":
        (folder / raster).write_text(_ASC)
    else:
        _raster(folder / raster, np.full((4, 4), 250.0, "float32"), from_origin(500000, 5600000, 1, 1))
    for name, text in sidecars.items():
        if name.endswith(".png"):  # a 1 × 1 RGB preview, georeferenced only by the .wld (8 m pixels)
            with rasterio.open(folder / name, "w", driver="PNG", width=1, height=1, count=3, dtype="uint8") as ds:
                ds.write(np.zeros((3, 1, 1), "uint8"))
            (folder / f"{name}.aux.xml").unlink(missing_ok=True)
            continue
        if name.endswith(".prj"):
            text = CRS.from_epsg(25832 if text == "esri" else int(text[5:])).to_wkt(version="WKT1_ESRI")
        elif name.endswith(".aux.xml"):
            text = (
                f"<PAMDataset><SRS>{text}</SRS></PAMDataset>"
                if text.startswith("EPSG")
                else f"<PAMDataset>{text}</PAMRasterBand></PAMDataset>"
            )
        (folder / name).write_text(text)
    if what is None:
        outputs, _ = _convert_folder(tmp_path, folder)
        assert list(outputs) == ["dem.tif"]
        return
    (sidecar,) = [n for n in sidecars if not (raster == "dem.asc" and n == "dem.prj")]
    with pytest.raises(FileFailure, match=rf"dgm.zip: {re.escape(sidecar)} says .*{what} .*but GDAL reads {raster}"):
        _convert_folder(tmp_path, folder)


_BARE_PRJ = {  # the .prj beside a GeoTIFF without a CRS, the recipe's crs: → what the run says (None: converts)
    "another zone": ("dem.prj", "EPSG:25833", "EPSG:25832", "CRS EPSG:25833 where it is EPSG:25832"),
    "another zone, upper case": ("DEM.PRJ", "EPSG:25833", "EPSG:25832", "CRS EPSG:25833 where it is EPSG:25832"),
    "another datum's zone": ("dem.prj", "EPSG:32633", "EPSG:25832", "CRS EPSG:32633 where it is EPSG:25832"),
    "degrees": ("dem.prj", "EPSG:4326", "EPSG:25832", "CRS EPSG:4326 where it is EPSG:25832"),
    "the same CRS": ("dem.prj", "EPSG:25832", "EPSG:25832", None),
    "the same CRS, another datum realisation": ("dem.prj", "EPSG:32632", "EPSG:25832", None),
}


@pytest.mark.parametrize("case", list(_BARE_PRJ))
def test_a_prj_beside_a_bare_geotiff_is_checked_against_the_recipes_crs(tmp_path, case):
    """GDAL reads no `.prj` for a GeoTIFF: a GeoTIFF without a CRS gets the recipe's `crs:`, and a `.prj` beside
    it that puts its corners elsewhere (another zone) is the producer saying another CRS: the download fails,
    naming both. One that agrees (ETRS89 and WGS 84 zones are one place at this scale) converts."""
    from rasterio.crs import CRS

    name, said, assigned, refusal = _BARE_PRJ[case]
    folder = tmp_path / "in"
    folder.mkdir()
    _raster(folder / "dem.tif", np.full((4, 4), 250.0, "float32"), from_origin(500000, 5600000, 1, 1), crs=None)
    (folder / name).write_text(CRS.from_user_input(said).to_wkt(version="WKT1_ESRI"))
    if refusal is None:
        outputs, _ = _convert_folder(tmp_path, folder, Recipe(crs=assigned))
        with rasterio.open(outputs["dem.tif"]) as cog:
            assert cog.crs == CRS.from_user_input(assigned)
        return
    with pytest.raises(FileFailure, match=rf"dgm.zip: {name} says {refusal}.*the recipe's crs: assigns it") as failed:
        _convert_folder(tmp_path, folder, Recipe(crs=assigned))
    assert f"exclude: [{name!r}]" in str(failed.value)


@pytest.mark.parametrize("name", ["dem.prj", "DEM.prj"])
def test_a_bare_geotiff_without_a_crs_names_the_prj_gdal_does_not_read(tmp_path, name):
    from rasterio.crs import CRS

    folder = tmp_path / "in"
    folder.mkdir()
    _raster(folder / "dem.tif", np.full((4, 4), 250.0, "float32"), from_origin(500000, 5600000, 1, 1), crs=None)
    (folder / name).write_text(CRS.from_epsg(25833).to_wkt(version="WKT1_ESRI"))
    with pytest.raises(
        FileFailure,
        match=rf"dem.tif has no CRS \(GDAL reads no .prj for it; {name} beside it says "
        r"EPSG:25833\); set `crs:`",
    ):
        _convert_folder(tmp_path, folder)


@pytest.mark.parametrize(
    "a, b, apart",
    [
        ((9.0, 50.0), (9.0, 50.0), 0.0),
        ((179.9999999, 10.0), (-180.0, 10.0), 1e-7),  # one longitude on both sides of ±180°
        ((0.0, 10.0), (360.0, 10.0), 0.0),  # one turn apart
        ((500000.0, 5600000.0), (9.0, 50.0), 5599950.0),  # metres read as degrees: no latitude wraps
        ((720.5, 50.0), (0.5, 50.0), 0.0),
        ((9.0, 50.0), (10.0, 50.5), 1.0),
    ],
)
def test_degrees_apart_wraps_longitudes_only(a, b, apart):
    """Before, a |Δ| above 360° compared as below 0: a projected CRS's metres read as degrees were "the same
    place" as anything, so a .prj in degrees beside a GeoTIFF in metres was taken as agreeing."""
    from tilewise.shared.web_mercator import degrees_apart

    got = degrees_apart(np.array([[a[0]], [a[1]]]), np.array([[b[0]], [b[1]]]))
    assert got[0] == pytest.approx(apart, abs=1e-6)


_BESIDE_A_LOCAL_PATH = {  # sidecar name → its text, and the COG's (origin, nodata) GDAL reading the path gives
    "dem.tif.aux.xml": (
        '<PAMDataset><PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand></PAMDataset>',
        ((500000, 5600000), 0.0),
    ),
    "DEM.TFW": ("1\n0\n0\n-1\n600000.5\n5699999.5\n", ((600000, 5700000), None)),
    "dem.tifw": ("1\n0\n0\n-1\n600000.5\n5699999.5\n", ((600000, 5700000), None)),
    "dem.tif.aux.xml, statistics": (
        '<PAMDataset><PAMRasterBand band="1"><Metadata><MDI key="STATISTICS_MINIMUM">0</MDI></Metadata>'
        "</PAMRasterBand></PAMDataset>",
        ((500000, 5600000), None),
    ),
}


@pytest.mark.parametrize("sidecar", list(_BESIDE_A_LOCAL_PATH))
def test_a_local_path_keeps_the_sidecars_beside_it(tmp_path, sidecar):
    """A file list's plain path reads as GDAL reads that path: `/data/dem.tif` with /data/dem.tif.aux.xml or
    /data/DEM.TFW beside it. Only the file was copied, and the COG lost the sidecar's nodata (voids shipped as
    0 m) or a bare TIFF its grid."""

    from tilewise.sources.catalog import FileEntry
    from tilewise.sources.convert_set import convert_set

    text, (origin, nodata) = _BESIDE_A_LOCAL_PATH[sidecar]
    data = np.full((8, 8), 250.0, "float32")
    data[0] = 0
    local = tmp_path / "data" / "dem.tif"
    if sidecar.lower().endswith("w"):  # a bare TIFF: its grid is its world file's
        write_band(local, data, None, None, None)
    else:
        _raster(local, data, from_origin(500000, 5600000, 1, 1))
    (local.parent / sidecar.split(",")[0]).write_text(text)
    download = tmp_path / "dl" / "dem.tif"
    download.parent.mkdir()
    download.write_bytes(local.read_bytes())  # what the download of a local file copies
    job = _convert_job(tmp_path, Recipe(crs="EPSG:25832"))
    with gdal_env():
        outputs, _, _ = convert_set(job, 0, [FileEntry(None, str(local), "dem.tif", "dem.tif")], [download])
    with rasterio.open(job.staging / outputs[0]["staged"]) as ds:
        assert ((ds.transform.c, ds.transform.f), ds.nodata) == (origin, nodata)


def test_keep_original_refuses_a_raster_whose_scale_and_offset_are_in_a_sidecar(tmp_path):
    """The store keeps no sidecar: a GeoTIFF of decimetres whose .aux.xml says scale 0.1, offset -100
    would read 2000 where the producer means 100 m; and converted, its raw values would still be read
    as metres downstream. It fails, naming the fix."""
    from tilewise.sources.rasters import _keep_original

    _bare_tif_with_aux(tmp_path / "dem.tif", georeferenced=True)
    (tmp_path / "dem.tif.aux.xml").write_text(_AUX.replace("<NoDataValue>1</NoDataValue>", ""))
    with (
        gdal_env(),
        pytest.raises(FileFailure, match=r"dem.tif: band 1 does not hold metres as stored \(scale 0.1, offset -100"),
    ):
        _keep_original(tmp_path / "dem.tif", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize(
    "scale, offset, unit, refused",
    [
        (0.1, 0.0, None, True),  # int16 decimetres
        (1.0, 1000.0, None, True),
        (0.01, -100.0, "m", True),
        (1.0, 0.0, "ft", True),
        (1.0, 0.0, "US survey foot", True),
        (1.0, 0.0, "cm", True),
        (1.0, 0.0, "m", False),
        (1.0, 0.0, "metre", False),
        (1.0, 0.0, "Meters", False),
        (1.0, 0.0, None, False),
    ],
)
@pytest.mark.parametrize(
    "recipe", [Recipe(), Recipe(slice_px=16), Recipe(keep_original=True)], ids=["cog", "sliced", "kept"]
)
def test_a_band_that_does_not_hold_metres_as_stored_fails(tmp_path, scale, offset, unit, refused, recipe):
    """Mapterhorn's downstream stage reads raw values as metres: 12340 for 1234 m with scale 0.1."""
    src = _raster(tmp_path / "s.tif", np.full((20, 20), 12340, "int16"), from_origin(500000, 5600000, 1, 1))
    with rasterio.open(src, "r+") as ds:
        ds.scales, ds.offsets = (scale,), (offset,)
        if unit:
            ds.units = (unit,)
    (piece,) = plan_pieces(src, recipe)[:1]
    if refused:
        with pytest.raises(
            FileFailure, match=r"s.tif: band 1 does not hold metres as stored .*gdal_translate -unscale"
        ):
            write_output(piece, recipe, tmp_path / "o.tif", tmp_path)
    else:
        write_output(piece, recipe, tmp_path / "o.tif", tmp_path)
        assert (tmp_path / "o.tif").exists()


@pytest.mark.parametrize(
    "data, sidecars",
    [
        (
            "E020N90.DEM",
            {"E020N90.STX": "1 -9999 399 200.5 50.1\n", "E020N90.DMW": "0.01\n0\n0\n-0.01\n9.005\n49.995\n"},
        ),
        ("dem.bil", {"dem.blw": "0.01\n0\n0\n-0.01\n9.005\n49.995\n", "dem.stx": "1 100 399\n"}),
        ("dem.bil", {"dem.clr": "".join(f"{v} {v % 256} 0 0\n" for v in range(100, 900))}),  # larger than the raster
        ("dem.bip", {"dem.bpw": "0.01\n0\n0\n-0.01\n9.005\n49.995\n", "dem.CLR": "100 0 0 0\n"}),
    ],
)
def test_the_sidecars_of_a_raster_with_a_header_file_are_no_rasters(tmp_path, data, sidecars):
    """GDAL opens any X.* beside an ESRI header X.hdr as the raster it describes: the statistics (.stx),
    colour map (.clr) and world files (.blw, .bpw, .dmw) of a BIL or GTOPO30 tile failed the download as
    damaged rasters, or, larger than the raster, were read as a second copy of it from their text."""
    pixels = (np.arange(30 * 40).reshape(30, 40) % 300 + 100).astype(">i2")
    (tmp_path / data).write_bytes(pixels.tobytes())
    (tmp_path / (Path(data).stem + ".hdr")).write_text(
        "BYTEORDER M\nLAYOUT BIL\nNROWS 30\nNCOLS 40\nNBANDS 1\nNBITS 16\nNODATA -9999\n"
        "ULXMAP 9.005\nULYMAP 49.995\nXDIM 0.01\nYDIM 0.01\n"
    )
    for name, text in sidecars.items():
        (tmp_path / name).write_text(text)
    with gdal_env():  # as a chunk opens them (a test before in this process may have set EMPTY_DIR)
        found = {p.name: ds.read(1) for p, ds in open_rasters(tmp_path)}
    assert list(found) == [data]
    np.testing.assert_array_equal(found[data], pixels)


@pytest.mark.parametrize("dtype, elevation", [("int16", True), ("uint8", False), ("uint16", False)])
def test_a_colour_map_of_a_signed_or_float_band_is_elevation(tmp_path, dtype, elevation):
    """ArcGIS writes a `.clr` colour map beside a BIL DEM, which GDAL reads as the band's palette: an int16 DEM
    was skipped as a colour image (its download failing, or, beside other tiles, the tile
    silently missing). An indexed image (Byte or UInt16 indices) stays one."""
    from tilewise.sources.raster_find import judge

    pixels = (np.arange(30 * 40).reshape(30, 40) % 300 + 100).astype(dtype)
    (tmp_path / "dem.bil").write_bytes(pixels.astype(pixels.dtype.newbyteorder("<")).tobytes())
    kind = "F" if dtype == "float32" else ("S" if dtype.startswith("int") else "U")
    (tmp_path / "dem.hdr").write_text(
        f"BYTEORDER I\nLAYOUT BIL\nNROWS 30\nNCOLS 40\nNBANDS 1\nNBITS {pixels.dtype.itemsize * 8}\n"
        f"PIXELTYPE {dict(F='FLOAT', S='SIGNEDINT', U='UNSIGNEDINT')[kind]}\nULXMAP 9.005\nULYMAP 49.995\n"
        "XDIM 0.01\nYDIM 0.01\n"
    )
    (tmp_path / "dem.prj").write_text(rasterio.crs.CRS.from_epsg(4326).to_wkt())
    (tmp_path / "dem.clr").write_text("100 0 0 0\n250 128 128 128\n399 255 255 255\n")
    with gdal_env():
        judged = [
            (ds.dtypes[0], ds.colorinterp[0].name, *judge(ds, path.name, None)) for path, ds in open_rasters(tmp_path)
        ]
    ((read_as, interp, notes, is_elevation),) = judged
    assert (read_as, interp) == (dtype, "palette")
    assert is_elevation == elevation, notes


def _env_cases(tmp_path):
    """A producer file and a GDAL option of the user's environment that changes how it reads."""
    point = _raster(tmp_path / "point.tif", np.full((4, 5), 300.25, "float32"), from_origin(500000, 5600000, 10, 10))
    with rasterio.open(point, "r+") as ds:
        ds.update_tags(AREA_OR_POINT="Point")
    tfw = _raster(tmp_path / "tfw.tif", np.full((4, 5), 300.25, "float32"), from_origin(500000, 5600000, 10, 10))
    (tmp_path / "tfw.tfw").write_text("10\n0\n0\n-10\n100005\n200005\n")  # a stale world file beside its geotags
    asc = tmp_path / "g.asc"
    asc.write_text("ncols 2\nnrows 2\nxllcorner 500000\nyllcorner 5600000\ncellsize 10\n100.75 101.5\n102.25 103.5\n")
    return {
        "GTIFF_POINT_GEO_IGNORE": ("YES", point),
        "GDAL_GEOREF_SOURCES": ("WORLDFILE,INTERNAL", tfw),
        "AAIGRID_DATATYPE": ("Int32", asc),
        "DTED_APPLY_PIXEL_IS_POINT": ("YES", shared("elevation/dted/n43.dt0")),
    }


@pytest.mark.parametrize(
    "option", ["GTIFF_POINT_GEO_IGNORE", "GDAL_GEOREF_SOURCES", "AAIGRID_DATATYPE", "DTED_APPLY_PIXEL_IS_POINT"]
)
def test_a_file_reads_the_same_whatever_gdal_options_the_environment_sets(tmp_path, monkeypatch, option):
    """A GDAL option in the user's environment moved a PixelIsPoint GeoTIFF or a DTED tile half a pixel, put a
    world file over a GeoTIFF's own grid, or read an ASCII grid of decimals as Int32 (100.75 m shipped as 100):
    the same download gave another store. A chunk reads every file as GDAL's defaults do."""

    value, path = _env_cases(tmp_path)[option]

    def reading():
        with gdal_env(), rasterio.open(path) as ds:
            return ds.transform, ds.dtypes, ds.read(1).tolist()

    expected = reading()
    monkeypatch.setenv(option, value)
    assert reading() == expected
    assert os.environ[option] == value  # the user's setting is back after the chunk's reading


NOT_METRE_HEIGHTS = [
    "EPSG:26910+6360",
    "EPSG:32610+8228",
    "+proj=utm +zone=10 +datum=WGS84 +units=m +vunits=us-ft +type=crs",
    "EPSG:32610+5715",  # MSL depth: 120 is 120 m below sea level
    "EPSG:26910+6358",  # NAVD88 depth (ftUS)
]
METRE_HEIGHTS = ["EPSG:26910+5703", "EPSG:32610", "+proj=utm +zone=10 +datum=WGS84 +units=m +vunits=m +type=crs"]


@pytest.mark.parametrize("crs", NOT_METRE_HEIGHTS + METRE_HEIGHTS)
@pytest.mark.parametrize("given_by", ["recipe", "aux.xml", "aux.xml, recipe 2-D", "asc recipe"])
def test_a_crs_whose_heights_are_feet_or_depths_fails_whatever_gives_it(tmp_path, crs, given_by):
    """A compound CRS whose vertical part is in feet (NAVD88 height (ftUS), EPSG:6360) declares the band feet,
    one whose vertical axis points down (MSL depth, EPSG:5715) declares depths,
    also where no band unit says so: assigned by the recipe's `crs:` or read from a sidecar's SRS. The COG
    was shipped as metres, labelled feet. Heights in metres (NAVD88 in metres, a 2-D CRS) pass."""
    from xml.sax.saxutils import escape

    from rasterio.crs import CRS

    if given_by == "asc recipe":
        src = tmp_path / "s.asc"
        src.write_text("ncols 2\nnrows 2\nxllcorner 500000\nyllcorner 4200000\ncellsize 1\n1200 1201\n1202 1203\n")
    else:
        src = _raster(
            tmp_path / "s.tif", np.full((20, 20), 1200, "float32"), from_origin(500000, 4200000, 1, 1), crs=None
        )
    if given_by.startswith("aux.xml"):
        (tmp_path / "s.tif.aux.xml").write_text(
            f"<PAMDataset><SRS>{escape(CRS.from_user_input(crs).to_wkt())}</SRS></PAMDataset>"
        )
    recipe = {"aux.xml": Recipe(), "aux.xml, recipe 2-D": Recipe(crs="EPSG:32610")}.get(given_by, Recipe(crs=crs))
    with gdal_env():  # as a chunk reads: the sidecar is found whatever the environment says
        (piece,) = plan_pieces(src, recipe)
        if crs in NOT_METRE_HEIGHTS:
            with pytest.raises(
                FileFailure,
                match=r"s\.(tif|asc): band 1 does not hold metres as stored "
                r".*(heights in .*f(oo|ee)t|depths \(positive down\))",
            ):
                write_output(piece, recipe, tmp_path / "o.tif", tmp_path)
            assert not (tmp_path / "o.tif").exists()
        else:
            write_output(piece, recipe, tmp_path / "o.tif", tmp_path)
            assert (tmp_path / "o.tif").exists()


def _nodata_cases():
    """Float rasters whose nodata value sits where a lossy codec can reach it, and the common ones it cannot."""
    rng = np.random.default_rng(11)
    below_sea = (rng.random((64, 64)) * 50 - 430).astype("float32")  # a depression: every value below nodata 0
    coast = (rng.random((64, 64)) * 0.004 - 0.002).astype("float32")  # values within 2 mm of nodata 0
    usual = (rng.random((64, 64)) * 500 + 100).astype("float32")  # nodata −9999 below every value
    above = (rng.random((64, 64)) * 50 + 100).astype("float32")  # nodata 151 above every value
    cases = {"below_sea": (below_sea, 0.0), "coast": (coast, 0.0), "usual": (usual, -9999.0), "above": (above, 151.0)}
    for data, nodata in cases.values():
        data[:, :13] = nodata  # a collar off LERC's 8-pixel micro-block grid
        data[40:, 37:] = nodata
        data[20:23, 30:50:3] = nodata  # speckles inside the data
    return cases


_NODATA_CASES = _nodata_cases()


@pytest.mark.parametrize("case", _NODATA_CASES)
@pytest.mark.parametrize("how", ["declared", "assigned", "warped"])
def test_lossy_lerc_never_moves_a_pixel_across_nodata(tmp_path, case, how):
    """LERC at 1 mm quantises a block from its minimum: nodata inside the data's range came back as
    elevations, values within 1 mm of nodata as nodata. Every valid pixel of the source is valid in the
    COG and no other; where Mapterhorn's options keep that, the COG is exactly theirs."""
    from tilewise.sources.raster_describe import valid_pixels

    data, nodata = _NODATA_CASES[case]
    transform = Affine(1, 0, 735000, 0, 1, 3499936) if how == "warped" else from_origin(735000, 3500000, 1, 1)
    src = _raster(tmp_path / "s.tif", data, transform, nodata=None if how == "assigned" else nodata)
    recipe = Recipe(nodata=nodata if how == "assigned" else None, fix_orientation=how == "warped")
    warning = write_cog(Piece(src, "o.tif"), recipe, tmp_path / "o.tif", tmp_path)
    expected = (data[::-1] if how == "warped" else data) != nodata
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.nodata == nodata
        assert (valid_pixels(ds) == expected).all(), f"{(valid_pixels(ds) != expected).sum()} pixels crossed nodata"
        shown = data[::-1] if how == "warped" else data
        assert np.abs(ds.read(1)[expected] - shown[expected]).max() <= 0.0011  # 1 mm and float32 rounding
    if warning is None:  # nothing crossed: Mapterhorn's own bytes (their options, their codec, their error)
        assert how != "declared" or _mapterhorn_copy(tmp_path, "o.tif") == (tmp_path / "o.tif").read_bytes()
    else:
        assert "written lossless (MAX_Z_ERROR 0)" in warning and case in ("below_sea", "coast", "above")
    if case == "usual":
        assert warning is None


def _mapterhorn_copy(folder, name):
    import rasterio.shutil

    from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS

    rasterio.shutil.copy(folder / "s.tif", folder / "m.tif", driver="COG", **MAPTERHORN_COG_OPTIONS)
    return (folder / "m.tif").read_bytes()


@pytest.mark.parametrize(
    "cog, dtype",
    [({"COMPRESS": "DEFLATE", "NBITS": 16}, "float32"), ({"COMPRESS": "JPEG", "QUALITY": 10}, "uint8")],
    ids=["float16", "jpeg"],
)
def test_another_lossy_codec_that_moves_pixels_across_nodata_fails_the_file(tmp_path, cog, dtype):
    """Without LERC's lossless fallback the file fails, naming the options and the fix."""
    from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS

    data = np.full((64, 64), 1e-9 if dtype == "float32" else 200, dtype)
    data[:, :13] = 0
    src = _raster(tmp_path / "s.tif", data, from_origin(735000, 3500000, 1, 1), nodata=0)
    options = {k: v for k, v in MAPTERHORN_COG_OPTIONS.items() if k != "MAX_Z_ERROR"} | cog
    with pytest.raises(FileFailure, match=r"o.tif: with the recipe's cog options .* use a lossless codec"):
        write_cog(Piece(src, "o.tif"), Recipe(cog=options), tmp_path / "o.tif", tmp_path)


@pytest.mark.parametrize(
    "cog, dtype, nodata",
    [
        ({"COMPRESS": "DEFLATE", "NBITS": 16}, "float32", None),  # float16: 4 m steps at 6,000 m
        ({"COMPRESS": "DEFLATE", "NBITS": 16}, "float32", -9999.0),  # nodata far from every value
        ({"COMPRESS": "LZW", "NBITS": 12}, "uint16", None),  # clipped at 4,095
        ({"COMPRESS": "JPEG", "QUALITY": 50}, "uint8", None),
    ],
    ids=["float16", "float16-far-nodata", "uint16-12bits", "jpeg"],
)
def test_a_lossy_codec_without_an_error_bound_that_changes_values_fails_the_file(tmp_path, cog, dtype, nodata):
    """Without a nodata near the data, such options changed elevations and the file passed."""
    from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS

    top = 250 if dtype == "uint8" else 6000
    data = (np.random.default_rng(0).random((64, 64)) * top).astype(dtype)
    src = _raster(tmp_path / "s.tif", data, from_origin(735000, 3500000, 1, 1), nodata=nodata)
    options = {k: v for k, v in MAPTERHORN_COG_OPTIONS.items() if k != "MAX_Z_ERROR"} | cog
    changed = r"o.tif: with the recipe's cog options .* valid pixels change value .* lossless"
    with pytest.raises(FileFailure, match=changed):
        write_cog(Piece(src, "o.tif"), Recipe(cog=options), tmp_path / "o.tif", tmp_path)
    lossless = {k: v for k, v in options.items() if k not in ("NBITS", "QUALITY")} | {"COMPRESS": "DEFLATE"}
    write_cog(Piece(src, "o.tif"), Recipe(cog=lossless), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), data)


# ---- float nodata as GDAL's nodata mask compares it


def _values_near(nodata: float, dtype: str) -> np.ndarray:
    """Values around `nodata` in `dtype`: the ends of the type, zeros, denormals, NaN, ±inf, a walk of
    ±40 ULP, and relative offsets on both sides of GDAL's edge (4 FLT_EPSILON) and far from it."""
    fi, eps = np.finfo(dtype), float(np.finfo(np.float32).eps)
    t = np.dtype(dtype).type
    special = [0.0, -0.0, fi.tiny, -fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal, 3 * fi.smallest_subnormal]
    special += [fi.max, -fi.max, np.nan, np.inf, -np.inf, float(np.finfo(np.float32).max), -3.40282e38, 1.0, -9999.0]
    values = [t(v) for v in special]
    if math.isfinite(nodata):
        up = down = t(nodata)
        with np.errstate(over="ignore"):
            for _ in range(40):
                up, down = np.nextafter(up, t(np.inf)), np.nextafter(down, t(-np.inf))
                values += [up, down]
        rel = np.concatenate(
            [np.linspace(3.9, 4.1, 801) * eps, np.linspace(1.9, 2.1, 201) * eps, np.logspace(-10, -3, 141)]
        )
        with np.errstate(over="ignore"):
            values += list((nodata * (1 + np.concatenate([rel, -rel]))).astype(dtype))
            values += list((np.arange(-50, 51) * fi.smallest_subnormal + nodata).astype(dtype))
        values += [t(nodata), -t(nodata)]
    return np.array(values, dtype=dtype)


_FLOAT_NODATA = {
    "float32": [
        -3.40282e38,
        -3.4028234663852886e38,
        3.4028234663852886e38,
        0.0,
        -0.0,
        -9999.0,
        151.0,
        1.0,
        -32767.0,
        1e-38,
        1e-45,
        1e30,
        float("inf"),
        float("nan"),
    ],
    "float64": [
        -1.7976931348623157e308,
        -3.40282e38,
        -3.4028234663852886e38,
        1e300,
        0.0,
        -0.0,
        -9999.0,
        151.0,
        1e-310,
        5e-324,
        float("-inf"),
        float("nan"),
    ],
}


@pytest.mark.parametrize("dtype, nodata", [(d, n) for d, ns in _FLOAT_NODATA.items() for n in ns])
def test_float_nodata_pixels_are_gdals_nodata_mask_pixel_for_pixel(tmp_path, dtype, nodata):
    """GDAL's nodata mask (which Mapterhorn's downstream reads through) takes float values within
    ~4.8e-7 relative of nodata for nodata (ARE_REAL_EQUAL, in the band's type); tilewise compared exactly
    and counted e.g. -FLT_MAX pixels under a nodata tag written -3.40282e+38 as elevations."""
    from tilewise.sources.raster_describe import nodata_pixels, valid_pixels

    values = _values_near(nodata, dtype)
    path = _raster(tmp_path / "v.tif", values[None], from_origin(500000, 5600000, 1, 1), nodata=nodata)
    with rasterio.open(path) as ds:
        data, gdal_nodata = ds.read(1), ds.read_masks(1) == 0
        ours = nodata_pixels(data, ds.nodata)
        finite = np.isfinite(data)
        assert np.array_equal(valid_pixels(ds), ~gdal_nodata & finite)  # NaN and ±inf never count, as before
    wrong = np.flatnonzero(ours != gdal_nodata)
    assert not wrong.size, f"{wrong.size} pixels disagree with GDAL, e.g. {data[0, wrong[:5]].tolist()}"
    normal = math.isfinite(nodata) and abs(nodata) >= np.finfo(dtype).tiny
    if normal:  # the test reaches values an exact comparison gets wrong
        assert (gdal_nodata & (data != np.array(ds.nodata, dtype))).any()


@pytest.mark.parametrize("dtype, nodata", [("int16", -1.5), ("uint8", 2.7), ("int16", -9999), ("uint16", 0)])
def test_integer_nodata_pixels_are_gdals_nodata_mask(tmp_path, dtype, nodata):
    """Integers compare exactly, with nodata converted to the band's type as GDAL does (truncated)."""
    from tilewise.sources.raster_describe import nodata_pixels

    info = np.iinfo(dtype)
    values = np.unique(
        np.clip(np.array([info.min, info.max, -10000, -9999, -9998, -2, -1, 0, 1, 2, 3, 4]), info.min, info.max)
    )
    path = _raster(tmp_path / "i.tif", values.astype(dtype)[None], from_origin(500000, 5600000, 1, 1), nodata=nodata)
    with rasterio.open(path) as ds:
        assert np.array_equal(nodata_pixels(ds.read(1), ds.nodata), ds.read_masks(1) == 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_recipes_nodata_follows_gdals_nodata_mask_too(tmp_path, dtype):
    """`valid_pixels(nodata=...)` (a recipe's value, and the lossy-nodata check) is GDAL's mask of the
    raster with that nodata assigned."""
    from tilewise.sources.raster_describe import any_valid, valid_pixels

    nodata = -3.40282e38
    values = _values_near(nodata, dtype)[None]
    bare = _raster(tmp_path / "bare.tif", values, from_origin(500000, 5600000, 1, 1), nodata=None)
    tagged = _raster(tmp_path / "tagged.tif", values, from_origin(500000, 5600000, 1, 1), nodata=nodata)
    with rasterio.open(bare) as ds, rasterio.open(tagged) as gdal:
        assert np.array_equal(valid_pixels(ds, nodata=gdal.nodata), (gdal.read_masks(1) > 0) & np.isfinite(values))
    near = np.full((4, 4), -np.finfo(np.float32).max, dtype)
    only_near = _raster(tmp_path / "near.tif", near, from_origin(500000, 5600000, 1, 1), nodata=None)
    with rasterio.open(only_near) as ds:
        # in float32, -FLT_MAX + nodata overflows to -inf: GDAL takes it for nodata; in float64 it does not
        assert any_valid(ds, nodata=nodata) == (dtype == "float64")


def test_flt_max_pixels_under_a_short_nodata_tag_stay_out_of_the_coverage(tmp_path):
    """The tester's case: nodata tagged -3.40282e+38, the empty pixels -FLT_MAX; coverage = GDAL's mask."""
    data = np.full((100, 100), 250, "float32")
    data[:, :40] = -np.finfo(np.float32).max
    src = _raster(tmp_path / "a.tif", data, from_origin(500000, 5600000, 1, 1), nodata=-3.40282e38)
    write_cog(Piece(src, "o.tif"), Recipe(), tmp_path / "o.tif", tmp_path)
    with rasterio.open(tmp_path / "o.tif") as ds:
        _, geom, _ = describe(ds)
        assert int((ds.read_masks(1) > 0).sum()) == 6000
    assert geom.area == 6000


# ---- a raster's CRS labelled with an EPSG code only where that code places it alike

_LOOSE_CRS = {
    "intl_utm32": ("+proj=utm +zone=32 +ellps=intl +units=m +no_defs", from_origin(510000, 5600000, 10, 10)),
    "bessel_lv95": (
        "+proj=somerc +lat_0=46.9524055555556 +lon_0=7.43958333333333 +k_0=1 +x_0=2600000 +y_0=1200000 "
        "+ellps=bessel +units=m +no_defs",
        from_origin(2600000, 1200000, 10, 10),
    ),
}


@pytest.mark.parametrize("case", _LOOSE_CRS)
def test_a_crs_only_like_an_epsg_code_keeps_its_wkt_and_its_coverage_stays_on_its_bounds(tmp_path, case):
    """rasterio's `to_epsg()` names `+proj=utm +zone=32 +ellps=intl` (no datum) EPSG:23032 (ED50) and a
    datum-less LV95 somerc EPSG:2056: the merge reprojected the coverage from that code, with a datum shift
    of 100–240 m the raster never had, away from its bounds.csv row (computed in the raster's own CRS)."""
    from pyproj import CRS as PyCRS

    from tilewise.sources.merge import coverage_crs, union_coverage

    proj4, transform = _LOOSE_CRS[case]
    src = _raster(tmp_path / "x.tif", np.full((100, 100), 500, "float32"), transform, crs=proj4)
    with rasterio.open(src) as ds:
        assert ds.crs.to_epsg() in (23032, 2056)  # the guess the fix must not take
        row, geom, crs = describe(ds)
    assert not crs.startswith("EPSG:")
    out = {**row, "crs": crs, "coverage_wkb": geom.wkb_hex}
    assert coverage_crs([out], None) == PyCRS.from_epsg(3857)  # no EPSG code stands for it: Web Mercator
    other = {"crs": "EPSG:25832", "coverage_wkb": shapely.box(500000, 5599000, 501000, 5600000).wkb_hex}
    for outputs in ([out], [out, other]):
        chosen = coverage_crs(outputs, None)
        union = union_coverage(outputs, chosen)
        part = min(union.geoms, key=lambda p: p.centroid.distance(shapely.box(*[row[k] for k in BOUNDS]).centroid))
        assert np.allclose(part.bounds, [row[k] for k in BOUNDS], atol=1.0)


BOUNDS = ("left", "bottom", "right", "top")


@pytest.mark.parametrize("epsg", [25832, 2056, 4326, 3857, 32633])
def test_an_esri_wkt_of_an_epsg_crs_keeps_its_code(tmp_path, epsg):
    """A .prj's ESRI WKT names the same CRS as its EPSG code (identical transformations): the code stays,
    as for a GeoTIFF tagged with the code itself (Mapterhorn's coverage CRS)."""
    from pyproj import CRS as PyCRS

    from tilewise.sources.merge import coverage_crs

    origin = {25832: (500000, 5600000, 10), 2056: (2600000, 1200000, 10), 4326: (8, 47, 0.001)}
    origin |= {3857: (900000, 6000000, 10), 32633: (400000, 5000000, 10)}
    x, y, size = origin[epsg]
    for crs in (f"EPSG:{epsg}", PyCRS.from_epsg(epsg).to_wkt("WKT1_ESRI")):
        src = _raster(tmp_path / "e.tif", np.ones((10, 10), "float32"), from_origin(x, y, size, size), crs=crs)
        with rasterio.open(src) as ds:
            row, geom, text = describe(ds)
        assert text == f"EPSG:{epsg}"
        assert coverage_crs([{**row, "crs": text, "coverage_wkb": geom.wkb_hex}], None) == PyCRS.from_epsg(epsg)


# ---- valid pixels that are no elevation: undeclared voids, other units


@pytest.mark.parametrize(
    "dtype, void",
    [
        ("int16", -32767),  # DTED/SRTM voids in a GeoTIFF without a nodata tag
        ("int16", -32768),
        ("int16", -9999),
        ("float32", -9999.0),
        ("uint16", 65535),
        ("int32", -(2**31)),
        ("float32", -3.4028235e38),
        ("float32", 1e20),
    ],
)
@pytest.mark.parametrize("recipe", [Recipe(), Recipe(slice_px=32), Recipe(nodata=0.0)], ids=["plain", "sliced", "nd"])
def test_undeclared_voids_fail_naming_the_value_and_the_fix(tmp_path, dtype, void, recipe):
    """Voids a raster does not declare were shipped as elevations (and counted as coverage)."""
    data = np.full((50, 60), 800, dtype)
    data[10:20, 10:20] = void
    src = _raster(tmp_path / "s.tif", data, from_origin(500000, 5600000, 10, 10))
    (tmp_path / "out").mkdir()
    shown = re.escape(f"{void:g}")
    for piece in plan_pieces(src, recipe):
        out = tmp_path / "out" / piece.name
        write_cog(piece, recipe, out, tmp_path)
        with rasterio.open(out) as ds:
            if piece.window is None or piece.window.col_off == 0 and piece.window.row_off == 0:
                with pytest.raises(FileFailure, match=rf"100 valid pixels .* no elevation .*; 100 of them {shown};"):
                    describe(ds)
                continue
            describe(ds)  # a slice without the voids passes
    fixed = Recipe(nodata=float(void), force_nodata=True)
    write_cog(Piece(src, "f.tif"), fixed, tmp_path / "f.tif", tmp_path)
    with rasterio.open(tmp_path / "f.tif") as ds:
        assert describe(ds)[1].area == pytest.approx((3000 - 100) * 100)


def test_a_reflectance_band_is_no_elevation_and_real_bathymetry_near_9999_is(tmp_path):
    src = shared(S2_B04)
    write_cog(Piece(src, "b.tif"), Recipe(), tmp_path / "b.tif", tmp_path)
    with rasterio.open(tmp_path / "b.tif") as ds, pytest.raises(FileFailure, match=r"b.tif: .* no elevation .*nodata"):
        describe(ds)
    trench = np.linspace(-10500, -9000, 50 * 60).reshape(50, 60).astype("float32")
    trench[0, 0] = -9999  # a real depth among its neighbours' values
    src = _raster(tmp_path / "t.tif", trench, from_origin(500000, 5600000, 10, 10))
    write_cog(Piece(src, "t.tif"), Recipe(), tmp_path / "t.cog.tif", tmp_path)
    with rasterio.open(tmp_path / "t.cog.tif") as ds:
        assert describe(ds)[1].area == pytest.approx(3000 * 100)


def _xyz(path: Path, values: tuple, holes: set, header=False, blank=False, sep=" ", newline="\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [header if isinstance(header, str) else "X Y Z"] if header else []
    for r in range(5):
        for c in range(6):
            if (r, c) not in holes:
                rows.append(sep.join(map(str, (500005 + 10 * c, 5600045 - 10 * r, values[c > 0]))))
                if blank and (r, c) == (2, 0):
                    rows.append("")
    path.write_bytes((newline.join(rows) + newline).encode())
    return path


@pytest.mark.parametrize(
    "holes, layout",
    [({(2, 3), (2, 4)}, {}), ({(1, 1)}, {"header": True}), ({(1, 1)}, {"blank": True}), ({(4, 5)}, {"sep": ","})],
    ids=["two", "header", "blank-line", "commas"],
)
def test_xyz_holes_gdal_fills_with_an_undeclared_zero_fail_the_download(tmp_path, holes, layout):
    """Byte values including 0 leave GDAL no nodata for the holes: it filled them with 0 m and declared none."""
    from tilewise.sources.raster_unread import UnreadableRasters

    _xyz(tmp_path / "d" / "h.xyz", (0, 50), holes, **layout)
    with pytest.raises(UnreadableRasters, match=rf"h.xyz: this XYZ grid has {30 - len(holes)} points for 30 cells"):
        list(open_rasters(tmp_path / "d"))
    # a full grid passes, and so do holes GDAL declares nodata for (values that leave it -32768)
    for name, values, holes_ in [("full", (0, 50), set()), ("int16", (0, 500), {(2, 3)})]:
        ((path, ds),) = open_rasters(_xyz(tmp_path / name / "h.xyz", values, holes_, header=True, blank=True).parent)
        write_cog(Piece(path, "h.tif"), Recipe(crs="EPSG:25832"), tmp_path / name / "h.tif", tmp_path)
        with rasterio.open(tmp_path / name / "h.tif") as cog:
            assert describe(cog)[1].area == pytest.approx((30 - len(holes_)) * 100)


@pytest.mark.parametrize(
    ("header", "sep"), [('"X","Y","Z"', ","), ('"x" "y" "z"', " "), ('"X";"Y";"Z"', ";"), ('1 "y" 2', " ")]
)
def test_an_xyz_header_gdal_skips_is_not_counted_as_a_point(tmp_path, header, sep):
    """GDAL takes a first line holding a letter or a quote anywhere for the header (spreadsheets and R
    quote the column names): counted as a point, it hid one hole, which GDAL filled with 0 m."""
    from tilewise.sources.raster_unread import UnreadableRasters

    _xyz(tmp_path / "d" / "h.xyz", (0, 50), {(3, 2)}, header=header, sep=sep)
    with pytest.raises(UnreadableRasters, match=r"h.xyz: this XYZ grid has 29 points for 30 cells"):
        list(open_rasters(tmp_path / "d"))
    for _, ds in open_rasters(_xyz(tmp_path / "full" / "h.xyz", (0, 50), set(), header=header, sep=sep).parent):
        assert ds.nodata is None and ds.read(1).min() == 0 and ds.width * ds.height == 30


@pytest.mark.parametrize("first", ["0e0", "0E+00", "0.0e1"])
def test_an_xyz_whose_first_point_has_an_exponent_is_no_header(tmp_path, first):
    """GDAL reads a first line whose only letter is an exponent's `e` as a point: skipped as a header, a
    full grid of Byte values was refused for a hole it has not."""
    path = _xyz(tmp_path / "d" / "h.xyz", (0, 50), set())
    head, rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(head.rsplit(b" ", 1)[0] + b" " + first.encode() + b"\n" + rest)
    for _, ds in open_rasters(path.parent):
        assert ds.nodata is None and ds.read(1)[0, 0] == 0 and ds.width * ds.height == 30


@pytest.mark.parametrize("tail", [" \n", "   \n  \n", " \r\n", "  "])
def test_a_line_of_spaces_ending_an_xyz_is_no_point(tmp_path, tail):
    """GDAL reads an XYZ ending in a line of spaces (an editor's last line): counted as a point, it hid one
    hole, which GDAL filled with 0 m."""
    from tilewise.sources.raster_unread import UnreadableRasters

    path = _xyz(tmp_path / "d" / "h.xyz", (0, 50), {(1, 4)}, header=True)
    path.write_bytes(path.read_bytes() + tail.encode())
    with pytest.raises(UnreadableRasters, match=r"h.xyz: this XYZ grid has 29 points for 30 cells"):
        list(open_rasters(path.parent))
    full = _xyz(tmp_path / "full" / "h.xyz", (0, 50), set(), header=True)
    full.write_bytes(full.read_bytes() + tail.encode())
    for _, ds in open_rasters(full.parent):
        assert ds.nodata is None and ds.read(1).min() == 0


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n\r"])
@pytest.mark.parametrize("holes", [set(), {(1, 1)}])
def test_xyz_points_are_counted_whatever_ends_their_lines(tmp_path, newline, holes):
    """GDAL reads XYZ lines ended by CR alone (classic Mac), CRLF or LFCR; points counted by LF alone
    made a full CR-only grid of Byte values "1 point for 30 cells", a valid file failed for holes it has not."""
    from tilewise.sources.raster_unread import UnreadableRasters

    folder = _xyz(tmp_path / "d" / "h.xyz", (0, 50), holes, header=True, blank=True, newline=newline).parent
    if holes:
        with pytest.raises(UnreadableRasters, match=r"h.xyz: this XYZ grid has 29 points for 30 cells"):
            list(open_rasters(folder))
        return
    for _, ds in open_rasters(folder):
        assert ds.nodata is None and ds.read(1).min() == 0


def _convert_zip(folder: Path, members: dict[str, Path]) -> tuple[list[str], list]:
    """convert_set of a zip of `members`: its output names and its notes."""

    from tilewise.sources import convert_set as convert_set_module

    (folder / "dl").mkdir(parents=True)
    download = _zip_of(folder / "dl" / "s.zip", {name: path.read_bytes() for name, path in members.items()})
    job = _convert_job(folder, Recipe())
    with convert_set_module.gdal_env():
        outputs, notes, _ = convert_set_module.convert_set(job, 0, [_remote(download.name)], [download])
    return sorted(o["filename"] for o in outputs), notes


@pytest.mark.parametrize("image", ["hillshade", "preview", "mask"])
def test_an_8_bit_image_beside_a_deeper_dem_is_skipped_and_alone_is_converted_with_a_warning(tmp_path, image):
    """Converted with only a warning, a hillshade or an untagged RGB preview shipped as a 0…255 m tile over the DEM."""
    t = from_origin(500000, 5600000, 10, 10)
    dem = (np.random.default_rng(1).random((64, 64)) * 300 + 400).astype("float32")
    g = tmp_path / "g"
    _raster(g / "dem.tif", dem, t, nodata=-9999.0)
    eight = np.stack([(dem % 256).astype("uint8")] * (3 if image == "preview" else 1))
    with rasterio.open(
        g / "img.tif", "w", driver="GTiff", width=64, height=64, count=len(eight), dtype="uint8", crs="EPSG:25832",
        transform=t, photometric="MINISBLACK", nodata=0 if image == "mask" else None,
    ) as ds:  # fmt: skip
        ds.write(eight)
    names, notes = _convert_zip(tmp_path / "both", {"dem.tif": g / "dem.tif", f"{image}.tif": g / "img.tif"})
    assert names == ["dem.tif"]
    assert [(n.raster, n.kind) for n in notes] == [(f"{image}.tif", "skipped")]
    assert "8-bit bands beside elevation rasters of more bits (dem.tif)" in notes[0].reason
    names, notes = _convert_zip(tmp_path / "alone", {f"{image}.tif": g / "img.tif"})
    assert names == [f"{image}.tif"] and [n.kind for n in notes] == ["warning"]
