"""A real state's inputs in their real formats: FIADB tables (CSV, SQLite) read by column and type;
counties and parcels from the TIGER zip, GeoParquet, GeoPackage or a PostGIS query; and the Illinois
example config, dry-run against generated stand-ins of every input."""

import sqlite3
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
import yaml
from rasterio.transform import from_origin

from tilewise.biomass import fiadb
from tilewise.biomass.quickstats import COLUMNS as QUICKSTATS_COLUMNS
from tilewise.biomass.tile_index import load_counties
from tilewise.biomass.vectors import read_vector
from tilewise.shared.errors import TilewiseError
from tilewise_demo.rasters import write_band

from conftest import REPO, shared, snakemake
from support.services import PostGIS

# the first columns of FIADB's real TREE and PLOT tables (FIADB 9.x), in their order: the readers must
# pick theirs out of the full width
TREE_HEADER = (
    "CN,PLT_CN,PREV_TRE_CN,INVYR,STATECD,UNITCD,COUNTYCD,PLOT,SUBP,TREE,CONDID,PREVCOND,STATUSCD,SPCD,SPGRPCD,"
    "DIA,DIAHTCD,HT,HTCD,ACTUALHT,TREECLCD,CR,CCLCD,TREEGRCD,AGENTCD,CULL,DAMLOC1,VOLCFNET,VOLCFGRS,"
    "VOLCSNET,TPA_UNADJ,DRYBIO_BOLE,DRYBIO_STUMP,DRYBIO_BG,CARBON_AG,CARBON_BG,DRYBIO_AG,CREATED_DATE"
).split(",")
COND_HEADER = (
    "CN,PLT_CN,INVYR,STATECD,UNITCD,COUNTYCD,PLOT,CONDID,COND_STATUS_CD,COND_NONSAMPLE_REASN_CD,RESERVCD,OWNCD,"
    "OWNGRPCD,FORTYPCD,STDSZCD,SITECLCD,CONDPROP_UNADJ,MICRPROP_UNADJ,SUBPPROP_UNADJ,MACRPROP_UNADJ,CREATED_DATE"
).split(",")
PLOT_HEADER = (
    "CN,SRV_CN,CTY_CN,PREV_PLT_CN,INVYR,STATECD,UNITCD,COUNTYCD,PLOT,PLOT_STATUS_CD,PLOT_NONSAMPLE_REASN_CD,"
    "MEASYEAR,MEASMON,MEASDAY,REMPER,KINDCD,DESIGNCD,RDDISTCD,WATERCD,LAT,LON,ELEV,CREATED_DATE"
).split(",")


def fiadb_tables(folder, n_plots=40, seed=3) -> tuple:
    """PLOT, COND and TREE stand-ins with FIADB's columns (values random but of the right kinds)."""
    rng = np.random.default_rng(seed)
    plots = pd.DataFrame({c: rng.integers(1, 9, n_plots) for c in PLOT_HEADER})
    plots["CN"] = 1_700_000_000_000 + np.arange(n_plots)  # 13-digit control numbers
    plots["LAT"], plots["LON"] = rng.uniform(40.3, 40.7, n_plots).round(5), rng.uniform(-89.2, -88.5, n_plots).round(5)
    plots["INVYR"], plots["STATECD"], plots["PLOT_STATUS_CD"] = 2021, 17, 1
    plots["CREATED_DATE"] = "2022-03-01 10:00:00"
    conds = pd.DataFrame({c: rng.integers(1, 9, n_plots) for c in COND_HEADER})
    conds["CN"] = 1_900_000_000_000 + np.arange(n_plots)
    conds["PLT_CN"], conds["CONDID"], conds["COND_STATUS_CD"] = plots["CN"], 1, 1
    conds["CONDPROP_UNADJ"] = 1.0
    trees = pd.DataFrame({c: rng.integers(1, 9, 6 * n_plots) for c in TREE_HEADER})
    trees["CN"] = 1_800_000_000_000 + np.arange(len(trees))
    trees["PLT_CN"] = np.repeat(plots["CN"].to_numpy(), 6)
    trees["CONDID"] = 1
    trees["STATUSCD"] = rng.choice([1, 1, 1, 2], len(trees))
    for c in ("DIA", "TPA_UNADJ", "DRYBIO_AG", "DRYBIO_BOLE"):
        trees[c] = rng.uniform(1, 500, len(trees)).round(3)
    trees["CREATED_DATE"] = "2022-03-01 10:00:00"
    trees.loc[3, "HT"] = np.nan  # FIADB leaves unmeasured values empty
    folder.mkdir(parents=True, exist_ok=True)
    plots.to_csv(folder / "IL_PLOT.csv", index=False)
    conds.to_csv(folder / "IL_COND.csv", index=False)
    trees.to_csv(folder / "IL_TREE.csv", index=False)
    return plots, trees


