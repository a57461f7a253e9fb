"""Every biomass formula against a hand calculation (docs/biomass-model.md)."""

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from tilewise.biomass import crops, indices
from tilewise.biomass.forest import idw_densities, plot_densities
from tilewise.biomass.quality import confidence
from tilewise.biomass.zonal import class_areas, mean_std_count

UTM = CRS.from_epsg(32616).to_wkt()


def test_crop_biomass_corn_by_hand():
    got = crops.crop_biomass(1, 10.0)
    # 10 ac × 4.2 t/ac = 42 t; residue 42 × 1.2 × (1 − 0.15) = 42.84 t dry; harvestable × 0.40 = 17.136 t
    assert got["crop_yield_short_tons"] == pytest.approx(42.0)
    assert got["crop_residue_dry_short_tons"] == pytest.approx(42.84)
    assert got["crop_harvestable_residue_short_tons"] == pytest.approx(17.136)
    assert got["factors_from_table"]


def test_non_crop_codes_have_no_crop_biomass():
    for code in (61, 63, 111, 121, 141, 176, 190, 195):
        assert crops.crop_biomass(code, 5.0) is None
    other = crops.crop_biomass(12, 1.0)  # sweet corn: a crop without its own row
    assert other["crop_yield_short_tons"] == 2.0 and not other["factors_from_table"]


def test_fia_plot_density_by_hand():
    plots = pd.DataFrame(
        {
            "CN": [1, 2, 3],
            "STATECD": 17,
            "UNITCD": 1,
            "COUNTYCD": 1,
            "PLOT": [7, 7, 8],
            "INVYR": [2015, 2020, 2020],
            "LAT": [40.0, 40.0, 40.1],
            "LON": [-88.0, -88.0, -88.1],
        }
    )
    trees = pd.DataFrame(
        {
            "PLT_CN": [1, 2, 2, 2, 3],
            "STATUSCD": [1, 1, 1, 2, 2],  # the dead tree (2) and the old visit (CN 1) do not count
            "TPA_UNADJ": [6.018046, 6.018046, 74.965282, 6.018046, 6.018046],
            "DRYBIO_AG": [999.0, 1000.0, 20.0, 500.0, 800.0],
            "DRYBIO_BOLE": [600.0, 650.0, 0.0, 300.0, 500.0],
        }
    )
    d = plot_densities(plots, trees).set_index("CN")
    assert list(d.index) == [2, 3]
    # (1000 × 6.018046 + 20 × 74.965282) / 2000 = 3.0090230 + 0.7496528 = 3.7586758 short tons per acre
    assert d.loc[2, "aboveground_short_tons_per_acre"] == pytest.approx(3.7586758, rel=1e-7)
    assert d.loc[2, "bole_short_tons_per_acre"] == pytest.approx(650 * 6.018046 / 2000)
    assert d.loc[3, "live_trees"] == 0 and d.loc[3, "aboveground_short_tons_per_acre"] == 0


def test_inverse_distance_weighting_by_hand():
    points = np.array([[0.0, 0.0], [100_000.0, 0.0]])
    plots = np.array([[1000.0, 0.0], [0.0, 2000.0], [50_000.0, 0.0]])
    est = idw_densities(
        points,
        plots,
        np.array([40.0, 10.0, 99.0]),
        np.array([20.0, 5.0, 50.0]),
        radius_km=15,
        power=2,
        regional_ag=7.0,
        regional_bole=3.0,
    )
    # weights 1/1² = 1 and 1/2² = 0.25: (40 + 0.25 × 10) / 1.25 = 34; the third plot is 50 km away
    assert est.aboveground_short_tons_per_acre[0] == pytest.approx(34.0)
    assert est.bole_short_tons_per_acre[0] == pytest.approx((20 + 0.25 * 5) / 1.25)
    assert (est.plots_within_radius[0], est.nearest_plot_km[0], est.method[0]) == (2, 1.0, "idw")
    # nothing within 15 km of the second point: the regional mean
    assert (est.aboveground_short_tons_per_acre[1], est.method[1]) == (7.0, "regional_mean")


