import json
import math
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from tilewise.biomass.grids import (
    geodesic_row_areas_m2,
    s2_footprint,
    s2_footprint_lonlat,
    s2_tiles_near,
    worldcover_tile_box,
    worldcover_tiles,
)
from tilewise.biomass.tile_index import load_counties, select_sentinel2, select_worldcover, sentinel2_catalog
from tilewise.shared.errors import TilewiseError

from conftest import shared


def illinois_grid():
    return json.loads(shared("sentinel2_grid/sentinel2_tiles_illinois.geojson").read_text())["features"]


def test_footprints_equal_the_esa_grid_for_all_34_illinois_tiles():
    features = illinois_grid()
    assert len(features) == 34
    for f in features:
        p = f["properties"]
        epsg, bounds = s2_footprint(p["tile"])
        assert (epsg, bounds) == (p["epsg"], tuple(float(v) for v in p["utm_bounds"].strip("()").split(",")))
        # lon/lat: the grid's corners are ours; our edges are densified (so they bend, by < 0.01°)
        grid = shapely.geometry.shape(f["geometry"])
        ours = s2_footprint_lonlat(p["tile"])
        corners = shapely.points(shapely.get_coordinates(grid))
        assert shapely.distance(corners, ours.exterior).max() < 1e-7
        assert ours.hausdorff_distance(grid) < 0.01


def test_footprint_of_the_real_sentinel2_product_matches_its_file():
    import rasterio

    band = shared(
        "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/GRANULE/"
        "L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m/T29UNU_20221005T115411_B04_60m.jp2"
    )
    with rasterio.open(band) as ds:
        assert s2_footprint("29UNU") == (ds.crs.to_epsg(), tuple(ds.bounds))


def illinois_catalog(tmp_path):
    tiles = [f["properties"]["tile"] for f in illinois_grid()]
    rows = [
        {"tile": t, "date": "20240815", "band": b, "href": f"{t}_{b}.tif", "processing_baseline": "05.10"}
        for t in tiles
        for b in ("B02", "B03", "B04", "B08", "SCL")
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    return tmp_path / "catalog.csv"


def test_tile_selection_for_real_illinois_counties(tmp_path):
    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "17")
    assert len(counties) == 102
    catalog = illinois_catalog(tmp_path)
    chosen = select_sentinel2(counties, pd.read_csv(catalog, dtype=str), catalog.parent, None)
    b04 = chosen[chosen["band"] == "B04"].set_index("tile")["counties"].str.split()
    mclean = sorted(t for t, users in b04.items() if "17113" in users)
    expected = sorted(f["properties"]["tile"] for f in illinois_grid() if f["properties"]["intersects_mclean_county"])
    assert mclean == expected == ["16TBK", "16TBL", "16TCK", "16TCL"]
    # deduplicated across the state: one row per tile and band, every county served, every grid tile used
    assert not chosen.duplicated(["tile", "band"]).any()
    assert set(b04.index) == {f["properties"]["tile"] for f in illinois_grid()}
    served = {c for users in b04 for c in users}
    assert served == set(counties["county_fips"])
    assert chosen["boa_add_offset_dn"].eq(-1000.0).all()  # baseline 05.10 ≥ 04.00


def test_worldcover_tiles_and_geodesic_pixel_area():
    assert worldcover_tiles((-91.5, 36.97, -87.5, 42.5)) == [
        "N36W093",
        "N36W090",
        "N39W093",
        "N39W090",
        "N42W093",
        "N42W090",
    ]
    assert worldcover_tile_box("N00E006").bounds == (6, 0, 9, 3)
    counties = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    assert worldcover_tiles(tuple(counties[counties.GEOID == "17113"].to_crs(4326).total_bounds)) == ["N39W090"]
    # hand calculation on the WGS84 ellipsoid: N·cosφ·Δλ × M·Δφ at φ = 40°, Δ = 1/12000°
    a, e2, phi, d = 6378137.0, 0.00669437999014, math.radians(40 - 0.5 / 12000), math.radians(1 / 12000)
    w = 1 - e2 * math.sin(phi) ** 2
    n_radius, m_radius = a / math.sqrt(w), a * (1 - e2) / w**1.5
    expected = n_radius * math.cos(phi) * d * m_radius * d
    got = geodesic_row_areas_m2(40.0, -1 / 12000, 1 / 12000, 3)
    assert got[0] == pytest.approx(expected, rel=1e-6) and got[0] == pytest.approx(65.85, abs=0.01)
    assert np.all(np.diff(got) > 0)  # rows further south have larger cells


