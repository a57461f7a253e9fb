"""Block reads and tile conversion on the real WorldCover, CDL and Sentinel-2 files, and over HTTP."""

import csv
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from tilewise.biomass import crop_tables, crops, indices, quickstats
from tilewise.biomass.county import CountyInputs, S2Tile, _cell_areas, process_county
from tilewise.biomass.forest import state_plot_densities
from tilewise.biomass.tiles import verify_same_pixels, write_cog
from tilewise.biomass.zonal import class_areas, mean_std_count
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs

from conftest import REPO, shared
from support.blocks import read_touched_blocks

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
    for band in ("B04", "B8A", "SCL"):
        rec = write_cog(str(shared(S2.format(band=band))), tmp_path / f"{band}.tif", None, "DEFLATE")
        assert rec["verified_pixels_equal"] and rec["bytes"] > 0 and rec["read"] == "convert"
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
        r, n = indices.reflectance(red.array, offset), indices.reflectance(nir.array, offset)
        _, clear, _ = indices.masks(cls.array, [r, n])
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
    write_cog(str(orig), tif, None, "DEFLATE")
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


# --- the model on the real samples (docs/biomass-model.md §2, §4) ---

MTD = "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/MTD_MSIL2A.xml"
CDL_TILES = [
    f"landcover/usda_cdl/2021_30m_cdls_{x}_{y}_15000.tif" for x in (-106095, -91095) for y in (1807575, 1822575)
]
FIA_EXAMPLE = [REPO / "tests" / "data" / "fia_example" / f"{t}.csv" for t in ("PLOT", "COND", "TREE")]


def test_real_sentinel2_tile_has_no_index_outside_its_range():
    mtd = shared(MTD).read_text()
    offsets = set(re.findall(r'<BOA_ADD_OFFSET band_id="\d+">(-?\d+)</BOA_ADD_OFFSET>', mtd))
    baseline = re.search(r"<PROCESSING_BASELINE>([^<]+)</PROCESSING_BASELINE>", mtd)[1]
    assert offsets == {"-1000"} and indices.boa_offset(baseline) == -1000.0
    red, nir, scl = (rasterio.open(shared(S2.format(band=b))).read(1) for b in ("B04", "B8A", "SCL"))
    r, n = indices.reflectance(red, -1000), indices.reflectance(nir, -1000)
    # the first rule (SCL without 0, 1, 3, 8–11, no range test) let 1,104 pixels give |NDVI| > 1, up to 44
    with np.errstate(divide="ignore", invalid="ignore"):
        before = ((n - r) / (n + r))[~np.isin(scl, (0, 1, 3, 8, 9, 10, 11))]
    assert (np.abs(before[np.isfinite(before)]) > 1).sum() == 1104
    data, clear, nonphysical = indices.masks(scl, [r, n])
    # the sample has B04 and B8A only: red stands in for blue and green, B8A for B08
    out = indices.vegetation_indices(r, r, r, n, clear)
    for name, values in out.items():
        finite = values[np.isfinite(values)]
        assert len(finite) > 500_000 and np.abs(finite).max() <= 1.0, name
    assert clear.sum() == 579_851 and nonphysical.sum() == 1_150  # ρ ≤ 0 or > 1 in SCL 4–6
    assert (scl == 7).sum() == 16_224 and not (clear & np.isin(scl, (2, 7))).any()


def run_county(parcels, worldcover=(), cdl=(), s2=(), yields_file=None, year=2021, state="20"):
    plots, _, _ = state_plot_densities(*FIA_EXAMPLE, "exclude_plot", "20")
    files = [str(f) for f in (yields_file, crop_tables.NATIONAL_YIELDS) if f]
    yields = crops.Yields(year, crops.yields_table(yields_file, crop_tables.NATIONAL_YIELDS, state, year), files)
    inputs = CountyInputs(parcels, list(worldcover), list(cdl), list(s2), plots, yields, 15, 2)
    return process_county(inputs)


def grid(bounds, side, crs):
    xs, ys = np.arange(bounds[0], bounds[2] - side / 2, side), np.arange(bounds[1], bounds[3] - side / 2, side)
    boxes = [shapely.box(x, y, x + side, y + side) for x in xs for y in ys]
    return gpd.GeoDataFrame({"parcel_id": [f"P{i:04d}" for i in range(len(boxes))]}, geometry=boxes, crs=crs)


def test_real_sentinel2_county(tmp_path):
    converted = {}
    for band in ("B04", "B8A", "SCL"):
        converted[band] = tmp_path / f"{band}.tif"
        write_cog(str(shared(S2.format(band=band))), converted[band], None, "DEFLATE")
    bands = {"B02": converted["B04"], "B03": converted["B04"], "B04": converted["B04"], "B08": converted["B8A"]}
    tile = S2Tile("29UNU", "20221005", dict.fromkeys([*bands, "SCL"], -1000.0), {**bands, "SCL": converted["SCL"]})
    # 36 parcels of 1 km² on fields and clouds (EPSG:32629), the area the reads above use
    result, _, _ = run_county(grid((505980, 5852040, 511980, 5858040), 1000, 32629), s2=[tile])
    assert result["s2_tile"].eq("29UNU").all() and result["s2_tile_contains_parcel"].all()
    for name in ("ndvi", "evi", "savi", "ndwi"):
        means = result[f"{name}_mean_unitless"].dropna()
        assert len(means) and means.abs().max() <= 1, name
    assert result["s2_coverage_fraction"].between(0.99, 1).all()  # the whole parcel has data
    assert (result["s2_clear_fraction"] < 0.9).any() and (result["s2_clear_fraction"] > 0.9).any()  # clouds
    assert (result["s2_clear_pixels_count"] <= result["s2_data_pixels_count"]).all()
    assert (result["worldcover_coverage_fraction"] == 0).all() and (result["cdl_coverage_fraction"] == 0).all()
    assert result["forest_method"].eq("regional_ratio").all()  # the FIA plots are in Kansas


