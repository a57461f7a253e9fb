"""Load a state's parcel results into PostgreSQL/PostGIS: one transaction per county, idempotent.

The connection comes from `postgis.dsn` in the config or, when that is empty, from libpq's own
environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass): no password lives in the
repository. Each county is replaced whole (DELETE then COPY) inside its own transaction, so a
rerun, or a rerun after a crash, leaves exactly one copy of every parcel; rows of counties the state
no longer has are removed in the same run, so the table holds the state's results exactly.

This module owns the table's format: `state`, the county files' columns, `geom
geometry(MultiPolygon, SRID)`, keyed (state, county_fips, parcel_id). The SRID is the table's if it
exists, else the first county's EPSG code, else 4326; a county in any other CRS (one without an EPSG
code too) is reprojected to it, never merely labelled. A table that does not fit fails naming what differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely
from psycopg import sql
from pyproj import CRS

from tilewise.biomass import county_files

log = logging.getLogger(__name__)
_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean", "O": "text", "U": "text"}
KEY = ("state", "county_fips", "parcel_id")
DEFAULT_SRID = 4326  # for a new table whose first county's CRS has no EPSG code


class TableDoesNotFit(ValueError):
    """An existing table whose columns, key, geometry type or SRID are not the ones the load writes."""


class CountyFileIsWrong(ValueError):
    """A county file that cannot be loaded as it is: the message names the file and the fix."""


@dataclass
class Table:
    schema: str
    name: str

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def _columns(frame: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    cols = []
    for name, dtype in frame.drop(columns=frame.geometry.name).dtypes.items():
        cols.append((name, _TYPES.get(dtype.kind, "text")))
    return cols


def epsg_of(crs: CRS) -> int | None:
    """The EPSG code that is exactly this CRS (confidence 100), else None: a looser match would label
    coordinates with a CRS they are not quite in."""
    return crs.to_epsg(min_confidence=100)


def ensure_table(conn: psycopg.Connection, table: Table, frame: gpd.GeoDataFrame, srid: int) -> int:
    """Create the table if it is missing (IF NOT EXISTS: another state's load may be creating it too);
    returns its SRID. An existing one must fit (`check_fits`)."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    existing = _layout(conn, table)
    if existing is not None:
        return existing.srid or srid  # 0: a geometry column without an SRID, which check_fits refuses
    cols = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in _columns(frame)]
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (state text NOT NULL, {}, geom geometry(MultiPolygon, {}), PRIMARY KEY ({}))"
        ).format(table.ident, sql.SQL(", ").join(cols), sql.Literal(srid), sql.SQL(", ").join(map(sql.Identifier, KEY)))
    )
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)").format(
            sql.Identifier(f"{table.name}_geom_idx"), table.ident
        )
    )
    log.info("created %s (SRID %d)", table, srid)
    return srid


@dataclass
class _Layout:
    columns: dict[str, str]  # name -> format_type, geom excluded
    geometry: str | None  # geometry(MultiPolygon,4326) as format_type writes it, or None without geom
    key: tuple[str, ...]
    srid: int


def _layout(conn: psycopg.Connection, table: Table) -> _Layout | None:
    found = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (table.schema, table.name),
    ).fetchone()
    if found is None:
        return None
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        found,
    ).fetchall()
    key = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
        found,
    ).fetchall()
    columns = dict(rows)
    geometry = columns.pop("geom", None)
    srid = conn.execute(
        "SELECT srid FROM geometry_columns "
        "WHERE f_table_schema = %s AND f_table_name = %s AND f_geometry_column = 'geom'",
        (table.schema, table.name),
    ).fetchone()
    return _Layout(columns, geometry, tuple(k for (k,) in key), srid[0] if srid else 0)


def check_fits(conn: psycopg.Connection, table: Table, path: Path, frame: gpd.GeoDataFrame, srid: int) -> None:
    """The table has exactly the columns this county writes (a column only null here fits any type), the
    key and a MultiPolygon geometry of `srid`: otherwise rows would be loaded into columns they do not
    belong in, leave columns that no longer exist null, or share the table with other SRIDs."""
    layout = _layout(conn, table)
    wanted = {"state": "text", **dict(_columns(frame))}
    differs = []
    for name in sorted(wanted.keys() - layout.columns.keys()):
        differs.append(f"it has no column {name} ({wanted[name]})")
    for name in sorted(layout.columns.keys() - wanted.keys()):
        differs.append(f"it has a column {name} ({layout.columns[name]}) that the results do not have")
    for name in sorted(wanted.keys() & layout.columns.keys()):
        if layout.columns[name] != wanted[name] and (name == "state" or frame[name].notna().any()):
            differs.append(f"its column {name} is {layout.columns[name]}, the results' is {wanted[name]}")
    want_geom = f"geometry(MultiPolygon,{srid})"
    if (layout.geometry or "").replace(" ", "") != want_geom:
        differs.append(f"its column geom is {layout.geometry or 'missing'}, the load writes {want_geom}")
    if layout.key != KEY:
        differs.append(f"its primary key is ({', '.join(layout.key)}), the load needs ({', '.join(KEY)})")
    if differs:
        raise TableDoesNotFit(
            f"{table} does not fit the parcel results of {path}: " + "; ".join(differs) + ". "
            f"It was made by an earlier version or by hand: load into a new table (postgis.table in the config) "
            f"or drop this one (DROP TABLE {table}) and load every state again"
        )


