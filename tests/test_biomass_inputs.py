"""Biomass inputs of classes that once gave silent wrong output, each run through the real workflow on
a one-county mini state (tests/support/mini_state.py)."""

import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from support.mini_state import Mini, demo, dn, s2_grid, to_crs

pytestmark = pytest.mark.workflow


def test_a_clear_tile_of_the_parcels_zone_beats_a_clouded_one_of_the_next_zone(tmp_path):
    """Tiles of two UTM zones have pixels of different ground area (~0.1 % here): compared by pixel
    counts, the next zone's tile won with a cloud over the parcel, and a cloudless parcel never reached
    the own-zone tie-break. Shares of the parcel are compared now."""
    box = (-89.52, 40.00, -89.48, 40.02)  # zone 16, 2.5° from its meridian; 3.5° from zone 15's
    m = Mini(tmp_path, county=("99001", "Alder", *box))
    clouded, clear = (0.05, 0.09, 0.07, 0.40), (0.05, 0.09, 0.10, 0.30)  # NDVI 0.7021 and 0.5000
    p = shapely.box(-89.515, 40.002, -89.505, 40.008)  # a cloud in 15TYE inside it
    q = shapely.box(-89.495, 40.002, -89.485, 40.008)  # no cloud in either tile
    for tile, refl in (("15TYE", clouded), ("16TBK", clear)):
        epsg, t, shape = s2_grid(tile, box, 10)
        _, ts, ss = s2_grid(tile, box, 20)
        for band, r in zip(("B02", "B03", "B04", "B08"), refl, strict=True):
            m.s2_band(tile, "20240815", band, np.full(shape, dn(r)), t, epsg)
        scl = np.full(ss, 4, np.uint8)
        if tile == "15TYE":
            cx, cy = shapely.get_coordinates(to_crs(p.centroid, 4326, epsg))[0]
            col, row = ~ts * (cx, cy)
            scl[int(row), int(col)] = 9  # one 20 m cloud cell: 2×2 band pixels
        m.s2_band(tile, "20240815", "SCL", scl, ts, epsg)
    m.worldcover(40)
    m.cdl(1)
    m.build(gpd.GeoDataFrame({"parcel_id": ["P", "Q"]}, geometry=[p, q], crs=4326))
    m.run()
    r = m.result().set_index("parcel_id")
    assert r.loc["P", "s2_tile"] == r.loc["Q", "s2_tile"] == "16TBK"
    assert np.allclose(r["ndvi_mean_unitless"], 0.5)


def _strip_parcels(m, box, n, step):
    w, s, _, _ = box
    polys = [shapely.box(w + 0.002 + i * step, s + 0.004, w + 0.002 + i * step + 0.004, s + 0.008) for i in range(n)]
    return gpd.GeoDataFrame({"parcel_id": [f"A{i}" for i in range(n)]}, geometry=polys, crs=4326)


def test_a_county_that_left_the_index_leaves_no_result_behind(tmp_path):
    """A county layer fixed from two counties to one: the other's published files stayed, and a glob of
    counties/*.parquet read every parcel of it twice."""
    box = (-88.30, 40.00, -88.24, 40.02)
    m = Mini(tmp_path, county=("99001", "Alder", *box))
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    two = demo.StateSpec(
        "99", {"99001": ("Alder", -88.30, 40.00, -88.27, 40.02), "99003": ("Birch", -88.27, 40.00, -88.24, 40.02)}
    )
    m.spec = two
    demo.county_layer(two).to_file(m.inp / "counties.gpkg", layer="counties", driver="GPKG")
    m.parcels(_strip_parcels(m, box, 10, 0.006))
    m.fia_and_yields()
    m.config()
    m.run()
    counties = tmp_path / "results/states/mini/counties"
    assert (counties / "99003.parquet").exists()
    time.sleep(1.1)
    demo.county_layer(demo.StateSpec("99", {"99001": ("Alder", *box)})).to_file(
        m.inp / "counties.gpkg", layer="counties", driver="GPKG"
    )
    m.run()
    assert sorted(p.name for p in counties.iterdir()) == ["99001.crops.parquet", "99001.parquet", "99001.stats.json"]
    assert len(pd.read_parquet(counties / "99001.parquet")) == 10


def test_a_failed_run_on_new_inputs_leaves_no_done_record_of_the_old_ones(tmp_path):
    """New parcels whose county then fails: DONE.json and the state files of the run before stayed,
    vouching for results the new inputs do not give."""
    m = Mini(tmp_path)
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    m.build(_strip_parcels(m, m.box, 5, 0.004))
    m.run()
    state = tmp_path / "results/states/mini"
    assert (state / "DONE.json").exists()
    time.sleep(1.1)
    m.worldcover(painter=_grass_with_a_stray_class)
    m.parcels(_strip_parcels(m, m.box, 4, 0.004))  # a new index: one parcel fewer
    proc = m.run(check=False)
    assert proc.returncode != 0 and "class" in proc.stderr
    assert not any((state / name).exists() for name in ("DONE.json", "parcels.parquet", "county_summary.csv"))
    assert not (state / "counties").exists()


def _grass_with_a_stray_class(data, transform):
    data[:] = 30
    data[data.shape[0] // 2 :, :] = 7  # not a WorldCover class: the county fails
    return data