def test_template_catalog_covers_the_tiles_of_real_counties():
    from tilewise.biomass.tile_index import catalog_from_template

    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "17")
    mclean = counties[counties["county_fips"] == "17113"]
    cat = catalog_from_template(mclean, "https://x/{tile}/{date}/{band}.tif", "20240815", "05.11")
    chosen = select_sentinel2(mclean, cat, Path("."), "20240815")
    assert sorted(chosen["tile"].unique()) == ["16TBK", "16TBL", "16TCK", "16TCL"]
    assert chosen["href"].str.match(r"https://x/16T[BC][KL]/20240815/(B0[2348]|SCL)\.tif").all()


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("", "no processing baseline and no boa_add_offset"),
        ("0211", "processing baseline '0211' is not one Sentinel-2 writes .four digits without the N"),
        ("N05.10", "processing baseline 'N05.10' is not one Sentinel-2 writes"),
    ],
)
def test_a_catalog_baseline_sentinel2_does_not_write_stops_the_index_naming_its_line(tmp_path, cell, error):
    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "17")
    mclean = counties[counties["county_fips"] == "17113"]
    rows = [
        f"16TCK,20240815,{b},{b}.tif,{cell if b == 'B08' else 'N0510'}" for b in ("B02", "B03", "B04", "B08", "SCL")
    ]
    catalog = tmp_path / "s2.csv"
    # a blank line counts: the B08 row is on line 6
    catalog.write_text("\n".join(["tile,date,band,href,processing_baseline", *rows[:2], "", *rows[2:]]) + "\n")
    inputs = SimpleNamespace(stac=lambda: None, sentinel2_template=None, sentinel2_catalog=str(catalog))
    table, folder = sentinel2_catalog(inputs, mclean)
    with pytest.raises(TilewiseError, match=rf"^{catalog}:6 \(tile 16TCK 20240815 band B08\): {error}"):
        select_sentinel2(mclean, table, folder, None)
    # the product name's form is read as its baseline: N0510 is 05.10, with the −1000 offset
    fixed = table.assign(processing_baseline="N0510")
    assert select_sentinel2(mclean, fixed, folder, None)["boa_add_offset_dn"].eq(-1000.0).all()


def _mclean_catalog(tmp_path, rows: list[str], header="tile,date,band,href,processing_baseline,boa_add_offset"):
    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "17")
    mclean = counties[counties["county_fips"] == "17113"]
    catalog = tmp_path / "s2.csv"
    catalog.write_text("\n".join([header, *rows]) + "\n")
    inputs = SimpleNamespace(stac=lambda: None, sentinel2_template=None, sentinel2_catalog=str(catalog))
    table, folder = sentinel2_catalog(inputs, mclean)
    return mclean, table, folder, catalog


_BANDS = ("B02", "B03", "B04", "B08", "SCL")


@pytest.mark.parametrize("offset", ["-0.1", "1000", "-999.5", "-10000", "0.1"])
def test_a_boa_offset_that_is_not_whole_negative_dn_is_refused(tmp_path, offset):
    """ESA's BOA_ADD_OFFSET is −1000 DN (0 before baseline 04.00): a reflectance offset (−0.1, as STAC gives
    it), a positive or fractional one would shift every reflectance without a word."""
    rows = [f"16TCK,20240815,{b},{b}.tif,05.10,{offset if b == 'B04' else -1000}" for b in _BANDS]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(
        TilewiseError,
        match=rf"^{catalog}:4 \(tile 16TCK 20240815 band B04\): boa_add_offset .* not a Sentinel-2 offset",
    ):
        select_sentinel2(mclean, table, folder, None)


@pytest.mark.parametrize("offset", ["-1000", "0", "-1000.0"])
def test_whole_dn_offsets_are_taken_as_declared(tmp_path, offset):
    rows = [f"16TCK,20240815,{b},{b}.tif,05.10,{offset}" for b in _BANDS]
    mclean, table, folder, _ = _mclean_catalog(tmp_path, rows)
    assert select_sentinel2(mclean, table, folder, None)["boa_add_offset_dn"].eq(float(offset)).all()


@pytest.mark.parametrize("other", ["2024-08-15", "15.08.2024", "20241315", "2024081", "202408150"])
def test_a_catalog_date_not_written_yyyymmdd_is_refused(tmp_path, other):
    """The latest date is found by comparing: '2024-08-15' sorted before '20240615' as text, and June won."""
    rows = [f"16TCK,20240615,{b},{b}.tif,05.10," for b in _BANDS] + [
        f"16TCK,{other},{b},x{b}.tif,05.10," for b in _BANDS
    ]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(
        TilewiseError, match=rf"^{catalog}:7 \(tile 16TCK {other} band B02\): date .* not a day written YYYYMMDD"
    ):
        select_sentinel2(mclean, table, folder, None)


def test_two_products_for_one_tile_date_and_band_are_refused(tmp_path):
    """A reprocessed product beside the original: one file per band would be converted, with another
    row's offset."""
    rows = [f"16TCK,20240815,{b},a{b}.tif,05.10," for b in _BANDS] + ["16TCK,20240815,B04,b_B04.tif,03.01,"]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(TilewiseError, match=rf"two products for one tile, date and band: {catalog}:4 .*; {catalog}:7"):
        select_sentinel2(mclean, table, folder, None)
    # an older date's second product is not read, and does not stop the index
    older = rows[:5] + ["16TCK,20240601,B04,b_B04.tif,03.01,", "16TCK,20240601,B04,c_B04.tif,03.01,"]
    mclean, table, folder, _ = _mclean_catalog(tmp_path, older)
    assert len(select_sentinel2(mclean, table, folder, None)) == 5