def checked_county(path: Path, frame: gpd.GeoDataFrame) -> str:
    """The county the file is named for, after checking that every row is of it and can be placed."""
    county = county_files.county_of(path)
    fips = frame["county_fips"].astype("string")
    others = sorted(set(fips[fips != county].fillna("<null>")))
    if others:
        raise CountyFileIsWrong(
            f"{path}: {int((fips != county).fillna(True).sum())} of its {len(frame)} parcels have county_fips "
            f"{', '.join(others[:5])}, not {county} as its name says; the load replaces county {county}'s rows "
            f"with this file, so these rows would land in or overwrite another county. Rerun the county "
            f"(delete the file and run the state again) or correct county_fips"
        )
    if frame.crs is None:
        raise CountyFileIsWrong(
            f"{path}: the parcels have no CRS, so where they lie is unknown; rerun the county (delete the file "
            f"and run the state again) or set the CRS they are in (GeoDataFrame.set_crs)"
        )
    kinds = shapely.get_type_id(np.asarray(frame.geometry.array))
    odd = ~np.isin(kinds, [-1, 3, 6])  # missing, Polygon, MultiPolygon
    if odd.any():
        ids = ", ".join(map(str, frame.loc[odd, "parcel_id"].head(5)))
        raise CountyFileIsWrong(
            f"{path}: {int(odd.sum())} parcels are not polygons (e.g. {ids}); the table holds MultiPolygons: "
            f"rerun the county or fix their geometries"
        )
    return county


def in_srid(path: Path, frame: gpd.GeoDataFrame, srid: int) -> tuple[gpd.GeoDataFrame, str | None]:
    """The frame in EPSG:`srid`, and what it was in when it had to be reprojected."""
    if epsg_of(frame.crs) == srid:
        return frame, None
    was = frame.crs.name if epsg_of(frame.crs) is None else f"EPSG:{epsg_of(frame.crs)}"
    log.info("%s: parcels in %s reprojected to EPSG:%d, the table's SRID", path, was, srid)
    return frame.to_crs(epsg=srid), was


def load_county(
    conn: psycopg.Connection, table: Table, state: str, county: str, frame: gpd.GeoDataFrame, srid: int
) -> int:
    """Replace one county's rows in one transaction; returns the rows written (0 for an empty county)."""
    names = [n for n, _ in _columns(frame)]
    geoms = np.array([_multi(g) for g in frame.geometry.values], dtype=object)
    ewkb = shapely.to_wkb(shapely.set_srid(geoms, srid), hex=True, include_srid=True)
    with conn.transaction():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE state = %s AND county_fips = %s").format(table.ident), (state, county)
        )
        copy = sql.SQL("COPY {} (state, {}, geom) FROM STDIN").format(
            table.ident, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with conn.cursor().copy(copy) as cp:
            values = frame[names].astype(object).where(frame[names].notna(), None).to_numpy()
            for row, geom in zip(values, ewkb, strict=True):
                cp.write_row([state, *(_plain(v) for v in row), geom])
    return len(frame)


def _multi(g):
    if g is None or g.geom_type == "MultiPolygon":
        return g
    return shapely.MultiPolygon() if g.is_empty else shapely.MultiPolygon([g])


def remove_other_counties(conn: psycopg.Connection, table: Table, state: str, counties: list[str]) -> dict[str, int]:
    """Delete the state's rows of counties it no longer has (removed from its counties or its selection)."""
    with conn.transaction():
        rows = conn.execute(
            sql.SQL("DELETE FROM {} WHERE state = %s AND NOT (county_fips = ANY(%s)) RETURNING county_fips").format(
                table.ident
            ),
            (state, counties),
        ).fetchall()
    removed: dict[str, int] = {}
    for (county,) in rows:
        removed[county] = removed.get(county, 0) + 1
    for county, n in sorted(removed.items()):
        log.info("county %s: %d rows removed from %s, no longer one of state %s's counties", county, n, table, state)
    return removed


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def load_state(dsn: str, schema: str, table_name: str, state: str, county_paths: list[Path]) -> dict:
    """Make the table's rows of `state` exactly the given county files' parcels."""
    table = Table(schema, table_name)
    counts, reprojected = {}, {}
    srid = None
    with psycopg.connect(dsn or "", autocommit=True) as conn:
        for path in sorted(map(Path, county_paths)):
            frame = county_files.read_parcels([path])
            county = checked_county(path, frame)
            if srid is None:
                srid = ensure_table(conn, table, frame, epsg_of(frame.crs) or DEFAULT_SRID)
            check_fits(conn, table, path, frame, srid)
            frame, was = in_srid(path, frame, srid)
            if was:
                reprojected[county] = was
            counts[county] = load_county(conn, table, state, county, frame, srid)
            log.info("%s: %d parcels loaded into %s", path, counts[county], table)
        # with no county files the table may not exist yet: then there is nothing to remove
        exists = counts or _layout(conn, table) is not None
        removed = remove_other_counties(conn, table, state, sorted(counts)) if exists else {}
    return {
        "state": state,
        "table": str(table),
        "srid": srid,
        "rows_per_county": counts,
        "reprojected": reprojected,
        "removed_counties": removed,
    }