def test_reflectance_offset_and_indices_by_hand():
    assert indices.boa_offset("04.00") == -1000 and indices.boa_offset("03.01") == 0
    assert indices.boa_offset("05.10", declared=-1000.0) == -1000
    with pytest.raises(ValueError, match="processing baseline"):
        indices.boa_offset(None)
    dn = np.array([[1500, 0]], dtype=np.uint16)
    r = indices.reflectance(dn, -1000)
    assert r[0, 0] == pytest.approx(0.05) and np.isnan(r[0, 1])
    b, g, red, nir = (np.array([[v]], np.float32) for v in (0.04, 0.08, 0.06, 0.40))
    out = indices.vegetation_indices(b, g, red, nir, np.array([[True]]))
    assert out["ndvi"][0, 0] == pytest.approx((0.40 - 0.06) / (0.40 + 0.06))
    assert out["evi"][0, 0] == pytest.approx(2.5 * 0.34 / (0.40 + 6 * 0.06 - 7.5 * 0.04 + 1))
    assert out["savi"][0, 0] == pytest.approx(1.5 * 0.34 / (0.46 + 0.5))
    assert out["ndwi"][0, 0] == pytest.approx((0.08 - 0.40) / 0.48)
    scl = np.array([[4, 8, 3, 11, 0]])
    assert indices.clear_mask(scl, scl.shape).tolist() == [[True, False, False, False, False]]


def test_class_areas_with_partial_pixels_by_hand():
    # 3×3 grid of 10 m pixels; the parcel covers columns 0–1.5 of every row: 4.5 pixels
    classes = np.array([[10, 40, 40], [10, 40, 0], [30, 30, 40]], dtype=np.uint8)
    parcel = shapely.box(0, 0, 15, 30)
    df = class_areas([shapely.to_wkb(parcel)], UTM, classes, np.array(100.0), (0, 0, 30, 30), nodata=0)
    got = dict(zip(df["classes"][0], df["area_m2"][0], strict=True))
    # row 0: 10 whole (100) + 40 half (50); row 1: 10 whole + 40 half; row 2: 30 whole + 30 half
    assert got == pytest.approx({10: 200.0, 40: 100.0, 30: 150.0})
    assert df["valid_m2"][0] == pytest.approx(450.0)


def test_mean_std_count_weighted_by_coverage_by_hand():
    ndvi = np.array([[0.2, 0.6], [np.nan, 0.8]])
    parcel = shapely.box(0, 0, 15, 20)  # left column whole, right column half
    df = mean_std_count([shapely.to_wkb(parcel)], UTM, {"ndvi": ndvi}, (0, 0, 20, 20))
    w = np.array([1.0, 0.5, 0.5])  # the NaN pixel does not count
    v = np.array([0.2, 0.6, 0.8])
    mean = (w * v).sum() / w.sum()
    assert df["ndvi_mean"][0] == pytest.approx(mean)
    assert df["ndvi_std"][0] == pytest.approx(np.sqrt((w * (v - mean) ** 2).sum() / w.sum()))
    assert df["ndvi_count"][0] == pytest.approx(2.0)


def test_confidence_terms():
    out = pd.DataFrame(
        {
            "parcel_area_acres": [10.0, 10.0],
            "worldcover_valid_area_acres": [10.0, 5.0],
            "s2_valid_pixels_count": [45.0, np.nan],
            "s2_pixel_area_m2": [900.0, np.nan],
            "cdl_valid_area_acres": [10.0, 10.0],
            "forest_area_acres": [0.0, 3.0],
            "forest_method": ["idw", "regional_mean"],
            "fia_plots_within_radius_count": [0, 0],
        }
    )
    c = confidence(out, 15)
    s2_share = min(45 * 900 / crops.M2_PER_ACRE / 10, 1)
    assert c[0] == pytest.approx((1 + s2_share + 1 + 1) / 4)
    assert c[1] == pytest.approx((0.5 + 0 + 1 + 0.25) / 4)
