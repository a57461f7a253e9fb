"""Biomass inputs of classes that once gave silent wrong output, each run through the real workflow on
a one-county mini state (tests/support/mini_state.py)."""

import geopandas as gpd
import numpy as np
import shapely

from support.mini_state import Mini, dn, s2_grid, to_crs


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
