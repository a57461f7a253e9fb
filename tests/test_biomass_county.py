"""A county on small synthetic rasters: WorldCover forest against CDL crop area, pixel by pixel
(the real samples do not overlap: São Tomé and Kansas), unknown classes, a tile without SCL; rasters
whose cells would be measured or combined wrong; the tile a parcel in the overlap of two uses; CDL
files and WorldCover tiles that overlap, each place counted once."""

import math
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Geod
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT

from tilewise.biomass import crop_tables, crops
from tilewise.biomass.county import CountyInputs, S2Tile, process_county
from tilewise.biomass.forest import state_plot_densities
from tilewise.biomass.grids import s2_footprint
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


def rasters(tmp_path, cdl_code_west=1, cdl_crs="EPSG:5070", cdl_pixel=30, wc_crs="EPSG:4326", wc_pixel=WC_DEG):
    """WorldCover (forest west of FOREST_EDGE) and CDL (`cdl_code_west` west of CROP_EDGE) around PARCEL,
    in the CRSs and pixel sizes given."""
    wc = grid_raster(tmp_path / "wc.tif", wc_crs, wc_pixel, FOREST_EDGE, 10, 40)
    cdl = grid_raster(tmp_path / "cdl.tif", cdl_crs, cdl_pixel, CROP_EDGE, cdl_code_west, 176)
    return wc, cdl


def grid_raster(path, crs, pixel, edge, west, east):
    """A class raster in `crs` covering −97.11…−97.08 × 39.29…39.31: `west` west of longitude `edge`."""
    box = to_crs(shapely.box(-97.11, 39.29, -97.08, 39.31), 4326, crs, densify=0.001).bounds
    transform = from_origin(np.floor(box[0] / pixel) * pixel, np.ceil(box[3] / pixel) * pixel, pixel, pixel)
    shape = (int((box[3] - box[1]) / pixel) + 2, int((box[2] - box[0]) / pixel) + 2)
    lon, _ = centres(transform, shape, crs)
    return write_band(path, np.where(lon < edge, west, east).astype(np.uint8), crs, transform, 0)


def inputs(wc, cdl, s2=(), parcels=None):
    plots, _, _ = state_plot_densities(*(EXAMPLE / f"{t}.csv" for t in ("PLOT", "COND", "TREE")), "exclude_plot", "20")
    files = [str(crop_tables.NATIONAL_YIELDS)]
    yields = crops.Yields(2023, crops.yields_table(None, crop_tables.NATIONAL_YIELDS, "20", 2023), files)
    if parcels is None:
        parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[PARCEL], crs=4326)
    return CountyInputs(parcels, [wc], [cdl], list(s2), plots, yields, 15, 2)


REFLECTANCE = {"B02": 0.03, "B03": 0.06, "B04": 0.05, "B08": 0.40}
NDVI = (0.40 - 0.05) / (0.40 + 0.05)


