"""Every biomass formula against a hand calculation (docs/biomass-model.md)."""

import statistics

import numpy as np
import pytest
import shapely
from pyproj import CRS

from tilewise.biomass import indices
from tilewise.biomass.areas import reconcile
from tilewise.biomass.quality import area_fraction, effective_count, weighted_sd
from tilewise.biomass.zonal import class_areas, mean_std_count
from tilewise.shared.errors import TilewiseError

UTM = CRS.from_epsg(32616).to_wkt()


def test_reflectance_offset_and_indices_by_hand():
    assert indices.boa_offset("04.00") == -1000 and indices.boa_offset("03.01") == 0
    assert indices.boa_offset("05.10", declared=-1000.0) == -1000
    with pytest.raises(TilewiseError, match="no processing baseline and no boa_add_offset"):
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


def test_clear_pixels_need_scl_4_to_6_and_physical_reflectance():
    # DN → ρ with the −1000 offset: 1000 → 0.0 (not > 0), 11000 → 1.0 (the limit, kept), 11001 → above it
    scl = np.array([4, 5, 6, 2, 7, 4, 4, 4, 0, 9, 4])
    red_dn = np.array([1500, 2000, 1200, 1500, 1500, 900, 1500, 1000, 1500, 1500, 11000])
    nir_dn = np.array([5000, 3000, 1100, 5000, 5000, 4000, 11001, 4000, 5000, 5000, 4000])
    red, nir = (indices.reflectance(d.astype(np.uint16), -1000) for d in (red_dn, nir_dn))
    data, clear, nonphysical = indices.masks(scl, [red, nir])
    assert clear.tolist() == [True, True, True, False, False, False, False, False, False, False, True]
    # SCL 2 (dark/cast shadow), 7 (unclassified) and 9 (cloud) are data but not clear; SCL 0 is no data
    assert data.tolist() == [True] * 8 + [False] + [True] * 2
    # ρ ≤ 0 (−0.01, 0.0) or above the bright limit (1.0001) in any band: rejected by the range alone
    assert nonphysical.tolist() == [False] * 5 + [True, True, True] + [False] * 3


def test_indices_stay_in_range_on_physical_reflectance():
    rng = np.random.default_rng(0)
    blue, green, red, nir = (rng.uniform(1e-4, 1.0, 100_000).astype(np.float32) for _ in range(4))
    out = indices.vegetation_indices(blue, green, red, nir, np.ones(100_000, bool))
    for name, values in out.items():
        finite = values[np.isfinite(values)]
        assert len(finite) and np.abs(finite).max() <= 1.0, name
    # NDVI, SAVI, NDWI are bounded by the range rule itself; EVI is not: out of range it is missing
    assert np.isfinite(out["ndvi"]).all() and np.isfinite(out["savi"]).all() and np.isfinite(out["ndwi"]).all()
    e = indices.vegetation_indices(*(np.array([v], np.float32) for v in (0.10, 0.1, 0.02, 0.60)), np.array([True]))
    assert np.isnan(e["evi"][0])  # 2.5 × 0.58 / (0.60 + 0.12 − 0.75 + 1) = 1.49: haze, not a denser canopy


def test_class_areas_with_partial_pixels_by_hand():
    # 3×3 grid of 10 m pixels; the parcel covers columns 0–1.5 of every row: 4.5 pixels
    classes = np.array([[10, 40, 40], [10, 40, 0], [30, 30, 40]], dtype=np.uint8)
    parcel = shapely.box(0, 0, 15, 30)
    extra = np.where(classes == 10, 100.0, 0.0)  # the m² of the class-10 cells, as the forest-on-crop layer
    df = class_areas([shapely.to_wkb(parcel)], UTM, classes, np.array(100.0), (0, 0, 30, 30), 0, extra)
    got = dict(zip(df["classes"][0], df["area_m2"][0], strict=True))
    # row 0: 10 whole (100) + 40 half (50); row 1: 10 whole + 40 half; row 2: 30 whole + 30 half
    assert got == pytest.approx({10: 200.0, 40: 100.0, 30: 150.0})
    assert df["valid_m2"][0] == pytest.approx(450.0)
    assert df["extra_m2"][0] == pytest.approx(200.0)


def test_mean_std_count_weighted_by_coverage_by_hand():
    ndvi = np.array([[0.2, 0.6], [np.nan, 0.8]])
    tally = np.array([[0.0, 1.0], [np.nan, 0.0]], np.float32)  # count: data pixels; sum: flagged ones
    parcel = shapely.box(0, 0, 15, 20)  # left column whole, right column half
    df = mean_std_count([shapely.to_wkb(parcel)], UTM, {"ndvi": ndvi}, (0, 0, 20, 20), {"data": tally})
    w = np.array([1.0, 0.5, 0.5])  # the NaN pixel does not count
    v = np.array([0.2, 0.6, 0.8])
    mean = (w * v).sum() / w.sum()
    assert df["ndvi_mean"][0] == pytest.approx(mean)
    assert df["ndvi_std"][0] == pytest.approx(np.sqrt((w * (v - mean) ** 2).sum() / w.sum()))
    assert df["ndvi_count"][0] == pytest.approx(2.0)
    assert df["data_count"][0] == pytest.approx(2.0) and df["data_sum"][0] == pytest.approx(0.5)


