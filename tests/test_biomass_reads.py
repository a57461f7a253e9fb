"""Block reads and tile conversion on the real WorldCover, CDL and Sentinel-2 files, and over HTTP."""

import numpy as np
import pytest
import rasterio
import shapely

from tilewise.biomass import indices
from tilewise.biomass.blocks import read_touched_blocks
from tilewise.biomass.county import _cell_areas
from tilewise.biomass.tiles import convert_tile, read_manifest, verify_same_pixels
from tilewise.biomass.zonal import class_areas, mean_std_count
from tilewise.shared.errors import FileFailure, TilewiseError
from tilewise.shared.geometry import to_crs

from conftest import shared
from support.config import download_settings
from support.httpserver import Fault

WORLDCOVER = "landcover/esa_worldcover/ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
CDL = "landcover/usda_cdl/2021_30m_cdls_-106095_1807575_15000.tif"
S2 = (
    "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/GRANULE/"
    "L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m/T29UNU_20221005T115411_{band}_60m.jp2"
)


def areas(path, parcels_lonlat_or_native, native=False):
    with rasterio.open(path) as ds:
        geoms = parcels_lonlat_or_native if native else to_crs(parcels_lonlat_or_native, 4326, ds.crs)
        boxes = shapely.bounds(geoms)
        mosaic = read_touched_blocks(ds, 1, boxes, fill=ds.nodata or 0)
        df = class_areas(
            shapely.to_wkb(geoms), ds.crs.to_wkt(), mosaic.array, _cell_areas(ds, mosaic), mosaic.bounds, ds.nodata or 0
        )
        return df, mosaic, ds


def test_real_worldcover_class_areas_read_few_blocks():
    path = shared(WORLDCOVER)
    # two parcels on São Tomé: 0.01° squares (≈1.23 km²)
    parcels = np.array([shapely.box(6.60, 0.30, 6.61, 0.31), shapely.box(6.70, 0.20, 6.71, 0.21)])
    df, mosaic, ds = areas(path, parcels)
    for i in range(2):
        classes = set(df["classes"][i].tolist())
        assert classes <= {10, 20, 30, 40, 50, 60, 80, 90, 95} and classes
        # the class areas add up to the valid area, and that is the parcel's geodesic area
        assert df["area_m2"][i].sum() == pytest.approx(df["valid_m2"][i], rel=1e-9)
        from pyproj import Geod

        geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(parcels[i])[0])
        assert df["valid_m2"][i] == pytest.approx(geodesic, rel=1e-4)
    assert mosaic.bytes_read < 0.05 * path.stat().st_size  # a 36000² tile; a handful of blocks read


def test_real_cdl_class_areas():
    path = shared(CDL)
    with rasterio.open(path) as ds:
        left, bottom, right, top = ds.bounds
    parcel = np.array([shapely.box(left + 3000, bottom + 3000, left + 3900, bottom + 3600)])  # 0.54 km², 600 px
    df, mosaic, _ = areas(path, parcel, native=True)
    assert df["valid_m2"][0] == pytest.approx(900 * 600 * 30 * 30 / 900)
    assert df["area_m2"][0].sum() == pytest.approx(540_000)
    assert set(df["classes"][0]) & {1, 5, 24, 176}


def test_real_sentinel2_converted_verified_and_read(tmp_path):
    s = download_settings()
    for band in ("B04", "B8A", "SCL"):
        rec = convert_tile(
            str(shared(S2.format(band=band))),
            tmp_path / f"{band}.tif",
            tmp_path / f"{band}.json",
            "DEFLATE",
            s,
            tiles_dir=tmp_path,
        )
        assert rec["verified_pixels_equal"] and rec["bytes"] > 0
        with rasterio.open(tmp_path / f"{band}.tif") as ds:
            assert ds.block_shapes == [(512, 512)] and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    offset = indices.boa_offset("04.00")  # N0400 in the product name; MTD_MSIL2A.xml says BOA_ADD_OFFSET -1000
    parcel = shapely.box(505980, 5852040, 511980, 5858040)  # 6 km square, 100 × 100 px at 60 m: fields and clouds
    stats = {}
    with (
        rasterio.open(tmp_path / "B04.tif") as b4,
        rasterio.open(tmp_path / "B8A.tif") as b8,
        rasterio.open(tmp_path / "SCL.tif") as scl,
    ):
        box = np.array([parcel.bounds])
        red, nir, cls = (read_touched_blocks(d, 1, box, fill=0) for d in (b4, b8, scl))
        clear = indices.clear_mask(cls.array, cls.array.shape)
        r, n = indices.reflectance(red.array, offset), indices.reflectance(nir.array, offset)
        ndvi = indices.vegetation_indices(r, r, r, n, clear)["ndvi"]
        stats = mean_std_count([shapely.to_wkb(parcel)], b4.crs.to_wkt(), {"ndvi": ndvi}, red.bounds)
        all_clear = mean_std_count(
            [shapely.to_wkb(parcel)], b4.crs.to_wkt(), {"ndvi": np.where(cls.array > 0, 1.0, np.nan)}, red.bounds
        )
    assert 0.3 <= stats["ndvi_mean"][0] <= 1  # mostly vegetation (SCL 4) once clouds are out
    assert 0 < stats["ndvi_count"][0] < all_clear["ndvi_count"][0] <= 10_000  # clouds masked out


