"""The optional PostGIS load, against a real PostgreSQL with PostGIS started here."""

import logging

import geopandas as gpd
import psycopg
import pyproj
import pytest
import shapely
import yaml

from tilewise.biomass.postgis import CountyFileIsWrong, TableDoesNotFit, load_state

from conftest import snakemake
from support.services import PostGIS

pytestmark = pytest.mark.workflow
TARGET = "results/states/demo/postgis_load.json"


@pytest.fixture
def postgis():
    db = PostGIS()
    yield db
    db.stop()


def test_state_loads_into_postgis_idempotently(tmp_path, postgis):
    cfg = tmp_path / "pg.yaml"
    settings = {"dsn": postgis.dsn, "schema": "tilewise", "table": "parcel_biomass"}
    cfg.write_text(yaml.safe_dump({"state": "demo", "postgis": settings}))
    work = tmp_path / "run"
    snakemake(work, TARGET, "--configfile", str(cfg))
    counties = [gpd.read_parquet(p) for p in sorted((work / "results/states/demo/counties").glob("99???.parquet"))]
    expected_rows = sum(len(c) for c in counties)
    expected_yield = sum(c["crop_production_dry_short_tons_per_year"].sum() for c in counties)
    query = (
        "SELECT count(*), count(DISTINCT county_fips), min(ST_SRID(geom)), bool_and(ST_IsValid(geom)), "
        "sum(crop_production_dry_short_tons_per_year) FROM tilewise.parcel_biomass WHERE state = 'demo'"
    )
    with psycopg.connect(postgis.dsn) as conn:
        rows, n_counties, srid, valid, total_yield = conn.execute(query).fetchone()
    assert (rows, n_counties, srid, valid) == (expected_rows, 3, 4326, True)
    assert total_yield == pytest.approx(expected_yield)
    # a rerun replaces each county in its own transaction: still exactly one row per parcel
    snakemake(work, TARGET, "--forcerun", "load_postgis", "--configfile", str(cfg))
    with psycopg.connect(postgis.dsn) as conn:
        assert conn.execute(query).fetchone()[0] == expected_rows


# --- load_state directly: one server for the module, an empty database per test ---

YIELD = "crop_production_dry_short_tons_per_year"
TABLE = "tilewise.parcel_biomass"


@pytest.fixture(scope="module")
def server():
    db = PostGIS()
    yield db
    db.stop()


@pytest.fixture
def pg(server):
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS tilewise CASCADE")
    return server


def county(folder, fips, n=3, crs="EPSG:4326", at=(-88.3, 40.0), step=0.001, **columns):
    """A county result file {fips}.parquet of n square parcels from `at` (lon, lat), in `crs`."""
    x0, y0 = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(*at) if crs else at
    parcels = [shapely.box(x0 + i * step, y0, x0 + (i + 0.8) * step, y0 + 0.8 * step) for i in range(n)]
    data = {"parcel_id": [f"P{i}" for i in range(n)], "county_fips": [fips] * n, YIELD: [1.0 + i for i in range(n)]}
    path = folder / f"{fips}.parquet"
    gpd.GeoDataFrame({**data, **columns}, geometry=parcels, crs=crs).to_parquet(path)
    return path


def load(pg, state, paths):
    return load_state(pg.dsn, "tilewise", "parcel_biomass", state, paths)