def test_weighted_sd_and_effective_count_by_hand():
    # x = (10, 20), w = (3, 1): mean 12.5; Σ w (x − m)² = 3·6.25 + 56.25 = 75; V1 = 4, V2 = 10
    # s² = 4 / (16 − 10) · 75 = 50
    assert weighted_sd([10.0, 20.0], [3.0, 1.0]) == pytest.approx(np.sqrt(50))
    assert weighted_sd([1.0, 2.0, 4.0], [3.0, 3.0, 3.0]) == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
    assert np.isnan(weighted_sd([5.0], [1.0]))
    assert effective_count([3.0, 1.0]) == pytest.approx(16 / 10) and effective_count([2.0, 2.0]) == 2


def test_area_fractions_are_clipped_to_the_parcel():
    got = area_fraction([5.0, 10.000001, 3.0], [10.0, 10.0, 0.0])
    assert got[0] == 0.5 and got[1] == 1.0 and np.isnan(got[2])


def test_reconcile_by_hand():
    # WorldCover says 7 ac forest, CDL 6 ac crop, on a 10 ac parcel; the overlay saw 2 ac of forest on crop
    got = reconcile([10.0], [7.0], [6.0], [2.0])
    # the parcel-level excess 7 + 6 − 10 = 3 is more than the overlay: 3 ac conflict, CDL keeps its 6 ac
    assert got["forest_crop_conflict_acres"][0] == 3.0 and got["crop_area_acres"][0] == 6.0
    assert got["forest_area_acres"][0] == 4.0
    got = reconcile([10.0], [5.0], [4.0], [2.0])  # measured overlap wins: forest 5 − 2 = 3
    assert (got["forest_area_acres"][0], got["forest_crop_conflict_acres"][0]) == (3.0, 2.0)
    got = reconcile([10.0], [2.0], [12.0], [0.0])  # CDL's acres a hair above the parcel: capped
    assert (got["crop_area_acres"][0], got["forest_area_acres"][0]) == (10.0, 0.0)


def test_reconciled_acres_never_exceed_the_parcel():
    rng = np.random.default_rng(1)
    parcel = rng.uniform(0.1, 100, 10_000)
    forest, crop = parcel * rng.uniform(0, 1.05, 10_000), parcel * rng.uniform(0, 1.05, 10_000)
    overlap = np.minimum(forest, crop) * rng.uniform(0, 1, 10_000)
    got = reconcile(parcel, forest, crop, overlap)
    assert (got["forest_area_acres"] + got["crop_area_acres"] <= parcel * (1 + 1e-12)).all()
    assert (got["forest_area_acres"] >= 0).all() and (got["forest_crop_conflict_acres"] >= overlap).all()


@pytest.mark.parametrize(
    ("baseline", "offset"),
    [("04.00", -1000), ("05.10", -1000), ("03.01", 0), ("02.11", 0), ("N0400", -1000), ("N0510", -1000), ("N0211", 0)],
)
def test_processing_baselines_as_sentinel2_writes_them(baseline, offset):
    assert indices.boa_offset(baseline, where="s2.csv:2") == offset


@pytest.mark.parametrize(
    ("baseline", "why"),
    [
        ("", "no processing baseline"),
        (float("nan"), "no processing baseline"),  # an empty CSV cell
        ("0211", "four digits without the N are ambiguous"),
        ("0400", "four digits without the N are ambiguous"),
        ("4", "is not one Sentinel-2 writes"),
        ("4.0", "is not one Sentinel-2 writes"),
        ("5.10", "is not one Sentinel-2 writes"),
        ("N05.10", "is not one Sentinel-2 writes"),
        ("baseline", "is not one Sentinel-2 writes"),
    ],
)
def test_other_processing_baselines_are_refused_naming_the_catalog_line(baseline, why):
    with pytest.raises(TilewiseError, match=rf"^s2\.csv:7 \(tile 14SPJ\): .*{why}.*(05\.10|N0510)"):
        indices.boa_offset(baseline, where="s2.csv:7 (tile 14SPJ)")


def test_a_declared_offset_needs_no_baseline_but_a_baseline_given_is_checked():
    assert indices.boa_offset(None, declared=-1000.0) == -1000 and indices.boa_offset("", declared=0.0) == 0
    with pytest.raises(TilewiseError, match="'0510'"):
        indices.boa_offset("0510", declared=-1000.0)