def kansas_yields(path):
    """A Quick Stats export of Kansas 2021 yields for the test (test values, not NASS figures)."""
    items = {
        "CORN, GRAIN - YIELD, MEASURED IN BU / ACRE": "130",
        "SORGHUM, GRAIN - YIELD, MEASURED IN BU / ACRE": "85",
        "SOYBEANS - YIELD, MEASURED IN BU / ACRE": "40",
        "WHEAT, WINTER - YIELD, MEASURED IN BU / ACRE": "50",
        "OATS - YIELD, MEASURED IN BU / ACRE": "60",
        "RYE - YIELD, MEASURED IN BU / ACRE": "30",
        "SUNFLOWER - YIELD, MEASURED IN LB / ACRE": "1,500",
    }
    rows = [
        {
            **dict.fromkeys(quickstats.COLUMNS, ""),
            "Program": "SURVEY",
            "Year": "2021",
            "Period": "YEAR",
            "Geo Level": "STATE",
            "State": "KANSAS",
            "State ANSI": "20",
            "Data Item": item,
            "Domain": "TOTAL",
            "Value": value,
        }
        for item, value in items.items()
    ]
    pd.DataFrame(rows).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return path


def test_every_code_of_the_real_cdl_sample_has_a_rule():
    legend, doubles, params = crop_tables.legend(), crop_tables.double_crops(), crop_tables.crop_parameters()
    codes = set()
    for rel in CDL_TILES:
        with rasterio.open(shared(rel)) as ds:
            codes |= set(np.unique(ds.read(1)).tolist())
    assert len(codes) == 35 and codes <= set(legend.index)
    for code in sorted(codes):
        if not legend.loc[code, "is_crop_area"]:
            assert legend.loc[code, "category"] in (
                "forest",
                "water",
                "developed",
                "grass_pasture",
                "wetland",
                "shrubland",
                "barren",
            ), code
            continue
        parts = doubles.loc[code].tolist() if code in doubles.index else [code]
        for crop in parts:  # a production row, or a documented reason it has none
            assert crop in params.index, f"CDL code {code} (crop {crop}) has no row in crop_parameters.csv"
            assert isinstance(params.loc[crop, "notes"], str) and params.loc[crop, "notes"], crop


def test_real_cdl_county(tmp_path):
    paths = [shared(rel) for rel in CDL_TILES]
    with rasterio.open(paths[0]) as ds:
        crs = ds.crs
    parcels = grid((-106095 + 600, 1792605 + 600, -76095 - 600, 1822605 - 600), 1200, crs)  # 576 parcels
    # the national table has no 2021 sorghum: without the state's export the county stops and says so
    with pytest.raises(TilewiseError, match=r"no 2021 yield for 'SORGHUM, GRAIN - YIELD, MEASURED IN BU / ACRE'"):
        run_county(parcels, cdl=paths)
    result, detail, _ = run_county(parcels, cdl=paths, yields_file=kansas_yields(tmp_path / "ks.csv"))
    assert result["cdl_coverage_fraction"].min() > 0.999  # every parcel fully inside the sample
    assert (result["crop_area_acres"] + result["forest_area_acres"] <= result["parcel_area_acres"] * (1 + 1e-9)).all()
    # double crops: both crops, on the full area; the area itself once
    dbl = detail[detail["cdl_code"] == 26]
    assert set(dbl["component"]) == {"first", "second"} and set(dbl["crop_code"]) == {24, 5}
    once = detail.drop_duplicates(["parcel_id", "cdl_code"])["area_acres"].sum()
    assert result["crop_area_acres"].sum() == pytest.approx(once, rel=1e-6)
    # nothing that is not crop area is in the crop detail, and every crop row has a number or a reason
    legend = crop_tables.legend()
    assert legend.loc[detail["cdl_code"].unique(), "is_crop_area"].all()
    unexplained = detail[detail["production_dry_short_tons_per_year"].isna() & (detail["note"] == "")]
    assert unexplained.empty
    assert set(detail.loc[detail["production_dry_short_tons_per_year"].isna(), "crop_code"]) >= {36, 37, 205}
    assert (result["crop_yield_state_table_acres"] > 0).any()
    assert result["forest_method"].eq("idw").any()  # the hand example's plots lie in these tiles


def test_real_worldcover_county():
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["A", "B", "C"]},
        geometry=[
            shapely.box(6.60, 0.30, 6.61, 0.31),
            shapely.box(6.70, 0.20, 6.71, 0.21),
            shapely.box(6.5, 0.2, 6.52, 0.22),
        ],
        crs=4326,
    )
    result, detail, _ = run_county(parcels, worldcover=[shared(WORLDCOVER)])
    assert result["worldcover_coverage_fraction"].min() > 0.999
    forest = result["tree_cover_acres"] + result["mangroves_acres"]
    assert result["worldcover_forest_acres"].to_numpy() == pytest.approx(forest.to_numpy())
    assert (result["forest_area_acres"] == result["worldcover_forest_acres"]).all()  # no CDL: no crop to win
    assert (result["forest_crop_conflict_acres"] == 0).all() and detail.empty
    assert (result["forest_aboveground_dry_short_tons"] > 0).any()