def test_a_county_stored_as_several_features_is_one_county(tmp_path):
    """A singlepart copy of the county layer (islands as features: `ogr2ogr -explodecollections`) gave
    Newport County five rows, each processed and published."""
    real = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    parts = real.explode(index_parts=False)
    assert (parts["GEOID"] == "44005").sum() > 1
    parts.to_file(tmp_path / "single.gpkg")
    whole, single = (
        load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "44"),
        load_counties(tmp_path / "single.gpkg", "44"),
    )
    assert single["county_fips"].tolist() == whole["county_fips"].tolist() == sorted(set(whole["county_fips"]))
    for a, b in zip(whole.geometry, single.geometry, strict=True):
        assert a.symmetric_difference(b).area < 1e-12 * a.area


def test_a_vector_file_of_several_layers_is_refused_naming_them(tmp_path):
    """Parcels of two years in one GeoPackage: GDAL gave the first layer, and the other's parcels were missing."""
    from tilewise.biomass.vectors import read_vector

    real = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    real.iloc[:2].to_file(tmp_path / "p.gpkg", layer="parcels_2019")
    real.iloc[2:6].to_file(tmp_path / "p.gpkg", layer="parcels_2024")
    with pytest.raises(
        TilewiseError,
        match=r"p\.gpkg: 2 layers with geometries \(parcels_2019, parcels_2024\), so which holds the parcels",
    ):
        read_vector(str(tmp_path / "p.gpkg"), "parcels")
    real.iloc[2:6].to_file(tmp_path / "one.gpkg", layer="parcels_2024")
    assert len(read_vector(str(tmp_path / "one.gpkg"), "parcels")) == 4


def test_one_file_listed_for_two_bands_is_refused(tmp_path):
    rows = [f"16TCK,20240815,{b},{'B04' if b == 'B08' else b}.tif,05.10," for b in _BANDS]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(TilewiseError, match=rf"one file for two bands: {catalog}:4 .*B04\); {catalog}:5 .*B08\)"):
        select_sentinel2(mclean, table, folder, None)


def test_a_county_no_cdl_file_reaches_is_refused(tmp_path):
    """A CDL of another area was dropped without a word, and every parcel had 0 acres of crops."""
    import rasterio
    from rasterio.transform import from_origin

    from tilewise.biomass.tile_index import select_cdl

    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "44")
    path = tmp_path / "2023_30m_cdls_ks.tif"
    profile = dict(driver="GTiff", width=10, height=10, count=1, dtype="uint8", crs="EPSG:5070")
    with rasterio.open(path, "w", transform=from_origin(-100_000, 1_700_000, 30, 30), **profile) as ds:
        ds.write(np.ones((1, 10, 10), "uint8"))
    with pytest.raises(TilewiseError, match=r"no CDL file of the config .* reaches counties 44001, 44003"):
        select_cdl(counties, (str(path),))


def test_parcels_that_cover_the_same_land_are_listed():
    """Stacked condominium units and a lot inside its parcel: a county's totals count their land once per
    parcel, so they are listed (index/overlapping_parcels.csv) and logged. Neighbours that share an edge,
    or overlap by a digitizing sliver, are not."""
    from tilewise.biomass.tile_index import overlapping_parcels

    a = shapely.box(0, 0, 100, 100)
    geoms = {
        "A": a,
        "A-unit2": a,  # stacked
        "lot": shapely.box(10, 10, 30, 30),  # inside A
        "half": shapely.box(50, 0, 150, 100),  # half of it over A
        "east": shapely.box(150, 0, 250, 100),  # touches "half" only
        "sliver": shapely.box(250 - 0.05, 0, 350, 100),  # 0.05 % over "east"
    }
    parcels = gpd.GeoDataFrame(
        {"parcel_id": list(geoms), "county_fips": "17113"}, geometry=list(geoms.values()), crs=32616
    )
    found = overlapping_parcels(parcels)
    pairs = {tuple(sorted((r.parcel_id, r.other_parcel_id))): r.share_of_smaller for r in found.itertuples()}
    assert pairs == {
        ("A", "A-unit2"): 1.0,
        ("A", "lot"): 1.0,
        ("A-unit2", "lot"): 1.0,
        ("A", "half"): 0.5,
        ("A-unit2", "half"): 0.5,
    }


@pytest.mark.parametrize("date", [None, "20240601"])
def test_a_county_no_sentinel2_tile_reaches_is_refused(tmp_path, date):
    """A tile skipped for a missing band, or every tile skipped for a date the catalog lacks: the county ran,
    its parcels had no index and a clear fraction of 0, and it was published."""
    rows = [f"16TCK,20240815,{b},{b}.tif,05.10," for b in _BANDS if b != "B08" or date]
    mclean, table, folder, _ = _mclean_catalog(tmp_path, rows)
    with pytest.raises(TilewiseError, match=r"no Sentinel-2 tile with every band.* reaches counties 17113 "):
        select_sentinel2(mclean, table, folder, date)
    assert select_sentinel2(mclean, table, folder, date, needed=set()).empty  # a county without parcels needs none


