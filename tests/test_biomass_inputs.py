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


def test_a_county_across_the_antimeridian_runs_and_measures_each_parcel_on_its_own_area(tmp_path):
    """An Aleutians West-like county (TIGER's parts at +179.6…180° and −180…−179.6°) with local WorldCover tiles
    N51E177 and N51W180, a CDL in Alaska Albers and Sentinel-2 tiles of UTM zones 60 and 1. The index listed a
    WorldCover tile N51E180, which does not exist, so the county failed on it; a parcel across 180° got every
    WorldCover cell of the tiles' width."""
    import math

    import mgrs
    from pyproj import Geod
    from rasterio.transform import from_origin

    m = Mini(tmp_path, county=("99001", "Aleut", 179.6, 51.4, 179.99, 51.6))
    res = 1 / 12000
    for name, west in (("N51E177", 179.6), ("N51W180", -180.0)):
        m.worldcover(
            name=f"ESA_WorldCover_10m_2021_v200_{name}_Map.tif",
            transform=from_origin(west, 51.6, res, res),
            shape=(2400, 4800),
        )
    x0, y0, x1, y1 = (
        math.floor(v / 30) * 30
        for v in to_crs(shapely.segmentize(shapely.box(179.55, 51.38, 180.45, 51.62), 0.01), 4326, 3338).bounds
    )
    shape = (int((y1 - y0) / 30) + 1, int((x1 - x0) / 30) + 1)
    m.cdl(crs="EPSG:3338", transform=from_origin(x0, y1 + 30, 30, 30), data=np.full(shape, 1, np.uint8))
    for lon, side in ((179.8, (179.6, 51.4, 179.999, 51.6)), (-179.8, (-179.999, 51.4, -179.6, 51.6))):
        tile = mgrs.MGRS().toMGRS(51.5, lon, MGRSPrecision=0)
        epsg, t, shape = s2_grid(tile, side, 10)
        for band, r in zip(("B02", "B03", "B04", "B08"), (0.05, 0.09, 0.07, 0.40), strict=True):
            m.s2_band(tile, "20240815", band, np.full(shape, dn(r)), t, epsg)
        epsg, ts, shape = s2_grid(tile, side, 20)
        m.s2_band(tile, "20240815", "SCL", np.full(shape, 4, np.uint8), ts, epsg)
    drawn = {
        "east": shapely.box(179.7, 51.47, 179.71, 51.48),
        "west": shapely.box(180.29, 51.47, 180.30, 51.48),
        "across": shapely.box(179.995, 51.5, 180.005, 51.51),
    }
    back = [
        shapely.transform(
            shapely.segmentize(g, 0.001), lambda xy: np.column_stack([(xy[:, 0] + 180) % 360 - 180, xy[:, 1]])
        )
        for g in drawn.values()
    ]
    m.build(gpd.GeoDataFrame({"parcel_id": list(drawn)}, geometry=to_crs(np.array(back), 4326, 3338), crs=3338))
    parts = shapely.MultiPolygon([shapely.box(179.6, 51.4, 180, 51.6), shapely.box(-180, 51.4, -179.6, 51.6)])
    gpd.GeoDataFrame({"STATEFP": ["99"], "COUNTYFP": ["001"], "NAME": ["Aleut"]}, geometry=[parts], crs=4269).to_file(
        m.inp / "counties.gpkg", layer="counties", driver="GPKG"
    )
    m.run()
    r = m.result().set_index("parcel_id")
    for pid, g in drawn.items():
        acres = abs(Geod(ellps="WGS84").geometry_area_perimeter(shapely.segmentize(g, 0.001))[0]) / 4046.8564224
        for column in ("parcel_area_acres", "worldcover_valid_area_acres", "tree_cover_acres", "cdl_valid_area_acres"):
            assert r.loc[pid, column] == pytest.approx(acres, rel=0.01), (pid, column)
        assert r.loc[pid, "s2_clear_fraction"] > 0.95 and r.loc[pid, "ndvi_mean_unitless"] == pytest.approx(0.33 / 0.47)
    assert r.loc["west", "s2_tile"].startswith("01") and r.loc["east", "s2_tile"].startswith("60")
    keys = sorted(p.stem for p in (m.root / "results/states/mini/tiles/worldcover").glob("*.json"))
    assert keys == ["N51E177", "N51W180"]


