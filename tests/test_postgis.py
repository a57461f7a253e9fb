"""The optional PostGIS load, against a real PostgreSQL with PostGIS started here."""

import geopandas as gpd
import psycopg
import pytest
import yaml

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