@pytest.mark.parametrize("crs", [4326, 32616])
@pytest.mark.parametrize("split", ["vertical", "horizontal"])
def test_a_parcel_split_down_its_middle_by_a_county_line_goes_to_one_county(crs, split):
    """Its point inside lay on the line, within neither county: it was dropped, and in a national run it was in
    no state's results. Moved a hair the same way in every run, it goes to exactly one county of one state."""
    from tilewise.biomass.tile_index import assign_parcels

    if split == "vertical":
        west, east = shapely.box(-88.45, 40.05, -88.25, 40.20), shapely.box(-88.25, 40.05, -88.05, 40.20)
        parcel = shapely.box(-88.254, 40.10, -88.246, 40.106)
    else:
        west, east = shapely.box(-88.45, 40.05, -88.05, 40.10), shapely.box(-88.45, 40.10, -88.05, 40.20)
        parcel = shapely.box(-88.30, 40.097, -88.29, 40.103)
    counties = gpd.GeoDataFrame({"county_fips": ["91001", "92003"]}, geometry=[west, east], crs=4326)
    own = [shapely.box(-88.40, 40.06, -88.39, 40.07), shapely.box(-88.10, 40.15, -88.09, 40.16)]  # one in each
    parcels = gpd.GeoDataFrame({"parcel_id": ["p", "w", "e"]}, geometry=[parcel, *own], crs=4326).to_crs(crs)
    if crs == 4326:
        assert shapely.intersects(parcels.geometry.representative_point().iloc[0], west.boundary)
    kept, dropped = assign_parcels(parcels, counties, "parcels.parquet")
    assert dropped.empty and len(kept) == 3
    # each state sees only its own county: exactly one of them takes the parcel
    taken = [set(assign_parcels(parcels, counties.iloc[[i]], "p")[0]["parcel_id"]) for i in (0, 1)]
    assert sorted("p" in t for t in taken) == [False, True]


def _three_parcels_in_kent():
    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "10")
    at = counties.geometry.iloc[0].representative_point()
    geoms = [shapely.box(at.x + i * 1e-3, at.y, at.x + i * 1e-3 + 5e-4, at.y + 5e-4) for i in range(3)]
    return counties, gpd.GeoSeries(geoms, crs=4326).to_crs(26918)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["A1", None, "A3"], r"1 parcel\(s\) without a parcel_id \(rows \[1\]\)"),
        (["A1", "  ", "A3"], r"1 parcel\(s\) without a parcel_id \(rows \[1\]\)"),
        (pd.array([1, None, 3], dtype="Int64"), r"1 parcel\(s\) without a parcel_id"),
        ([10001010010000001.0, 10001010010000003.0, 3.0], r"parcel_id values are floating-point numbers beyond"),
        # a spreadsheet's export of long ids as text: the digits were lost before tilewise read them
        (
            ["1.00010E+15", "1.00011E+15", "1.00012E+15"],
            r"3 parcel\(s\) with a parcel_id in scientific notation \(rows \[0, 1, 2\], e\.g\. '1\.00010E\+15'\)",
        ),
        (["A1", "10001010010000001", "1.0001e16"], r"1 parcel\(s\) with a parcel_id in scientific notation"),
        (["7.2E+13", " 7.3e13 ", "A3"], r"2 parcel\(s\) with a parcel_id in scientific notation"),
    ],
    ids=["null", "blank", "integer-null", "float-beyond-2-53", "text-e-notation", "one-e-notation", "lower-e"],
)
def test_parcel_ids_that_are_missing_or_lost_digits_are_refused(tmp_path, ids, message):
    """A parcel without an id is a result row no one can join back; ids read as floats (a GeoPackage integer
    column with a null, a shapefile number of 19+ digits) past 2**53 have lost their last digits: both
    passed, the second with ids that differ from the file's."""
    from tilewise.biomass.tile_index import assign_parcels

    counties, geoms = _three_parcels_in_kent()
    parcels = gpd.GeoDataFrame({"parcel_id": ids}, geometry=geoms)
    with pytest.raises(TilewiseError, match=rf"parcels\.parquet: {message}.*"):
        assign_parcels(parcels, counties, tmp_path / "parcels.parquet")


