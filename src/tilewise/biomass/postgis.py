"""Load a state's parcel results into PostgreSQL/PostGIS: one transaction per county, idempotent.

The connection comes from `postgis.dsn` in the config or, when that is empty, from libpq's own
environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass): no password lives in the
repository. Each county is replaced whole (DELETE then COPY) inside its own transaction, so a
rerun, or a rerun after a crash, leaves exactly one copy of every parcel.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely
from psycopg import sql

from tilewise.biomass import county_files

log = logging.getLogger(__name__)
_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean", "O": "text", "U": "text"}


def _columns(frame: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    cols = []
    for name, dtype in frame.drop(columns=frame.geometry.name).dtypes.items():
        cols.append((name, _TYPES.get(dtype.kind, "text")))
    return cols


def ensure_table(conn: psycopg.Connection, schema: str, table: str, frame: gpd.GeoDataFrame, srid: int) -> None:
    cols = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in _columns(frame)]
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (state text NOT NULL, {}, geom geometry(MultiPolygon, {}), "
            "PRIMARY KEY (state, county_fips, parcel_id))"
        ).format(sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(cols), sql.Literal(srid))
    )
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} USING gist (geom)").format(
            sql.Identifier(f"{table}_geom_idx"), sql.Identifier(schema), sql.Identifier(table)
        )
    )


def load_county(
    conn: psycopg.Connection, schema: str, table: str, state: str, frame: gpd.GeoDataFrame, srid: int
) -> int:
    """Replace one county's rows in one transaction; returns the rows written."""
    names = [n for n, _ in _columns(frame)]
    county = str(frame["county_fips"].iloc[0])
    geoms = np.array([shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in frame.geometry.values])
    ewkb = shapely.to_wkb(shapely.set_srid(geoms, srid), hex=True, include_srid=True)
    with conn.transaction():
        conn.execute(
            sql.SQL("DELETE FROM {}.{} WHERE state = %s AND county_fips = %s").format(
                sql.Identifier(schema), sql.Identifier(table)
            ),
            (state, county),
        )
        copy = sql.SQL("COPY {}.{} (state, {}, geom) FROM STDIN").format(
            sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with conn.cursor().copy(copy) as cp:
            values = frame[names].astype(object).where(frame[names].notna(), None).to_numpy()
            for row, geom in zip(values, ewkb, strict=True):
                cp.write_row([state, *(_plain(v) for v in row), geom])
    return len(frame)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def load_state(dsn: str, schema: str, table: str, state: str, county_paths: list[Path]) -> dict:
    counts = {}
    with psycopg.connect(dsn or "", autocommit=True) as conn:
        for i, path in enumerate(sorted(county_paths)):
            frame = county_files.read_parcels([path])
            srid = frame.crs.to_epsg() or 4326
            if i == 0:
                ensure_table(conn, schema, table, frame, srid)
            county = county_files.county_of(path)
            counts[county] = load_county(conn, schema, table, state, frame, srid)
            log.info("%s: %d parcels loaded into %s.%s", path, counts[county], schema, table)
    return {"state": state, "table": f"{schema}.{table}", "rows_per_county": counts}
