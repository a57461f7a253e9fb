"""A county on small synthetic rasters: WorldCover forest against CDL crop area, pixel by pixel
(the real samples do not overlap: São Tomé and Kansas), unknown classes, a tile without SCL."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from rasterio.transform import from_origin

from tilewise.biomass import crop_tables, crops
from tilewise.biomass.county import CountyInputs, S2Tile, process_county
from tilewise.biomass.forest import state_plot_densities
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs
from tilewise_demo.rasters import write_band

from conftest import REPO

EXAMPLE = REPO / "tests" / "data" / "fia_example"  # Clay County, Kansas: around the rasters below
FOREST_EDGE, CROP_EDGE = -97.095, -97.097  # WorldCover forest west of the first, CDL corn west of the second
PARCEL = shapely.box(-97.101, 39.300, -97.091, 39.305)
WC_DEG = 1 / 12000


def centres(transform, shape, crs):
    cols = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    rows = transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    x, y = np.meshgrid(cols, rows)
    lonlat = shapely.get_coordinates(to_crs(shapely.points(x.ravel(), y.ravel()), crs, 4326))
    return lonlat[:, 0].reshape(shape), lonlat[:, 1].reshape(shape)


def rasters(tmp_path, cdl_code_west=1):
    wt = from_origin(-97.11, 39.31, WC_DEG, WC_DEG)
    shape = (int(0.02 / WC_DEG), int(0.03 / WC_DEG))
    lon, _ = centres(wt, shape, 4326)
    wc = write_band(tmp_path / "wc.tif", np.where(lon < FOREST_EDGE, 10, 40).astype(np.uint8), "EPSG:4326", wt, 0)
    box = to_crs(shapely.box(-97.11, 39.29, -97.08, 39.31), 4326, 5070).bounds
    ct = from_origin(np.floor(box[0] / 30) * 30, np.ceil(box[3] / 30) * 30, 30, 30)
    cshape = (int((box[3] - box[1]) / 30) + 2, int((box[2] - box[0]) / 30) + 2)
    clon, _ = centres(ct, cshape, 5070)
    cdl = write_band(
        tmp_path / "cdl.tif", np.where(clon < CROP_EDGE, cdl_code_west, 176).astype(np.uint8), "EPSG:5070", ct, 0
    )
    return wc, cdl


def inputs(wc, cdl, s2=()):
    plots, _, _ = state_plot_densities(*(EXAMPLE / f"{t}.csv" for t in ("PLOT", "COND", "TREE")), "exclude_plot")
    files = [str(crop_tables.NATIONAL_YIELDS)]
    yields = crops.Yields(2023, crops.yields_table(None, crop_tables.NATIONAL_YIELDS, "20", 2023), files)
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[PARCEL], crs=4326)
    return CountyInputs(parcels, [wc], [cdl], list(s2), plots, yields, 15, 2)


def geodesic_acres(geom):
    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0]) / crops.M2_PER_ACRE


def test_worldcover_forest_on_cdl_crop_is_measured_and_cdl_wins(tmp_path):
    result, detail, _ = process_county(inputs(*rasters(tmp_path)))
    [p] = result.to_dict("records")
    # by hand: forest −97.101…−97.095, corn −97.101…−97.097 → both on −97.101…−97.097
    overlap = geodesic_acres(shapely.box(-97.101, 39.300, CROP_EDGE, 39.305))
    forest = geodesic_acres(shapely.box(-97.101, 39.300, FOREST_EDGE, 39.305))
    column = 30 * 556 / crops.M2_PER_ACRE  # one CDL pixel column along the 0.005° (556 m) edge
    assert p["worldcover_forest_acres"] == pytest.approx(forest, abs=0.2)
    assert p["forest_crop_conflict_acres"] == pytest.approx(overlap, abs=column)
    assert p["crop_area_acres"] == pytest.approx(overlap, abs=column)  # CDL keeps all its corn
    assert p["forest_area_acres"] == pytest.approx(forest - p["forest_crop_conflict_acres"])
    assert p["forest_area_acres"] + p["crop_area_acres"] <= p["parcel_area_acres"]
    assert p["forest_aboveground_dry_short_tons"] == pytest.approx(
        p["forest_area_acres"] * p["forest_aboveground_density_dry_short_tons_per_acre"]
    )
    # corn 2023 from the national table: 177.3 bu × 56 lb × 0.845 / 2000 per acre of CDL corn
    assert detail["yield_source"].tolist() == ["national"]
    assert p["crop_production_dry_short_tons_per_year"] == pytest.approx(
        detail["area_acres"].sum() * 177.3 * 56 * 0.845 / 2000
    )
    assert p["cdl_coverage_fraction"] == pytest.approx(1.0, abs=1e-3) and p["s2_clear_fraction"] == 0.0


def test_no_conflict_where_cdl_is_not_crop(tmp_path):
    result, detail, _ = process_county(inputs(*rasters(tmp_path, cdl_code_west=141)))  # CDL forest, not crop
    [p] = result.to_dict("records")
    assert p["forest_crop_conflict_acres"] == 0 and p["crop_area_acres"] == 0 and detail.empty
    assert p["forest_area_acres"] == p["worldcover_forest_acres"] and p["cdl_forest_acres"] > 0


def test_a_class_outside_the_legend_fails_naming_the_file(tmp_path):
    wc, cdl = rasters(tmp_path, cdl_code_west=7)  # 7 is not a CDL code
    with pytest.raises(TilewiseError, match=r"cdl\.tif: class values \[7\] inside parcels are not in the product"):
        process_county(inputs(wc, cdl))


def test_a_sentinel2_tile_without_scl_fails(tmp_path):
    wc, cdl = rasters(tmp_path)
    bands = dict.fromkeys(("B02", "B03", "B04", "B08"), wc)
    tile = S2Tile("14SPJ", "20230801", dict.fromkeys(bands, -1000.0), bands)
    with pytest.raises(TilewiseError, match="14SPJ 20230801: no SCL band"):
        process_county(inputs(wc, cdl, [tile]))