def test_a_geopackage_integer_id_column_with_a_null_is_refused_before_its_digits_are_lost(tmp_path):
    from tilewise.biomass.tile_index import assign_parcels
    from tilewise.biomass.vectors import read_vector

    counties, geoms = _three_parcels_in_kent()
    big = 10001010010000001
    ids = pd.array([big, big + 2, None], dtype="Int64")
    gpd.GeoDataFrame({"parcel_id": ids}, geometry=geoms).to_file(tmp_path / "p.gpkg")
    with pytest.raises(TilewiseError, match=r"p\.gpkg: 1 parcel\(s\) without a parcel_id .*a null in an integer"):
        assign_parcels(read_vector(str(tmp_path / "p.gpkg"), "parcels"), counties, tmp_path / "p.gpkg")
    # without the null the GeoPackage's integers come back exactly
    gpd.GeoDataFrame({"parcel_id": [big, big + 2, big + 4]}, geometry=geoms).to_file(tmp_path / "q.gpkg")
    kept, _ = assign_parcels(read_vector(str(tmp_path / "q.gpkg"), "parcels"), counties, "q.gpkg")
    assert kept["parcel_id"].tolist() == [big, big + 2, big + 4]


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f.assign(STATEFP=f.STATEFP.astype(int), COUNTYFP=f.COUNTYFP.astype(int)),
        lambda f: f.assign(STATEFP=f.STATEFP.astype(float), COUNTYFP=f.COUNTYFP.astype(float)),
        lambda f: f.drop(columns=["STATEFP", "COUNTYFP"]),  # GEOID only
        lambda f: f.drop(columns=["STATEFP", "COUNTYFP"]).assign(GEOID=f.GEOID.astype(int)),  # 10001 as a number
    ],
    ids=["integers", "floats", "geoid-only", "geoid-integer"],
)
def test_county_codes_as_numbers_or_as_geoid_give_five_digit_fips(tmp_path, edit):
    """COUNTYFP as a float (a layer written from a spreadsheet) made county_fips '101.0'; a GEOID-only layer
    was refused although it says the same."""
    layer = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    edit(layer).to_file(tmp_path / "c.gpkg")
    assert load_counties(str(tmp_path / "c.gpkg"), "10")["county_fips"].tolist() == ["10001", "10003", "10005"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(COUNTYFP=f.GEOID), r"COUNTYFP values are not 3-digit county codes, e.g. '10001'"),
        (lambda f: f.assign(STATEFP=f.STATEFP + "0"), r"STATEFP values are not 2-digit state codes, e.g. '100'"),
        (lambda f: f.assign(COUNTYFP="001"), r"GEOID and STATEFP \+ COUNTYFP differ, e.g. GEOID '10003' vs '10001'"),
    ],
    ids=["countyfp-holds-geoid", "statefp-3-digits", "geoid-disagrees"],
)
def test_county_codes_of_the_wrong_width_or_disagreeing_are_refused(tmp_path, edit, message):
    """COUNTYFP holding the 5-digit GEOID made county_fips '1010001': every county misnamed, no error."""
    layer = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    edit(layer).to_file(tmp_path / "c.gpkg")
    with pytest.raises(TilewiseError, match=rf"c\.gpkg: {message}"):
        load_counties(str(tmp_path / "c.gpkg"), "10")


def _kent_box(x, y, w, h):
    at = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "10").geometry.iloc[0].representative_point()
    u = 1e-3
    return shapely.box(at.x + x * u, at.y + y * u, at.x + (x + w) * u, at.y + (y + h) * u)


@pytest.mark.parametrize(
    ("drawn", "land"),
    [
        # two pieces of one parcel that overlap: GEOS's default repair made their overlap a hole
        (lambda: shapely.MultiPolygon([_kent_box(0, 0, 2, 2), _kent_box(1, 0, 2, 2)]), lambda: _kent_box(0, 0, 3, 2)),
        # a hole that pokes out of its shell: the default repair made the part outside land of the parcel
        (
            lambda: shapely.Polygon(_kent_box(0, 0, 2, 2).exterior, [_kent_box(1, 1, 2, 0.5).exterior]),
            lambda: _kent_box(0, 0, 2, 2).difference(_kent_box(1, 1, 2, 0.5)),
        ),
        (  # a bowtie is its two triangles, as before
            lambda: shapely.Polygon(shapely.get_coordinates(_kent_box(0, 0, 2, 2))[[0, 2, 1, 3]]),
            lambda: shapely.make_valid(shapely.Polygon(shapely.get_coordinates(_kent_box(0, 0, 2, 2))[[0, 2, 1, 3]])),
        ),
    ],
    ids=["overlapping-parts", "hole-across-shell", "bowtie"],
)
def test_an_invalid_parcel_keeps_the_land_it_was_drawn_with(drawn, land):
    from tilewise.biomass.tile_index import assign_parcels

    counties = load_counties(shared("boundaries/us_counties_IL_DE_RI.gpkg"), "10")
    parcels = gpd.GeoDataFrame({"parcel_id": ["p"]}, geometry=[drawn()], crs=4326).to_crs(26918)
    kept, dropped = assign_parcels(parcels, counties, "parcels.parquet")
    want = gpd.GeoSeries([land()], crs=4326).to_crs(26918).area.iloc[0]
    assert dropped.empty and kept.geometry.area.iloc[0] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    ("rename", "row", "what"),
    [
        ({"B03": "B04", "B04": "B03"}, 3, "band B04, not B03"),  # swapped: NDVI of green
        ({"SCL": "SCL@20240720"}, 6, "date 20240720, not 20240815"),  # another day's clouds masked
        ({"B04": "B04@@16TDK"}, 4, "tile 16TDK, not 16TCK"),
    ],
    ids=["bands-swapped", "scl-of-another-day", "band-of-another-tile"],
)
def test_a_catalog_row_whose_file_is_named_for_another_band_day_or_tile_is_refused(tmp_path, rename, row, what):
    def name(band):
        said, _, rest = rename.get(band, band).partition("@")
        date, _, tile = rest.partition("@")
        return f"T{tile or '16TCK'}_{date or '20240815'}T163901_{said}_{20 if said == 'SCL' else 10}m.jp2"

    rows = [f"16TCK,20240815,{b},{name(b)},05.10,-1000" for b in _BANDS]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(TilewiseError, match=rf"^{catalog}:{row} \(tile 16TCK 20240815 .*is named for {what}"):
        select_sentinel2(mclean, table, folder, None)