@pytest.mark.parametrize("product", ["worldcover", "cdl"])
@pytest.mark.parametrize("parcels_crs", [4326, 5070, 3857, 32616])
def test_a_parcel_past_its_countys_edge_reads_the_tile_there(tmp_path, product, parcels_crs):
    """A county ending 85 m short of −90° (WorldCover's 3° line and UTM zones 15/16) and a parcel of it
    reaching 0.005° past −90°: tiles were chosen by the county's polygon, so the tile east of −90° (a
    WorldCover square, a CDL clip) was not read and the parcel's fifth there had no data (no forest, no
    crop). The tiles of a county are those its polygon or its parcels touch, in any parcel CRS."""
    from rasterio.transform import from_origin

    box = (-90.05, 40.00, -90.001, 40.02)
    m = Mini(tmp_path, county=("99001", "Alder", *box))
    reach = (-90.05, 40.00, -89.98, 40.02)
    for tile in ("15TYE", "16TBK"):
        epsg, t, shape = s2_grid(tile, reach, 10)
        for band, r in zip(("B02", "B03", "B04", "B08"), (0.05, 0.09, 0.07, 0.40), strict=True):
            m.s2_band(tile, "20240815", band, np.full(shape, dn(r)), t, epsg)
        _, ts, ss = s2_grid(tile, reach, 20)
        m.s2_band(tile, "20240815", "SCL", np.full(ss, 4, np.uint8), ts, epsg)
    res = 1 / 12000
    east_class = {"worldcover": 10, "cdl": 5}[product]  # tree cover; soybeans
    for name, west in (("N39W093", -90.08), ("N39W090", -90.0)):
        value = east_class if west == -90.0 and product == "worldcover" else 30
        m.worldcover(
            value,
            name=f"ESA_WorldCover_10m_2021_v200_{name}_Map.tif",
            transform=from_origin(west, 40.05, res, res),
            shape=(960, 960),
        )
    cres = 0.0002  # lon/lat clips meeting at −90°, like states' clips
    for name, west, value in (("2023_30m_cdls_west.tif", -90.08, 1), ("2023_30m_cdls_east.tif", -90.0, 1)):
        value = east_class if west == -90.0 and product == "cdl" else value
        m.cdl(
            value,
            name=name,
            crs="EPSG:4326",
            transform=from_origin(west, 40.05, cres, cres),
            data=np.full((300, 400), value, np.uint8),
        )
    p = shapely.box(-90.02, 40.005, -89.995, 40.015)  # 20 % of it east of −90°
    m.counties()
    m.parcels(
        gpd.GeoDataFrame(
            {"parcel_id": ["P"]},
            geometry=to_crs(np.array([shapely.segmentize(p, 0.0005)]), 4326, parcels_crs),
            crs=parcels_crs,
        )
    )
    # plots where the demo's land cover has forest (none near −90°): of a county the layer leaves out, as
    # a plot placed 150 km from its own county is refused
    spec, m.spec = m.spec, demo.StateSpec("99", {"99003": ("Alder", -88.30, 40.00, -88.27, 40.02)})
    m.fia_and_yields()
    m.spec = spec
    m.config()
    m.run()
    r = m.result().iloc[0]
    assert r["worldcover_coverage_fraction"] > 0.99 and r["cdl_coverage_fraction"] > 0.99
    if product == "worldcover":
        assert r["tree_cover_acres"] == pytest.approx(0.2 * r["parcel_area_acres"], rel=0.02)
    else:
        crops = pd.read_parquet(tmp_path / "results/states/mini/counties/99001.crops.parquet").set_index("crop_name")
        assert crops.loc["Soybeans", "area_acres"] == pytest.approx(0.2 * r["parcel_area_acres"], rel=0.02)