def s2_tile(folder, tile="14SPJ", around=PARCEL, reflectance=REFLECTANCE, scl=4, pixel=None, shift=None, **creation):
    """A baseline ≥ 04.00 tile's B02, B03, B04, B08 (10 m) and SCL (20 m) on its MGRS grid around `around`
    (lon/lat), uniform: `reflectance` and scene class `scl` (reflectance None: no data, DN 0 and SCL 0).
    `pixel` and `shift` (band → m, band → (dx, dy) m) put a band on another grid."""
    epsg, (xmin, ymin, xmax, ymax) = s2_footprint(tile)
    west, south, east, north = to_crs(shapely.buffer(around, 0.01), 4326, epsg).bounds
    # inside the tile's footprint, as every file of the tile is
    x0, y1 = xmin + max(0, math.floor((west - xmin) / 60)) * 60, ymax - max(0, math.floor((ymax - north) / 60)) * 60
    width = min(math.ceil((east - x0) / 60) * 60, xmax - x0)
    height = min(math.ceil((y1 - south) / 60) * 60, y1 - ymin)
    bands = {}
    for band in (*REFLECTANCE, "SCL"):
        size = (pixel or {}).get(band, 20 if band == "SCL" else 10)
        dx, dy = (shift or {}).get(band, (0, 0))
        if band == "SCL":
            data = np.full((height // size, width // size), scl if reflectance else 0, np.uint8)
        else:
            dn = round(reflectance[band] * 10000 + 1000) if reflectance else 0
            data = np.full((height // size, width // size), dn, np.uint16)
        path = folder / tile / f"{band}.tif"
        bands[band] = write_band(path, data, f"EPSG:{epsg}", from_origin(x0 + dx, y1 + dy, size, size), **creation)
    return S2Tile(tile, "20230801", dict.fromkeys(REFLECTANCE, -1000.0) | {"SCL": 0.0}, bands)


def warped(tile: S2Tile, crs: str) -> S2Tile:
    """The tile's bands reprojected to `crs` (nearest), as a user's or an export's reprojection makes them."""
    bands = {}
    for band, path in tile.bands.items():
        with rasterio.open(path) as src, WarpedVRT(src, crs=crs, resampling=Resampling.nearest) as vrt:
            bands[band] = write_band(
                path.with_name(f"{band}_{crs.replace(':', '')}.tif"), vrt.read(1), crs, vrt.transform
            )
    return S2Tile(tile.tile, tile.date, tile.boa_add_offset_dn, bands)


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
    tile = s2_tile(tmp_path)
    del tile.bands["SCL"]
    with pytest.raises(TilewiseError, match="14SPJ 20230801: no SCL band"):
        process_county(inputs(wc, cdl, [tile]))


@pytest.mark.parametrize(
    ("crs", "pixel"),
    [("EPSG:5070", 30), ("EPSG:4326", 1 / 3600), ("EPSG:32614", 30), ("EPSG:3419", 100)],
    ids=["conus-albers", "lon-lat", "utm-in-its-zone", "state-plane-in-us-feet"],
)
def test_cdl_in_a_crs_that_keeps_areas_gives_ground_acres(tmp_path, crs, pixel):
    result, detail, _ = process_county(inputs(*rasters(tmp_path, cdl_crs=crs, cdl_pixel=pixel)))
    [p] = result.to_dict("records")
    # the CDL covers the parcel: its valid area is the parcel's, whatever the CRS's units
    assert p["cdl_valid_area_acres"] == pytest.approx(p["parcel_area_acres"], rel=0.005)
    corn = geodesic_acres(shapely.box(-97.101, 39.300, CROP_EDGE, 39.305))
    column = 30 * 556 / crops.M2_PER_ACRE  # one 30 m pixel column along the 556 m edge
    assert detail["area_acres"].sum() == pytest.approx(corn, abs=column)


@pytest.mark.parametrize(
    ("product", "crs", "pixel"),
    [("cdl", "EPSG:3857", 30), ("cdl", "EPSG:32610", 30), ("wc", "EPSG:3857", 10), ("wc", "EPSG:3395", 10)],
    ids=["cdl-web-mercator", "cdl-utm-four-zones-away", "worldcover-web-mercator", "worldcover-world-mercator"],
)
def test_a_class_raster_in_a_crs_that_does_not_keep_areas_is_refused(tmp_path, product, crs, pixel):
    wc, cdl = rasters(tmp_path, **{f"{product}_crs": crs, f"{product}_pixel": pixel})
    bad = {"cdl": cdl, "wc": wc}[product]
    message = rf"{bad}: its CRS \({crs}\) does not keep areas over the raster: .* gdalwarp -t_srs EPSG:5070 -r near"
    with pytest.raises(TilewiseError, match=message):
        process_county(inputs(wc, cdl))


def test_sentinel2_bands_in_their_tiles_utm_crs_give_indices_and_metric_pixel_areas(tmp_path):
    result, _, _ = process_county(inputs(*rasters(tmp_path), [s2_tile(tmp_path)]))
    [p] = result.to_dict("records")
    assert p["s2_tile"] == "14SPJ" and p["ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6)
    assert p["s2_pixel_area_m2"] == 100.0
    assert p["s2_clear_fraction"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32615", "EPSG:3857"])
def test_sentinel2_bands_outside_their_tiles_utm_crs_are_refused(tmp_path, crs):
    tile = warped(s2_tile(tmp_path), crs)
    message = rf"{tile.bands['B02']}: Sentinel-2 tile 14SPJ band B02 is in {crs}, not the tile's UTM CRS EPSG:32614"
    with pytest.raises(TilewiseError, match=message + r".*gdalwarp -t_srs EPSG:32614 -te 600000 4290240 709800"):
        process_county(inputs(*rasters(tmp_path), [tile]))


@pytest.mark.parametrize(
    ("grid", "band", "what"),
    [
        ({"shift": {"B04": (200, 0)}}, "B02", "origin"),  # B04 cut at another origin: B02 is off its grid
        ({"pixel": {"B08": 20}}, "B08", "pixel size"),  # a 20 m band (B8A) given as NIR
        ({"pixel": {"SCL": 25}}, "SCL", "not one whole multiple"),
        ({"shift": {"SCL": (5, 0)}}, "SCL", "not on the band grid"),
    ],
    ids=["band-origin", "band-pixel-size", "scl-pixel-size", "scl-origin"],
)
def test_sentinel2_bands_off_one_grid_are_refused(tmp_path, grid, band, what):
    tile = s2_tile(tmp_path, **grid)
    message = rf"tile 14SPJ 20230801: band {band} \({tile.bands[band]}\) is not on the grid of B04 .*{what}"
    with pytest.raises(TilewiseError, match=message):
        process_county(inputs(*rasters(tmp_path), [tile]))


@pytest.mark.parametrize("grid", [{"pixel": {"SCL": 60}}, {"shift": {"SCL": (-20, 40)}}], ids=["scl-60m", "scl-origin"])
def test_an_scl_on_a_coarser_grid_aligned_with_the_bands_is_accepted(tmp_path, grid):
    result, _, _ = process_county(inputs(*rasters(tmp_path), [s2_tile(tmp_path, **grid)]))
    assert result["ndvi_mean_unitless"].iloc[0] == pytest.approx(NDVI, abs=1e-6)


@pytest.mark.parametrize(
    ("scl_pixel", "shift"),
    [(20, (20, 0)), (20, (0, -20)), (20, (40, -60)), (20, (1020, -1020)), (60, (60, -120)), (20, (-20, 40))],
)
def test_an_scl_of_another_extent_than_the_bands_is_looked_up_under_each_band_cell(tmp_path, scl_pixel, shift):
    """An SCL on the bands' grid whose origin lies east or south of theirs (a clip of its own, cut on its
    own 20 m grid) crashed the county ("could not broadcast"); each band cell takes the scene class under
    its centre, and no data where the SCL does not reach."""
    tile = s2_tile(tmp_path, pixel={"SCL": scl_pixel}, shift={"SCL": shift})
    with rasterio.open(tile.bands["SCL"]) as ds:
        st, sshape = ds.transform, ds.shape
    rng = np.random.default_rng(sum(shift) + scl_pixel)
    scl = rng.choice(np.array([4, 9], np.uint8), sshape)  # clear or cloud, cell by cell
    write_band(tile.bands["SCL"], scl, ds.crs, st)
    with rasterio.open(tile.bands["B04"]) as ds:
        bt = ds.transform
    # a parcel on whole band cells inside the bands, over the SCL's west and north edges where they lie there
    x0 = max(bt.c + 500, st.c + 250)
    y1 = min(bt.f - 400, st.f - 200)
    local = shapely.box(x0 - 500, y1 - 400, x0, y1)
    parcel = to_crs(shapely.segmentize(local, 10), 32614, 4326)
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[parcel], crs=4326)
    [p] = process_county(inputs(*rasters(tmp_path), [tile], parcels))[0].to_dict("records")
    x = np.arange(x0 - 500 + 5, x0, 10)
    y = np.arange(y1 - 5, y1 - 400, -10)
    cols, rows = np.floor((x - st.c) / st.a).astype(int), np.floor((y - st.f) / st.e).astype(int)
    cols, rows = np.meshgrid(cols, rows)
    reached = (rows >= 0) & (rows < sshape[0]) & (cols >= 0) & (cols < sshape[1])
    clear = np.zeros(rows.shape, bool)
    clear[reached] = scl[rows[reached], cols[reached]] == 4
    assert p["s2_data_pixels_count"] == pytest.approx(reached.sum(), abs=0.5)
    assert p["s2_clear_pixels_count"] == pytest.approx(clear.sum(), abs=0.5)


@pytest.mark.parametrize(
    ("shift", "where"),
    [((1500, -1500), "bands"), ((1200, 0), "bands"), ((-1500, 1500), "scl"), ((0, 1200), "scl")],
    ids=["scl-south-east", "scl-east", "scl-north-west", "scl-north"],
)
def test_parcels_one_of_a_tiles_files_does_not_reach_have_no_data_from_it(tmp_path, shift, where):
    """Parcels inside a tile's footprint that its SCL file (or its bands) does not reach, the other files
    reaching them: a group of parcels without a mosaic of one file crashed the county ("'NoneType' object
    has no attribute 'bytes_read'"). They have no data from the tile, and the parcels it reaches theirs."""
    tile = s2_tile(tmp_path, shift={"SCL": shift})
    with rasterio.open(tile.bands["B04"]) as b, rasterio.open(tile.bands["SCL"]) as s:
        one = b.transform if where == "bands" else s.transform  # the file that reaches the first parcel only
        other = s.bounds if where == "bands" else b.bounds
    outside = shapely.box(one.c + 200, one.f - 700, one.c + 700, one.f - 300)
    assert not outside.intersects(shapely.box(*other))
    both = shapely.box(other.left + 200, other.top - 700, other.left + 700, other.top - 300)
    geoms = [to_crs(shapely.segmentize(g, 10), 32614, 4326) for g in (outside, both)]
    for ids in (["out"], ["out", "in"]):  # alone, and in one group of parcels with one the files reach
        parcels = gpd.GeoDataFrame({"parcel_id": ids}, geometry=geoms[: len(ids)], crs=4326)
        result = process_county(inputs(*rasters(tmp_path), [tile], parcels))[0].set_index("parcel_id")
        assert result.loc["out", "s2_data_pixels_count"] == result.loc["out", "s2_clear_pixels_count"] == 0
        assert result.loc["out", "s2_coverage_fraction"] == 0 and math.isnan(result.loc["out", "ndvi_mean_unitless"])
        assert (result["s2_pixel_area_m2"] == 100.0).all()
    assert result.loc["in", "ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6)
    assert result.loc["in", "s2_clear_fraction"] == pytest.approx(1.0, abs=0.01)


# in the overlap of 14SNJ (x 499,980–609,780) and 14SPJ (600,000–709,800), nearer 14SNJ's centre
OVERLAP_PARCEL = to_crs(shapely.box(603_000, 4_350_000, 604_000, 4_350_500), 32614, 4326)


@pytest.mark.parametrize(
    ("west", "east", "uses"),
    [
        ({"reflectance": None}, {}, "14SPJ"),  # the nearer tile is outside the swath there
        ({}, {"reflectance": None}, "14SNJ"),
        ({"reflectance": None}, {"scl": 9}, "14SPJ"),  # cloud over the parcel is data; no data is not
        ({"scl": 9}, {}, "14SPJ"),  # clear pixels first
        ({}, {"reflectance": {**REFLECTANCE, "B08": 0.30}}, "14SNJ"),  # both clear: the nearer centre
    ],
    ids=["west-empty", "east-empty", "west-empty-east-cloudy", "west-cloudy", "both-clear"],
)
def test_a_parcel_in_two_tiles_uses_the_one_with_most_clear_pixels(tmp_path, west, east, uses):
    tiles = [
        s2_tile(tmp_path / "w", "14SNJ", OVERLAP_PARCEL, **west),
        s2_tile(tmp_path / "e", "14SPJ", OVERLAP_PARCEL, **east),
    ]
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[OVERLAP_PARCEL], crs=4326)
    result, _, stats = process_county(inputs(*rasters(tmp_path), tiles, parcels))
    [p] = result.to_dict("records")
    assert p["s2_tile"] == uses and p["s2_tile_contains_parcel"]
    chosen = {"14SNJ": west, "14SPJ": east}[uses]
    if chosen.get("scl", 4) == 4 and chosen.get("reflectance", REFLECTANCE):
        nir = chosen.get("reflectance", REFLECTANCE)["B08"]
        assert p["ndvi_mean_unitless"] == pytest.approx((nir - 0.05) / (nir + 0.05), abs=1e-6)
        assert p["s2_clear_fraction"] == pytest.approx(1.0, abs=0.01)
    else:
        assert p["s2_coverage_fraction"] == pytest.approx(1.0, abs=0.01) and p["s2_clear_pixels_count"] == 0


def test_a_tile_that_contains_the_parcel_but_has_no_data_there_loses_to_one_that_only_touches_it(tmp_path):
    """Across 14SPJ's west edge (x 600,000): wholly in 14SNJ, which is outside the swath there; 14SPJ
    covers part of it with data. The indices come from 14SPJ, and say it does not contain the parcel."""
    edge = to_crs(shapely.box(599_500, 4_350_000, 600_500, 4_350_500), 32614, 4326)
    tiles = [s2_tile(tmp_path / "w", "14SNJ", edge, reflectance=None), s2_tile(tmp_path / "e", "14SPJ", edge)]
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[edge], crs=4326)
    [p] = process_county(inputs(*rasters(tmp_path), tiles, parcels))[0].to_dict("records")
    assert p["s2_tile"] == "14SPJ" and not p["s2_tile_contains_parcel"]
    assert p["ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6) and p["s2_clear_pixels_count"] > 0


# Files of one product that overlap (a national CDL and a state clip of it, neighbouring clips with a
# shared margin, WorldCover tiles) are mosaicked: each place is counted once, from the first listed
# file with data there (docs/biomass-model.md §1).
CDL_COLUMNS = ["cdl_valid_area_acres", "cdl_coverage_fraction", "crop_area_acres", "forest_area_acres"]
CDL_COLUMNS += ["forest_crop_conflict_acres", "crop_production_dry_short_tons_per_year"]
WC_COLUMNS = ["worldcover_valid_area_acres", "worldcover_coverage_fraction", "tree_cover_acres", "grassland_acres"]
WC_COLUMNS += ["worldcover_forest_acres", "forest_crop_conflict_acres", "forest_area_acres", "crop_area_acres"]


def cut(path, out, west=None, east=None, data_west=None, data_east=None, code=None):
    """A clip of the class raster `path` on its grid: the columns between longitudes `west` and `east` (at
    the parcel's latitude; None: the raster's edge), nodata outside `data_west`…`data_east` (a state clip's
    margin), and every valid cell set to `code` if given (a file that disagrees)."""
    with rasterio.open(path) as ds:

        def column(lon, edge):
            if lon is None:
                return edge
            x = shapely.get_x(to_crs(shapely.Point(lon, 39.3025), 4326, ds.crs))
            return int(np.clip(round((x - ds.transform.c) / ds.transform.a), 0, ds.width))

        c0, c1 = column(west, 0), column(east, ds.width)
        window = rasterio.windows.Window(c0, 0, c1 - c0, ds.height)
        data, transform, crs, nodata = ds.read(1, window=window), ds.window_transform(window), ds.crs, ds.nodata
        data[:, : max(column(data_west, 0) - c0, 0)] = nodata
        data[:, max(column(data_east, ds.width) - c0, 0) :] = nodata
    if code is not None:
        data[data != nodata] = code
    return write_band(out, data, crs, transform, nodata)


def same_results(single, columns, **files):
    """Results with the files given (`worldcover` or `cdl` lists) equal those of the `single` files
    (WorldCover, CDL), over a parcel and a copy of its box."""
    wc, cdl = single
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"]}, geometry=[PARCEL, shapely.box(*PARCEL.bounds)], crs=4326)
    one, one_detail, _ = process_county(inputs(wc, cdl, parcels=parcels))
    several, detail, _ = process_county(replace(inputs(wc, cdl, parcels=parcels), **files))
    for column in columns:
        assert several[column].to_numpy() == pytest.approx(one[column].to_numpy(), rel=1e-7), column
    assert detail["area_acres"].to_numpy() == pytest.approx(one_detail["area_acres"].to_numpy(), rel=1e-7)
    assert (several["cdl_valid_area_acres"] <= several["parcel_area_acres"] * (1 + 1e-9)).all()
    return several


@pytest.mark.parametrize("order", ["national-first", "clip-first", "three-files"])
def test_a_national_cdl_and_a_state_clip_of_it_count_each_place_once(tmp_path, order):
    wc, cdl = rasters(tmp_path)
    clip = cut(cdl, tmp_path / "2023_30m_cdls_KS.tif", west=-97.105, east=-97.085)
    files = {"national-first": [cdl, clip], "clip-first": [clip, cdl]}.get(order)
    if files is None:
        files = [clip, cdl, cut(cdl, tmp_path / "2023_30m_cdls_NE.tif", west=-97.103, data_east=-97.096)]
    p = same_results((wc, cdl), CDL_COLUMNS, cdl=files).iloc[0]
    # corn 2023 on the parcel's corn once: 177.3 bu × 56 lb × 0.845 / 2000 per acre, not twice
    corn = geodesic_acres(shapely.box(-97.101, 39.300, CROP_EDGE, 39.305))
    column = 30 * 556 / crops.M2_PER_ACRE  # one 30 m pixel column along the 556 m edge
    per_acre = 177.3 * 56 * 0.845 / 2000
    assert p["crop_production_dry_short_tons_per_year"] == pytest.approx(corn * per_acre, abs=column * per_acre)


def test_partly_overlapping_clips_count_their_overlap_once(tmp_path):
    wc, cdl = rasters(tmp_path)
    west = cut(cdl, tmp_path / "west.tif", east=-97.094)  # the overlap −97.099…−97.094 crosses the parcel
    east = cut(cdl, tmp_path / "east.tif", west=-97.099)
    p = same_results((wc, cdl), CDL_COLUMNS, cdl=[west, east]).iloc[0]
    assert p["cdl_valid_area_acres"] == pytest.approx(p["parcel_area_acres"], rel=0.005)


def test_neighbouring_clips_whose_boxes_overlap_but_not_their_data_add_up(tmp_path):
    wc, cdl = rasters(tmp_path)
    # two states' clips, each with a nodata margin over the other's side of the line at −97.096
    west = cut(cdl, tmp_path / "west.tif", east=-97.090, data_east=-97.096)
    east = cut(cdl, tmp_path / "east.tif", west=-97.102, data_west=-97.096)
    same_results((wc, cdl), CDL_COLUMNS, cdl=[west, east])


def test_overlapping_worldcover_tiles_count_each_place_once(tmp_path):
    wc, cdl = rasters(tmp_path)
    west = cut(wc, tmp_path / "wc_west.tif", east=-97.094)  # the overlap has the forest edge −97.095
    east = cut(wc, tmp_path / "wc_east.tif", west=-97.099)
    p = same_results((wc, cdl), WC_COLUMNS, worldcover=[west, east]).iloc[0]
    forest = geodesic_acres(shapely.box(-97.101, 39.300, FOREST_EDGE, 39.305))
    assert p["worldcover_forest_acres"] == pytest.approx(forest, abs=0.2)
    assert p["worldcover_valid_area_acres"] <= p["parcel_area_acres"] * (1 + 1e-9)


def test_where_overlapping_files_disagree_the_first_listed_counts_and_it_is_logged(tmp_path, caplog):
    wc, cdl = rasters(tmp_path)
    soy = cut(cdl, tmp_path / "soy.tif", code=5)  # another product: soybeans everywhere
    result, detail, _ = process_county(replace(inputs(wc, cdl), cdl=[soy, cdl]))
    assert detail["crop_name"].tolist() == ["Soybeans"]
    assert detail["area_acres"].sum() == pytest.approx(result["parcel_area_acres"].iloc[0], rel=0.005)
    assert f"{cdl} overlaps {soy}" in caplog.text and "have another class than the earlier file's" in caplog.text


@pytest.mark.parametrize(("crs", "pixel", "shift"), [("EPSG:5070", 30, 15), ("EPSG:4326", 1 / 3600, 0)])
def test_a_clip_on_another_grid_overlaps_without_counting_more_than_the_parcel(tmp_path, crs, pixel, shift):
    wc, cdl = rasters(tmp_path)
    other = grid_raster(tmp_path / "other.tif", crs, pixel, CROP_EDGE, 1, 176)
    with rasterio.open(other, "r+") as ds:  # a grid half a cell off the national one
        ds.transform = ds.transform * rasterio.Affine.translation(shift / pixel, 0)
    east = cut(cdl, tmp_path / "east.tif", west=-97.099)
    west = cut(other, tmp_path / "west.tif", east=-97.094)
    result, detail, _ = process_county(replace(inputs(wc, cdl), cdl=[east, west]))
    p = result.iloc[0]
    column = 30 * 556 / crops.M2_PER_ACRE  # one 30 m pixel column along the 556 m edge
    assert p["parcel_area_acres"] - column <= p["cdl_valid_area_acres"] <= p["parcel_area_acres"] * (1 + 1e-9)
    corn = geodesic_acres(shapely.box(-97.101, 39.300, CROP_EDGE, 39.305))
    assert detail["area_acres"].sum() == pytest.approx(corn, abs=column)


@pytest.mark.parametrize("crs", [4326, 3338])  # lon/lat, and Alaska Albers
def test_the_county_projection_keeps_distances_across_the_antimeridian(crs):
    """Aleutians West: parcels at 179.9° E and 179.9° W put a lon/lat box's centre at 0°, on the far side
    of the Earth, where the projection stretched the FIA distances by up to 27 %."""
    from pyproj import Transformer

    from tilewise.biomass.county import _laea

    lonlat = [shapely.box(179.85, 51.75, 179.95, 51.80), shapely.box(-179.95, 51.80, -179.85, 51.85)]
    geoms = gpd.GeoSeries(lonlat, crs=4326).to_crs(crs)
    laea = _laea(geoms)
    assert abs(abs(laea.to_dict()["lon_0"]) - 180) < 0.2
    to_laea = Transformer.from_crs(4326, laea, always_xy=True)
    (x1, x2), (y1, y2) = to_laea.transform([179.90, -179.90], [51.77, 51.83])
    geodesic = Geod(ellps="WGS84").inv(179.90, 51.77, -179.90, 51.83)[2]
    assert np.hypot(x2 - x1, y2 - y1) == pytest.approx(geodesic, rel=1e-3)


def test_a_countys_index_columns_do_not_depend_on_its_data():
    """Parcels no Sentinel-2 tile reached had no ndvi/evi/savi/ndwi columns at all: a county file's columns
    depended on its data, and a reader of several counties met a column missing."""
    from tilewise.biomass import county as county_module

    parcels = gpd.GeoSeries([shapely.box(-88.30, 40.00, -88.29, 40.01)], crs=4326)
    out = county_module._s2_stats(parcels, [], county_module.ReadStats(), np.zeros(1), None)
    for name in ("ndvi", "evi", "savi", "ndwi"):
        assert out[f"{name}_mean_unitless"].isna().all() and out[f"{name}_std_unitless"].isna().all()


def _paint_scl(tile: S2Tile, paint) -> S2Tile:
    with rasterio.open(tile.bands["SCL"], "r+") as ds:
        ds.write(paint(ds.read(1)).astype(np.uint8), 1)
    return tile


def _west_half(a, west, east):
    return np.where(np.arange(a.shape[1]) < a.shape[1] // 2, west, np.broadcast_to(east, a.shape))


@pytest.mark.parametrize(
    ("paint", "values"),
    [
        # a cloud-probability mask (MSK_CLDPRB, 0–100 %) given as the SCL: 4–6 % read as vegetation
        (lambda a: _west_half(a, 5, np.full_like(a, 80)), r"\[80\]"),
        (lambda a: _west_half(a, 255, a), r"\[255\]"),  # a warp's fill, not declared as the file's nodata
        (lambda a: np.full_like(a, 12), r"\[12\]"),
    ],
    ids=["cloud-probability", "undeclared-255-fill", "class-12"],
)
def test_scl_values_outside_the_l2a_legend_fail_naming_the_file(tmp_path, paint, values):
    """SCL 80 or 255 was data that is not clear, and a cloud-probability mask's 4–6 % clear: the county ran
    with a clear fraction and a coverage no scene classification gave."""
    tile = _paint_scl(s2_tile(tmp_path), paint)
    message = rf"{tile.bands['SCL']}: SCL values {values} inside parcels are not Sentinel-2 L2A scene classes \(0–11\)"
    with pytest.raises(TilewiseError, match=message):
        process_county(inputs(*rasters(tmp_path), [tile]))


def test_an_scl_fill_declared_as_its_nodata_is_no_data(tmp_path):
    tile = _paint_scl(s2_tile(tmp_path), lambda a: _west_half(a, 255, a))
    with rasterio.open(tile.bands["SCL"], "r+") as ds:
        ds.nodata = 255
    [p] = process_county(inputs(*rasters(tmp_path), [tile]))[0].to_dict("records")
    assert p["ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6)
    assert p["s2_coverage_fraction"] == pytest.approx(p["s2_clear_fraction"], abs=1e-9)
    assert 0.2 < p["s2_coverage_fraction"] < 0.8  # the filled half is no data, not data that is not clear


@pytest.mark.parametrize("bands", [("B02", "B03", "B04", "B08"), ("B08",)], ids=["all-bands", "nir-only"])
def test_a_band_fill_declared_as_its_nodata_is_no_data(tmp_path, bands):
    """A fill of 65535 declared as the band's nodata over half the parcel counted as data that is not
    physical: coverage 1.0 and 2,380 "nonphysical" pixels over a half-empty parcel."""
    tile = s2_tile(tmp_path)
    for band in bands:
        with rasterio.open(tile.bands[band], "r+") as ds:
            ds.write(_west_half(ds.read(1), 65535, ds.read(1)).astype(np.uint16), 1)
            ds.nodata = 65535
    [p] = process_county(inputs(*rasters(tmp_path), [tile]))[0].to_dict("records")
    assert p["ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6) and p["s2_nonphysical_pixels_count"] == 0
    assert p["s2_coverage_fraction"] == pytest.approx(p["s2_clear_fraction"], abs=1e-9)
    assert 0.2 < p["s2_coverage_fraction"] < 0.8


@pytest.mark.parametrize("product", ["wc", "cdl"])
@pytest.mark.parametrize("kind", ["rgb", "float"])
def test_a_class_raster_that_is_not_one_band_of_integer_codes_is_refused(tmp_path, product, kind):
    """WorldCover as a 3-band RGB rendering over a forest parcel: band 1 is red, tree cover's red 0 is
    nodata, and the parcel got 0 forest acres without an error."""
    wc, cdl = rasters(tmp_path)
    bad = {"wc": wc, "cdl": cdl}[product]
    with rasterio.open(bad) as ds:
        classes, profile = ds.read(1), ds.profile
    if kind == "rgb":
        profile.update(count=3)
        data = np.stack([np.where(classes == 10, 0, classes)] * 3)
    else:
        profile.update(dtype="float32")
        data = classes[None].astype(np.float32)
    out = tmp_path / f"{product}_{kind}.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    files = {"wc": (out, cdl), "cdl": (wc, out)}[product]
    with pytest.raises(TilewiseError, match=rf"{out}: \d band\(s\) of \w+, not one band of integer class codes"):
        process_county(inputs(*files))


@pytest.mark.parametrize(("west", "east"), [(1, 2), (2, 1)], ids=["non-cultivated-west", "cultivated-west"])
@pytest.mark.parametrize(("crs", "pixel"), [("EPSG:5070", 30), ("EPSG:4326", 1 / 3600)], ids=["albers", "lon-lat"])
def test_a_cultivated_layer_given_as_the_cdl_is_refused(tmp_path, west, east, crs, pixel):
    """NASS's Cultivated Layer (1 non-cultivated, 2 cultivated) as the CDL: the county gave ~49 acres
    of corn and ~69 of cotton on a Kansas parcel, without an error."""
    wc = grid_raster(tmp_path / "wc.tif", "EPSG:4326", WC_DEG, FOREST_EDGE, 10, 40)
    layer = grid_raster(tmp_path / "2023_Cultivated_Layer.tif", crs, pixel, CROP_EDGE, west, east)
    parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[PARCEL.buffer(0.004, join_style="mitre")], crs=4326)
    with pytest.raises(TilewiseError, match=rf"{layer}: over the parcels the CDL holds only corn \(1\) and cotton"):
        process_county(inputs(wc, layer, parcels=parcels))


def _without_offset(tile: S2Tile, dark: dict | None = None) -> S2Tile:
    """The tile's bands as a harmonized collection holds them (DN = reflectance × 10,000: the offset already
    removed); `dark`, band → share of columns from the west: only those columns so (the rest keep it)."""
    for band in REFLECTANCE:
        with rasterio.open(tile.bands[band], "r+") as ds:
            data = ds.read(1)
            cols = data.shape[1] if dark is None else int(data.shape[1] * dark.get(band, 0))
            data[:, :cols] -= 1000
            ds.write(data, 1)
    return tile


@pytest.mark.parametrize(
    "reflectance",
    [
        REFLECTANCE,  # vegetation: red 0.05 read as −0.05
        {"B02": 0.08, "B03": 0.11, "B04": 0.15, "B08": 0.30},  # bare soil: blue 0.08 read as −0.02
        {"B02": 0.04, "B03": 0.05, "B04": 0.03, "B08": 0.02},  # water
    ],
    ids=["vegetation", "soil", "water"],
)
def test_sentinel2_dn_whose_offset_was_already_removed_are_refused(tmp_path, reflectance):
    """DN of a harmonized collection (Earth Engine's S2_SR_HARMONIZED export) catalogued with baseline 05.10:
    1000 DN were subtracted again, every clear pixel fell to reflectance ≤ 0, and the parcel read as
    cloudy (clear fraction 0, NDVI NaN), without an error."""
    tile = _without_offset(s2_tile(tmp_path, reflectance=reflectance))
    with pytest.raises(TilewiseError, match=r"tile 14SPJ 20230801: 100% of the scene-clear pixels .* boa_add_offset 0"):
        process_county(inputs(*rasters(tmp_path), [tile]))


def test_a_few_dark_pixels_below_the_offset_are_not_refused(tmp_path):
    """Real L2A has pixels below DN 1000 (0.6 % of vegetation, 4 % of bare soil in red on tile 29UNU): a
    third of the parcel so is read, its pixels counted as not physical."""
    tile = _without_offset(s2_tile(tmp_path), dark={"B04": 0.43})
    [p] = process_county(inputs(*rasters(tmp_path), [tile]))[0].to_dict("records")
    assert p["ndvi_mean_unitless"] == pytest.approx(NDVI, abs=1e-6)
    bad, good = p["s2_nonphysical_pixels_count"], p["s2_clear_pixels_count"]
    assert 0.2 < bad / (bad + good) < 0.45


def _lonlat_band(path, west, east, north, value):
    """A class raster in lon/lat on WorldCover's grid, `west`…`east` × 0.1° south of `north`."""
    data = np.full((int(round(0.1 / WC_DEG)), int(round((east - west) / WC_DEG))), value, np.uint8)
    return write_band(path, data, "EPSG:4326", from_origin(west, north, WC_DEG, WC_DEG), 0)


@pytest.mark.parametrize("crs", [3338, 32601, 32660, "0-360"])  # Alaska Albers, UTM on either side, lon/lat 0…360°
@pytest.mark.parametrize(
    ("lat", "west", "east"), [(51.5, 179.99, 180.01), (57.2, 179.995, 180.03), (62.0, 179.97, 180.002)]
)
def test_a_parcel_across_the_antimeridian_is_measured_on_lon_lat_tiles_as_its_own_area(tmp_path, crs, lat, west, east):
    """Aleutians West: a parcel across ±180° in a projected layer, reprojected vertex by vertex into the
    lon/lat of WorldCover's E177 and W180 tiles (and a CDL in lon/lat), was a band around the globe: it
    got every cell of the tiles' width (3,438 WorldCover acres for a 382-acre parcel)."""
    north = lat + 0.05
    wc = [
        _lonlat_band(tmp_path / f"wc{k}.tif", w, e, north, 10)
        for k, (w, e) in enumerate([(179.9, 180), (-180, -179.9)])
    ]
    cdl = [
        _lonlat_band(tmp_path / f"c{k}.tif", w, e, north, 176)
        for k, (w, e) in enumerate([(179.9, 180), (-180, -179.9)])
    ]
    drawn = shapely.segmentize(shapely.box(west, lat, east, lat + 0.01), 0.001)
    geodesic = geodesic_acres(drawn)
    back = shapely.transform(
        drawn, lambda xy: np.column_stack([np.where(xy[:, 0] > 180, xy[:, 0] - 360, xy[:, 0]), xy[:, 1]])
    )
    geom, crs = (drawn, 4326) if crs == "0-360" else (to_crs(back, 4326, crs), crs)  # 0…360°: one simple polygon
    parcels = gpd.GeoDataFrame({"parcel_id": ["across"]}, geometry=[geom], crs=crs)
    result, _, _ = process_county(replace(inputs(wc[0], cdl[0], parcels=parcels), worldcover=wc, cdl=cdl))
    p = result.iloc[0]
    assert p["parcel_area_acres"] == pytest.approx(geodesic, rel=1e-3)
    for column in ("worldcover_valid_area_acres", "tree_cover_acres", "cdl_valid_area_acres"):
        assert p[column] == pytest.approx(geodesic, rel=0.01), column