@pytest.mark.parametrize(
    "href",
    [
        "S2A_MSIL1C_20240815T163901_N0511_R126_T16TCK_20240815T201205.SAFE/GRANULE/"
        "L1C_T16TCK_A047693_20240815T164011/IMG_DATA/T16TCK_20240815T163901_{band}.jp2",  # ESA's L1C product
        "s3://sentinel-s2-l1c/tiles/16/T/CK/2024/8/15/0/{band}.jp2",  # AWS's L1C bucket
        "https://example.org/sentinel-2-l1c/S2B_16TCK_20240815_0_L1C/{band}.tif",  # Earth Search's L1C items
    ],
    ids=["esa-safe", "aws-l1c-bucket", "earth-search-l1c"],
)
def test_a_catalog_row_whose_file_is_of_the_l1c_product_is_refused(tmp_path, href):
    """Level-1C bands hold top-of-atmosphere reflectance: with an L2A SCL beside them (SCL is L2A's
    only) every index came out of TOA values, a little off everywhere, without an error."""
    rows = [
        f"16TCK,20240815,{b},{href.format(band=b) if b != 'SCL' else 'T16TCK_20240815T163901_SCL_20m.jp2'},05.11,"
        for b in _BANDS
    ]
    mclean, table, folder, catalog = _mclean_catalog(tmp_path, rows)
    with pytest.raises(
        TilewiseError,
        match=rf"^{catalog}:2 \(tile 16TCK 20240815 band B02\): its file .* is of "
        r"Sentinel-2's Level-1C product \(top of atmosphere\), not L2A",
    ):
        select_sentinel2(mclean, table, folder, None)


def test_catalog_files_named_as_esa_and_earth_search_name_them_are_taken(tmp_path):
    esa = [f"16TCK,20240815,{b},R10m/T16TCK_20240815T163901_{b}_10m.jp2,05.10,-1000" for b in _BANDS]
    earth_search = [f"16TCK,20240815,{b},S2B_16TCK_20240815_0_L2A/{b}.tif?st=2025-01-01,05.10,-1000" for b in _BANDS]
    for rows in (esa, earth_search):
        mclean, table, folder, _ = _mclean_catalog(tmp_path, rows)
        assert len(select_sentinel2(mclean, table, folder, None)) == 5


# Counties across the antimeridian as TIGER stores them (EPSG:4269, parts at +179° and −179°; Aleutians
# West, 02016): at several latitudes, two-part and one-part, touching ±180° from either side
_ACROSS_180 = {
    "aleutians 51.5N two parts": [shapely.box(178.9, 51.3, 180, 51.9), shapely.box(-180, 51.6, -179.2, 52.0)],
    "60N two parts": [shapely.box(179.6, 59.8, 180, 60.1), shapely.box(-180, 59.9, -179.7, 60.2)],
    "65N east side only": [shapely.box(179.5, 65.0, 180, 65.4)],
    "52.5N west side only": [shapely.box(-180, 52.3, -179.5, 52.6)],
}


def _county_across_180(parts) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"county_fips": ["02016"], "name": ["Aleutians West"]}, geometry=[shapely.MultiPolygon(parts)], crs=4269
    )


@pytest.mark.parametrize("case", _ACROSS_180)
def test_a_county_across_the_antimeridian_gets_the_tiles_of_its_own_longitudes(case):
    """s2_tiles_near crashed (mgrs: "Longitude Error" past −180°) and would have sampled every zone of the
    globe; WorldCover listed a tile E180, which does not exist (a local template: a missing file failed it)."""
    county = _county_across_180(_ACROSS_180[case])
    geom = county.to_crs(4326).union_all()
    tiles = s2_tiles_near(geom)
    assert tiles and {t[:2] for t in tiles} <= {"59", "60", "01", "02"}
    near = [t for t in tiles if s2_footprint_lonlat(t).intersects(geom)]
    assert shapely.union_all([s2_footprint_lonlat(t) for t in near]).contains(geom)
    keys = select_worldcover(county, "https://example.org/{tile}.tif")["key"].tolist()
    assert not any(k.endswith("E180") for k in keys) and len(keys) == len(set(keys))
    assert {k[3:] for k in keys} <= {"E177", "W180"} and all(worldcover_tile_box(k).intersects(geom) for k in keys)
    assert shapely.union_all([worldcover_tile_box(k) for k in keys]).contains(geom)


@pytest.mark.parametrize("lat", [51.5, 55.0, 60.5, 66.0, 70.5])
def test_a_sentinel2_footprint_across_the_antimeridian_is_cut_there(lat):
    """Zone 60's eastmost tiles (and zone 1's westmost) reach past 180°: reprojected vertex by vertex the
    footprint was a band around the globe, which every county of its latitudes intersected."""
    import mgrs

    for lon in (179.9, -179.9):
        tile = mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=0)
        footprint = s2_footprint_lonlat(tile)
        assert footprint.area < 5  # a 109.8 km square: at most ~1.6° × 3° up here, never ~360° wide
        assert footprint.contains(shapely.Point(lon, lat))
        assert not footprint.intersects(shapely.box(-170, lat - 0.3, 170, lat + 0.3))