def test_verification_catches_a_changed_pixel(tmp_path):
    src = shared(CDL)
    with rasterio.open(src) as ds:
        profile, data = ds.profile, ds.read(1)
    data[10, 10] ^= 1
    with rasterio.open(tmp_path / "changed.tif", "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(TilewiseError, match="pixels in rows 0–"):
        verify_same_pixels(src, tmp_path / "changed.tif")


def test_windowed_reads_over_http_fetch_far_fewer_bytes_than_the_tile(tmp_path, http):
    # a 4096² uint16 band at 10 m (64 blocks of 512²), noisy like real reflectance
    rng = np.random.default_rng(3)
    data = (1000 + rng.normal(0, 300, (4096, 4096)).cumsum(axis=1) % 3000).astype(np.uint16)
    orig = tmp_path / "orig.tif"
    with rasterio.open(
        orig,
        "w",
        driver="GTiff",
        width=4096,
        height=4096,
        count=1,
        dtype="uint16",
        crs="EPSG:32616",
        transform=rasterio.transform.from_origin(300_000, 4_500_000, 10, 10),
    ) as ds:
        ds.write(data, 1)
    tif = tmp_path / "band.tif"
    convert_tile(str(orig), tif, tmp_path / "m.json", "DEFLATE", download_settings(), tiles_dir=tmp_path)
    http.files["/band.tif"] = tif.read_bytes()
    # 20 parcels of 4 ha in one 5 km stretch, as in a county's corner
    parcels = [shapely.box(310_000 + 240 * i, 4_480_000, 310_200 + 240 * i, 4_480_200) for i in range(20)]
    boxes = np.array([p.bounds for p in parcels])
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        with rasterio.open(f"/vsicurl/{http.url('band.tif')}") as ds:
            mosaic = read_touched_blocks(ds, 1, boxes, fill=0)
    served, size = http.body_bytes, tif.stat().st_size
    assert served < 0.05 * size, (served, size)
    assert mosaic.bytes_read <= served  # the compressed blocks themselves, plus the header
    assert np.median(mosaic.bytes_per_box) < 0.01 * size
    with rasterio.open(tif) as ds:
        local = read_touched_blocks(ds, 1, boxes, fill=0)
    np.testing.assert_array_equal(local.array, mosaic.array)
    assert local.bytes_read == mosaic.bytes_read


@pytest.mark.parametrize(
    "status, sibling_served, outcome",
    [
        (404, True, "absent"),
        (410, True, "absent"),
        (404, False, "no other tile of it \\(1 asked\\) exists on that server: check the href template"),
        (503, True, "gave up after 2 attempts: HTTP 503"),  # a transient error is never an absent tile
    ],
)
def test_a_missing_worldcover_tile_is_absent_only_while_the_server_has_another(
    tmp_path, http, status, sibling_served, outcome
):
    if sibling_served:
        http.files["/wc/N39W090.tif"] = shared(CDL).read_bytes()
    http.faults["/wc/N39W087.tif"] = Fault(times=100, status=status)
    s = download_settings(attempts=2, backoff_seconds=0.01)
    args = (http.url("wc/N39W087.tif"), tmp_path / "t.tif", tmp_path / "t.json", "DEFLATE", s)
    if outcome != "absent":
        with pytest.raises((TilewiseError, FileFailure), match=outcome):
            convert_tile(*args, tiles_dir=tmp_path, siblings=(http.url("wc/N39W090.tif"),))
        assert not (tmp_path / "t.json").exists()
        return
    record = convert_tile(*args, tiles_dir=tmp_path, siblings=(http.url("wc/N39W090.tif"),))
    assert (
        record["absent"] is True and f"HTTP {status}" in record["reason"] and "N39W090.tif exists" in record["reason"]
    )
    assert (tmp_path / "t.tif").stat().st_size == 0 and read_manifest(tmp_path / "t.json")["absent"] is True


def test_a_404_of_a_grid_without_holes_is_a_failure(tmp_path, http):
    with pytest.raises(FileFailure, match="HTTP 404"):
        convert_tile(
            http.url("s2/B04.tif"), tmp_path / "t.tif", tmp_path / "t.json", "DEFLATE", download_settings(), tmp_path
        )