def test_fiadb_tables_are_read_by_column_and_type_from_csv_and_sqlite(tmp_path):
    plots, trees = fiadb_tables(tmp_path)
    db = tmp_path / "SQLite_FIADB_IL.db"
    with sqlite3.connect(db) as conn:
        plots.to_sql("PLOT", conn, index=False)
        trees.to_sql("TREE", conn, index=False)
    for source in (tmp_path / "IL_TREE.csv", db):
        got = fiadb.read_table(source, "TREE")
        assert list(got.columns) == [*fiadb.REQUIRED["TREE"], "DIAHTCD"] and len(got) == len(trees)
        assert got["PLT_CN"].tolist() == trees["PLT_CN"].astype(str).tolist()  # sequence numbers stay text
        assert got["DRYBIO_AG"].dtype == "float64" and got["DRYBIO_AG"].tolist() == trees["DRYBIO_AG"].tolist()
    for source in (tmp_path / "IL_PLOT.csv", db):
        got = fiadb.read_table(source, "PLOT")
        assert list(got.columns) == fiadb.REQUIRED["PLOT"] and got["CN"].tolist() == plots["CN"].astype(str).tolist()
    # the file says what is wrong and where
    with pytest.raises(TilewiseError, match=r"IL_PLOT.csv: the FIADB TREE table lacks columns \['PLT_CN'"):
        fiadb.read_table(tmp_path / "IL_PLOT.csv", "TREE")
    lines = (tmp_path / "IL_TREE.csv").read_text().splitlines()
    cells = lines[8].split(",")
    cells[TREE_HEADER.index("DRYBIO_AG")] = "12.5kg"
    (tmp_path / "bad.csv").write_text("\n".join([*lines[:8], ",".join(cells), *lines[9:]]) + "\n")
    with pytest.raises(TilewiseError, match=r"bad.csv: column DRYBIO_AG is not a number on lines \[9\]"):
        fiadb.read_table(tmp_path / "bad.csv", "TREE")
    with pytest.raises(TilewiseError, match="has no table COND"):
        fiadb.read_table(db, "COND")


def tiger_zip(path):
    """The TIGER national county file as downloaded: a zipped shapefile (real IL, DE, RI counties)."""
    counties = gpd.read_file(shared("boundaries/us_counties_IL_DE_RI.gpkg"))
    folder = path.parent / "tiger"
    folder.mkdir(parents=True, exist_ok=True)
    counties.to_file(folder / "tl_2024_us_county.shp")
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return path