@pytest.mark.parametrize("other_lon", [-160.0, 0.0, 150.0])
def test_a_county_beside_a_tile_across_the_antimeridian_is_not_reached_by_it(tmp_path, other_lon):
    """A county of the same latitudes 20° (or 180°) away counted as reached by 60UXB, so a catalog without
    its tiles passed the index and its parcels got no Sentinel-2 at all."""
    counties = pd.concat(
        [
            _county_across_180(_ACROSS_180["aleutians 51.5N two parts"]),
            gpd.GeoDataFrame(
                {"county_fips": ["02013"], "name": ["elsewhere"]},
                geometry=[shapely.box(other_lon, 50.8, other_lon + 0.5, 51.2)],
                crs=4269,
            ),
        ],
        ignore_index=True,
    )
    table = pd.DataFrame(
        [
            {"tile": "60UXB", "date": "20240801", "band": b, "href": f"60UXB_{b}.tif", "processing_baseline": "05.10"}
            for b in _BANDS
        ]
    )
    with pytest.raises(TilewiseError, match=r"reaches counties 02013 "):
        select_sentinel2(counties, table, tmp_path, "20240801")
    assert select_sentinel2(counties, table, tmp_path, "20240801", needed={"02016"})["counties"].eq("02016").all()


@pytest.mark.parametrize("lon", [180.3, 180.95, 179.995, 184.0])
def test_parcels_in_longitudes_written_0_to_360_are_placed_in_their_county(tmp_path, lon):
    """An Aleutian parcel layer in lon/lat written 0…360° (180.3° for −179.7°): without FIPS columns its
    parcels east of 180° (and one across it) were dropped as "outside the state's counties"."""
    from tilewise.biomass.tile_index import assign_parcels

    county = _county_across_180([shapely.box(178, 51, 180, 52), shapely.box(-180, 51, -175, 52)])
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["p", "control"]},
        geometry=[shapely.box(lon, 51.5, lon + 0.01, 51.51), shapely.box(179.5, 51.5, 179.51, 51.51)],
        crs=4326,
    )
    kept, dropped = assign_parcels(parcels, county, tmp_path / "p.parquet")
    assert kept["parcel_id"].tolist() == ["p", "control"] and kept["county_fips"].eq("02016").all() and dropped.empty


@pytest.mark.parametrize("crs", [4326, 3857, 5070, 32615, 2277])
def test_the_tiles_of_a_county_are_those_its_parcels_reaching_past_it_touch(crs):
    """A parcel of a county ending short of −90° that runs past −90°: the county's polygon touches neither
    WorldCover's N39W090 nor the UTM zone 16 tile 16TBK; the index chose tiles by the polygon alone."""
    from tilewise.biomass.tile_index import county_reach, select_worldcover

    county = shapely.box(-90.05, 40.00, -90.001, 40.02)
    counties = gpd.GeoDataFrame({"county_fips": ["99001"], "name": ["A"]}, geometry=[county], crs=4269)
    inside, past = shapely.box(-90.04, 40.005, -90.03, 40.015), shapely.box(-90.02, 40.005, -89.995, 40.015)
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["in", "past"], "county_fips": "99001"}, geometry=[inside, past], crs=4326
    ).to_crs(crs)
    assert select_worldcover(counties, "{tile}")["key"].tolist() == ["N39W093"]
    reach = county_reach(counties, parcels)
    assert select_worldcover(reach, "{tile}")["key"].tolist() == ["N39W093", "N39W090"]
    assert reach.geometry.iloc[0].covers(county.union(past).buffer(-1e-5))  # a hair in: reprojected vertices
    assert "16TBK" in {t for t in s2_tiles_near(past) if s2_footprint_lonlat(t).intersects(reach.geometry.iloc[0])}
    # a county whose parcels lie inside it keeps its own polygon
    assert county_reach(counties, parcels.iloc[:1]).geometry.iloc[0].equals(county)