def rows(pg, where="true"):
    with psycopg.connect(pg.dsn) as conn:
        return conn.execute(
            f"SELECT state, county_fips, count(*), min(ST_SRID(geom)), max(ST_SRID(geom)), "
            f"avg(ST_X(ST_Transform(ST_Centroid(geom), 4326))), avg(ST_Y(ST_Transform(ST_Centroid(geom), 4326))) "
            f"FROM {TABLE} WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()


def test_counties_the_state_no_longer_has_lose_their_rows_and_the_record_says_so(tmp_path, pg, caplog):
    a, b, c = (county(tmp_path, f) for f in ("99001", "99002", "99003"))
    load(pg, "demo", [a, b, c])
    load(pg, "other", [county(tmp_path, "99003")])
    caplog.set_level(logging.INFO)
    record = load(pg, "demo", [a, b])  # 99003 left the state's counties (or its selection)
    assert [r[:3] for r in rows(pg)] == [("demo", "99001", 3), ("demo", "99002", 3), ("other", "99003", 3)]
    assert record["removed_counties"] == {"99003": 3}
    assert "county 99003: 3 rows removed from tilewise.parcel_biomass, no longer one of state demo's" in caplog.text


def test_an_empty_county_replaces_its_rows_with_none(tmp_path, pg):
    load(pg, "demo", [county(tmp_path, "99001"), county(tmp_path, "99002")])
    record = load(pg, "demo", [county(tmp_path, "99001"), county(tmp_path, "99002", n=0)])
    assert [r[:3] for r in rows(pg)] == [("demo", "99001", 3)]
    assert record["rows_per_county"] == {"99001": 3, "99002": 0}


CUSTOM_LCC = "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +datum=NAD83 +units=us-ft +no_defs"


def test_parcels_in_a_crs_without_an_epsg_code_are_reprojected_never_just_labelled(tmp_path, pg):
    assert pyproj.CRS(CUSTOM_LCC).to_epsg() is None
    record = load(pg, "demo", [county(tmp_path, "99001", crs=CUSTOM_LCC, step=300)])
    ((_, _, n, srid_min, srid_max, lon, lat),) = rows(pg)
    assert (n, srid_min, srid_max) == (3, 4326, 4326)
    assert lon == pytest.approx(-88.3, abs=0.01) and lat == pytest.approx(40.0, abs=0.01)
    assert record["srid"] == 4326 and record["reprojected"] == {"99001": pyproj.CRS(CUSTOM_LCC).name}


def test_counties_in_other_crss_are_reprojected_to_the_tables_srid(tmp_path, pg):
    load(pg, "demo", [county(tmp_path, "99001", crs="EPSG:5070", step=100)])  # the table is made in 5070
    record = load(
        pg, "demo", [county(tmp_path, "99001", crs="EPSG:5070", step=100), county(tmp_path, "99002", at=(-88.2, 40))]
    )
    (a, b) = rows(pg)
    assert (a[3], a[4], b[3], b[4]) == (5070, 5070, 5070, 5070)
    assert b[5] == pytest.approx(-88.2, abs=0.01) and b[6] == pytest.approx(40.0, abs=0.01)
    assert record["reprojected"] == {"99002": "EPSG:4326"}


def _table(pg, columns):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute("CREATE SCHEMA tilewise")
        conn.execute(f"CREATE TABLE {TABLE} ({columns})")
        conn.execute(f"INSERT INTO {TABLE} (state, county_fips, parcel_id) VALUES ('old', '01001', 'X')")


BASE = f"state text NOT NULL, parcel_id text, county_fips text, {YIELD} double precision"
KEY = "PRIMARY KEY (state, county_fips, parcel_id)"


@pytest.mark.parametrize(
    "columns, differs",
    [
        (
            f"{BASE}, old_metric double precision, geom geometry(MultiPolygon, 4326), {KEY}",
            "it has a column old_metric",
        ),
        (
            f"state text NOT NULL, parcel_id text, county_fips text, geom geometry(MultiPolygon, 4326), {KEY}",
            f"it has no column {YIELD}",
        ),
        (
            f"state text NOT NULL, parcel_id text, county_fips text, {YIELD} text, geom geometry(MultiPolygon, 4326), "
            f"{KEY}",
            f"its column {YIELD} is text, the results' is double precision",
        ),
        (
            f"{BASE}, geom geometry, {KEY}",
            r"its column geom is geometry, the load writes geometry\(MultiPolygon,4326\)",
        ),
        (f"{BASE}, geom geometry(Point, 4326), {KEY}", r"its column geom is geometry\(Point,4326\)"),
        (f"{BASE}, geom geometry(MultiPolygon, 4326)", r"its primary key is \(\)"),
    ],
    ids=["extra-column", "missing-column", "other-type", "no-srid", "point", "no-key"],
)
def test_a_table_that_does_not_fit_fails_naming_the_table_what_differs_and_the_fix(tmp_path, pg, columns, differs):
    _table(pg, columns)
    with pytest.raises(TableDoesNotFit, match=differs) as err:
        load(pg, "demo", [county(tmp_path, "99001")])
    assert "tilewise.parcel_biomass does not fit the parcel results of" in str(err.value)
    assert "DROP TABLE tilewise.parcel_biomass" in str(err.value)
    assert [r[:3] for r in rows(pg)] == [("old", "01001", 1)]  # nothing written


def test_a_column_that_is_only_null_in_a_county_fits_the_tables_type(tmp_path, pg):
    load(pg, "demo", [county(tmp_path, "99001", note=["a", "b", "c"])])
    load(pg, "demo", [county(tmp_path, "99001", note=["a", "b", "c"]), county(tmp_path, "99002", note=[None] * 3)])
    assert [r[2] for r in rows(pg)] == [3, 3]


def test_a_county_file_holding_other_counties_rows_fails_naming_the_file(tmp_path, pg):
    load(pg, "demo", [county(tmp_path, "99002")])
    misnamed = county(tmp_path, "99002", n=4).rename(tmp_path / "99001.parquet")  # 99002's rows as 99001
    with pytest.raises(CountyFileIsWrong, match=r"99001.parquet: 4 of its 4 parcels have county_fips 99002, not 99001"):
        load(pg, "demo", [misnamed])
    assert [r[:3] for r in rows(pg)] == [("demo", "99002", 3)]


def test_a_county_file_without_a_crs_fails_naming_the_file(tmp_path, pg):
    with pytest.raises(CountyFileIsWrong, match=r"99001.parquet: the parcels have no CRS"):
        load(pg, "demo", [county(tmp_path, "99001", crs=None)])