def test_counties_and_parcels_from_tiger_geoparquet_and_geopackage(tmp_path):
    counties = load_counties(str(tiger_zip(tmp_path / "tl_2024_us_county.zip")), "17")
    assert len(counties) == 102 and counties["county_fips"].str.startswith("17").all()
    parcels = gpd.GeoDataFrame({"parcel_id": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1)] * 2, crs=4326)
    parcels.to_parquet(tmp_path / "parcels.data")  # GeoParquet by content, whatever its name
    parcels.to_file(tmp_path / "parcels.gpkg", driver="GPKG")
    for source in (tmp_path / "parcels.data", tmp_path / "parcels.gpkg"):
        got = read_vector(str(source), "parcels")
        assert got["parcel_id"].tolist() == ["a", "b"] and got.crs.to_epsg() == 4326
    (tmp_path / "broken.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(TilewiseError, match="broken.gpkg: cannot read the parcels"):
        read_vector(str(tmp_path / "broken.gpkg"), "parcels")


def test_parcels_from_a_postgis_query(tmp_path):
    db = PostGIS()
    try:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute(
                "CREATE SCHEMA il; CREATE TABLE il.parcels (pin text, county text, geom geometry(Polygon, 3435))"
            )
            conn.execute(
                "INSERT INTO il.parcels VALUES ('p1', '17113', ST_MakeEnvelope(1000, 1000, 1100, 1100, 3435)),"
                " ('p2', '17113', ST_MakeEnvelope(2000, 1000, 2100, 1200, 3435))"
            )
        query = "SELECT pin AS parcel_id, county AS county_fips, geom AS geometry FROM il.parcels ORDER BY pin"
        got = read_vector({"query": query, "dsn": db.dsn}, "parcels")
        assert got["parcel_id"].tolist() == ["p1", "p2"] and got["county_fips"].tolist() == ["17113"] * 2
        assert got.crs.to_epsg() == 3435 and got.geometry.area.tolist() == pytest.approx([10_000, 20_000])
        with pytest.raises(TilewiseError, match="geometry column named `geometry`"):
            read_vector({"query": "SELECT pin FROM il.parcels", "dsn": db.dsn}, "parcels")
        no_srid = "SELECT pin AS parcel_id, ST_SetSRID(geom, 0) AS geometry FROM il.parcels"
        with pytest.raises(TilewiseError, match=r"SRID 0 \(no CRS\); .* ST_SetSRID\(geom, 4269\)"):
            read_vector({"query": no_srid, "dsn": db.dsn}, "parcels")
    finally:
        db.stop()


def test_the_illinois_example_config_dry_runs_against_stand_ins(tmp_path):
    config = yaml.safe_load((REPO / "config" / "illinois.yaml").read_text())
    state = config["states"]["illinois"]
    work = tmp_path / "run"
    # stand-ins of every local input, in the formats the real ones come in
    tiger_zip(work / state["counties"])
    counties = load_counties(str(work / state["counties"]), "17")
    mclean = counties[counties["county_fips"] == "17113"].to_crs(4326).geometry.iloc[0]
    x0, y0 = mclean.representative_point().coords[0]
    parcels = [shapely.box(x0 + 0.01 * i, y0, x0 + 0.01 * i + 0.008, y0 + 0.008) for i in range(5)]
    (work / state["parcels"]).parent.mkdir(parents=True)
    gpd.GeoDataFrame({"parcel_id": [f"P{i}" for i in range(5)]}, geometry=parcels, crs=4326).to_parquet(
        work / state["parcels"]
    )
    fiadb_tables((work / state["fia_plot"]).parent)
    (work / state["nass_yields"]).parent.mkdir(parents=True)
    pd.DataFrame(columns=QUICKSTATS_COLUMNS).to_csv(work / state["nass_yields"], index=False)
    write_band(
        work / state["cdl"][0], np.ones((50, 50), np.uint8), "EPSG:5070", from_origin(600_000, 1_900_000, 30, 30)
    )
    proc = snakemake(work, "-n", "--configfile", str(REPO / "config" / "illinois.yaml"))
    assert "index_state" in proc.stdout and "state=illinois" in proc.stdout
    # and the readers read them as the index job will
    assert len(fiadb.read_table(work / state["fia_tree"], "TREE")) == 240
    assert state["sentinel2"]["sign"] == "planetary-computer" and "{tile}" in state["worldcover"]


def _two_county_state(tmp_path):
    """StateInputs of a state of two counties, parcels (and FIA plots) in the western one only."""
    from tilewise.biomass.plan import StateInputs
    from tilewise_demo.state import StateSpec, cdl, counties_and_parcels, county_layer, fia, sentinel2, worldcover

    with_parcels = StateSpec("95", {"95001": ("West", -88.45, 40.05, -88.30, 40.15)}, 0.02, 5)
    everything = StateSpec("95", {**with_parcels.counties, "95003": ("East", -87.60, 40.05, -87.45, 40.15)})
    (tmp_path / "fia").mkdir()
    counties_and_parcels(tmp_path, with_parcels)
    county_layer(everything).to_file(tmp_path / "counties.gpkg", layer="counties", driver="GPKG")
    fia(tmp_path, with_parcels)
    pd.DataFrame(sentinel2(tmp_path, ("16TCK", "16TDK"), everything.box)).to_csv(tmp_path / "s2.csv", index=False)
    worldcover(tmp_path, everything.box)
    cdl(tmp_path, everything.box)
    return StateInputs.from_config(
        {
            "fips": "95",
            "counties": str(tmp_path / "counties.gpkg"),
            "parcels": str(tmp_path / "parcels.parquet"),
            "sentinel2_catalog": str(tmp_path / "s2.csv"),
            "worldcover": str(tmp_path / "worldcover/ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"),
            "cdl": [str(tmp_path / "cdl/2023_30m_cdls_demo.tif")],
            "cdl_year": 2023,
            "nass_yields": None,
            "fia_plot": str(tmp_path / "fia/PLOT.csv"),
            "fia_cond": str(tmp_path / "fia/COND.csv"),
            "fia_tree": str(tmp_path / "fia/TREE.csv"),
        }
    )


def test_counties_without_parcels_read_no_tiles(tmp_path):
    # TIGER lists every county; a parcel source may cover only some: the others run no job, so a tile
    # only they would read is not prepared, and no tile waits for them to be reclaimed
    from tilewise.biomass import state_index
    from tilewise.biomass.tile_index import index_state

    inputs = _two_county_state(tmp_path)
    index_state(inputs, tmp_path / "index", "error", None)
    assert [c["county_fips"] for c in state_index.read_counties(tmp_path / "index")] == ["95001"]
    tiles = state_index.read_tiles(tmp_path / "index")
    assert {t["counties"] for t in tiles} == {"95001"}
    assert {t["tile"] for t in tiles if t["product"] == "sentinel2"} == {"16TCK"}  # 16TDK: only 95003's


@pytest.mark.parametrize("east", [False, True], ids=["west-sign-lost", "plot-in-county-without-parcels"])
def test_the_index_refuses_forest_plots_outside_the_state(tmp_path, east):
    """A plot placed outside its state is in no parcel's radius; one in a county without parcels is the state's."""
    from tilewise.biomass.tile_index import index_state

    inputs = _two_county_state(tmp_path)
    plots = pd.read_csv(tmp_path / "fia" / "PLOT.csv", dtype={"CN": str})
    first = plots.index[(plots["PLOT_STATUS_CD"] == 1) & (plots["INVYR"] == plots["INVYR"].max())][0]  # a visit used
    plots.loc[first, ["LON", "LAT"]] = (-87.5, 40.1) if east else (-plots.loc[first, "LON"], plots.loc[first, "LAT"])
    plots.to_csv(tmp_path / "fia" / "PLOT.csv", index=False)
    if east:
        index_state(inputs, tmp_path / "index", "error", None)
        return
    message = rf"PLOT\.csv: PLOT: forest plot farther than 10 km .*{plots.loc[first, 'CN']}"
    with pytest.raises(TilewiseError, match=message):
        index_state(inputs, tmp_path / "index", "error", None)


@pytest.mark.parametrize(
    ("crs", "pixel", "ok"),
    [("EPSG:5070", 30, True), ("EPSG:4326", 1 / 3600, True), ("EPSG:3857", 30, False), ("EPSG:32610", 30, False)],
)
def test_the_index_refuses_a_cdl_whose_cells_are_not_their_ground_area(tmp_path, crs, pixel, ok):
    from tilewise.biomass.tile_index import select_cdl
    from tilewise.shared.geometry import to_crs

    box = to_crs(shapely.box(-97.2, 39.2, -97.0, 39.4), 4326, crs, densify=0.01).bounds
    shape = (int((box[3] - box[1]) / pixel), int((box[2] - box[0]) / pixel))
    cdl = write_band(
        tmp_path / "2023_30m_cdls.tif", np.ones(shape, np.uint8), crs, from_origin(box[0], box[3], pixel, pixel), 0
    )
    counties = gpd.GeoDataFrame(
        {"county_fips": ["20027"]}, geometry=[shapely.box(-97.15, 39.25, -97.05, 39.35)], crs=4326
    )
    if ok:
        assert select_cdl(counties, (str(cdl),))["counties"].tolist() == ["20027"]
    else:
        with pytest.raises(
            TilewiseError, match=rf"{cdl}: its CRS \({crs}\) does not keep areas.*gdalwarp -t_srs EPSG:5070"
        ):
            select_cdl(counties, (str(cdl),))


def test_the_index_logs_overlapping_cdl_files_and_refuses_two_of_one_name(tmp_path, caplog):
    from tilewise.biomass.tile_index import select_cdl
    from tilewise.shared.geometry import to_crs

    centre = to_crs(shapely.Point(-97.1, 39.3), 4326, 5070)
    x, top = round(centre.x / 30) * 30, round(centre.y / 30) * 30 + 3000

    def cdl(path, west, east):  # a CDL over x west…east (m), 6 km tall, on the national 30 m grid
        data = np.ones((200, (east - west) // 30), np.uint8)
        return str(write_band(path, data, "EPSG:5070", from_origin(west, top, 30, 30), 0))

    counties = gpd.GeoDataFrame(
        {"county_fips": ["20027"]}, geometry=[shapely.box(-97.15, 39.25, -97.05, 39.35)], crs=4326
    )
    national = cdl(tmp_path / "2023_30m_cdls.tif", x - 9000, x + 9000)
    clip = cdl(tmp_path / "ks" / "2023_30m_cdls_KS.tif", x - 3000, x + 3000)
    assert select_cdl(counties, (national, clip))["key"].tolist() == ["2023_30m_cdls", "2023_30m_cdls_KS"]
    assert f"CDL files {national} and {clip} overlap over county 20027" in caplog.text
    caplog.clear()
    west, east = cdl(tmp_path / "west.tif", x - 9000, x), cdl(tmp_path / "east.tif", x, x + 9000)  # side by side
    assert len(select_cdl(counties, (west, east))) == 2 and "overlap" not in caplog.text
    twin = cdl(tmp_path / "il" / "2023_30m_cdls.tif", x - 3000, x + 3000)
    with pytest.raises(TilewiseError, match=rf"CDL files {national} and {twin} have one name, '2023_30m_cdls'"):
        select_cdl(counties, (national, twin))