def test_a_parcel_past_its_county_in_0_to_360_longitudes_joins_the_countys_parts_across_180():
    """Aleutians West as TIGER stores it (parts at +179.6…180° and −180…−179.6°), a parcel written at
    180.5…180.6° (−179.5…−179.4°), past the county's eastern part: it joins in −180…180, not as a band."""
    from tilewise.biomass.tile_index import county_reach, select_worldcover

    parts = shapely.MultiPolygon([shapely.box(179.6, 51.4, 180, 51.6), shapely.box(-180, 51.4, -179.6, 51.6)])
    counties = gpd.GeoDataFrame({"county_fips": ["02016"], "name": ["A"]}, geometry=[parts], crs=4269)
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["p"], "county_fips": "02016"}, geometry=[shapely.box(180.35, 51.5, 180.6, 51.51)], crs=4326
    )
    reach = county_reach(counties, parcels).geometry.iloc[0]
    west, _, east, _ = reach.bounds
    assert (west, east) == (-180, 180) and reach.area < parts.area + 0.3 * 0.01
    assert reach.covers(shapely.box(-179.599, 51.501, -179.401, 51.509))
    assert sorted(select_worldcover(county_reach(counties, parcels), "{tile}")["key"]) == ["N51E177", "N51W180"]
    # Hawaii written 0…360° (204.5° for −155.5°): its parcels inside the county add nothing, one past it is moved
    hawaii = gpd.GeoDataFrame({"county_fips": ["15001"]}, geometry=[shapely.box(-156, 19.4, -155.5, 20)], crs=4269)
    boxes = [shapely.box(204.1, 19.5, 204.2, 19.6), shapely.box(204.45, 19.5, 204.55, 19.6)]
    parcels = gpd.GeoDataFrame({"parcel_id": ["in", "past"], "county_fips": "15001"}, geometry=boxes, crs=4326)
    assert county_reach(hawaii, parcels.iloc[:1]).geometry.iloc[0].equals(hawaii.geometry.iloc[0])
    assert county_reach(hawaii, parcels).geometry.iloc[0].bounds == pytest.approx((-156, 19.4, -155.45, 20), abs=1e-4)


@pytest.mark.parametrize(
    "columns",
    [
        {"county_fips": ["48001", None, "48001", "48001"]},
        {"county_fips": ["48001", "", "  ", "48001"]},
        {"county_fips": [48001.0, np.nan, 48001.0, 48001.0]},
        {"fipsstate": ["48", "48", None, "48"], "fipscounty": ["001", None, "001", "001"]},
        {"fipsstate": [48, 48, 48, 48], "fipscounty": [1.0, np.nan, np.nan, 1.0]},
    ],
)
def test_a_parcel_whose_fips_columns_are_empty_is_placed_by_its_geometry(columns):
    """A county_fips (or fipsstate + fipscounty) left empty in some rows: those parcels were dropped as
    naming "no county of the state", their land lost from the county's totals. They name none: they are
    placed by a point inside them, as a file without the columns is; named rows keep the 100 m rule."""
    from tilewise.biomass.tile_index import assign_parcels

    counties = gpd.GeoDataFrame(
        {"county_fips": ["48001", "48003"]},
        geometry=[shapely.box(-97.6, 27.5, -97.4, 27.7), shapely.box(-97.4, 27.5, -97.2, 27.7)],
        crs=4269,
    )
    geoms = [
        shapely.box(-97.5, 27.6, -97.49, 27.61),  # in 48001, named so
        shapely.box(-97.3, 27.6, -97.29, 27.61),  # in 48003
        shapely.box(-97.45, 27.6, -97.44, 27.61),  # in 48001 (empty in some cases)
        shapely.box(-97.3, 27.65, -97.29, 27.66),  # in 48003, named 48001: 10 km away
    ]
    parcels = gpd.GeoDataFrame({"parcel_id": list("abcd"), **columns}, geometry=geoms, crs=4326)
    kept, dropped = assign_parcels(parcels, counties, "parcels.parquet")
    assert dict(zip(kept["parcel_id"], kept["county_fips"], strict=True)) == {"a": "48001", "b": "48003", "c": "48001"}
    assert dropped["parcel_id"].tolist() == ["d"] and "farther than 100 m" in dropped["reason"].iloc[0]
    # an empty one outside every county is outside the state's counties, not "named" anything
    away = parcels.assign(geometry=[geoms[0], shapely.box(-95.0, 27.6, -94.99, 27.61), *geoms[2:]])
    _, dropped = assign_parcels(away, counties, "parcels.parquet")
    assert dict(zip(dropped["parcel_id"], dropped["reason"], strict=True))["b"] == "outside the state's counties"


@pytest.mark.parametrize(
    ("geoms", "reason"),
    [
        ([shapely.Point(-97.5, 27.6), shapely.Point(-97.45, 27.65)], "no polygon with area"),  # address points
        ([shapely.LineString([(-97.5, 27.6), (-97.49, 27.61)])] * 2, "no polygon with area"),  # centre lines
        ([shapely.Polygon([(-97.5, 27.6), (-97.49, 27.6), (-97.48, 27.6)])] * 2, "no polygon with area"),
        ([shapely.Polygon(), None], "empty geometry"),
    ],
)
@pytest.mark.parametrize("fips", [False, True])
def test_a_parcel_file_without_one_usable_parcel_stops_the_index(geoms, reason, fips):
    """Every row dropped (points, lines, zero-area rings, empty geometries): the index wrote a state of no
    county, and the run ended in "ValueError: No objects to concatenate" from the state summary."""
    from tilewise.biomass.tile_index import assign_parcels

    counties = gpd.GeoDataFrame({"county_fips": ["48001"]}, geometry=[shapely.box(-97.6, 27.5, -97.4, 27.7)], crs=4269)
    parcels = gpd.GeoDataFrame({"parcel_id": ["a", "b"]}, geometry=geoms, crs=4326)
    if fips:
        parcels["county_fips"] = "48001"
    with pytest.raises(TilewiseError, match=rf"parcels\.gpkg: no parcel can be used \(2 row\(s\): .*{reason}"):
        assign_parcels(parcels, counties, "parcels.gpkg")
