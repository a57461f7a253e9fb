"""A state's counties and parcels: from a file GDAL reads, or from a PostGIS query.

A file is GeoParquet (recognised by content) or anything GDAL opens — GeoPackage, a shapefile, the
Census TIGER county zip as downloaded (`tl_2024_us_county.zip`). A query is `{query, dsn}` in the
config: `SELECT …, geom AS geometry FROM …` (the geometry column must be called `geometry`); `dsn`
is a libpq connection string without password, or empty for libpq's environment (PGHOST, PGUSER, …,
PGPASSWORD or ~/.pgpass).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from tilewise.shared.errors import TilewiseError

_PARQUET_MAGIC = b"PAR1"


def read_vector(source: str | dict, what: str) -> gpd.GeoDataFrame:
    """`what` (e.g. "parcels") from `source`: a path or a {query, dsn} PostGIS query. Without a CRS
    where they lie is unknown (and every overlay with them wrong): that stops, naming the fix."""
    if isinstance(source, dict):
        frame = _read_postgis(source["query"], source["dsn"], what)
        if frame.crs is None:
            raise TilewiseError(
                f"PostGIS query for the {what}: its geometries have SRID 0 (no CRS); give them the SRID they are in "
                f"in the query, e.g. ST_SetSRID(geom, 4269) AS geometry: {source['query']}"
            )
        return frame
    path = Path(source)
    try:
        with open(path, "rb") as f:
            parquet = f.read(4) == _PARQUET_MAGIC
        if not parquet:
            _refuse_several_layers(path, what)
        frame = gpd.read_parquet(path) if parquet else gpd.read_file(path)
    except TilewiseError:
        raise
    except Exception as exc:  # noqa: BLE001 (any reader's error: name the file and what it should be)
        raise TilewiseError(
            f"{path}: cannot read the {what} ({type(exc).__name__}: {exc}); give a GeoParquet, a GeoPackage or "
            "another file GDAL reads, or a PostGIS query"
        ) from exc
    if frame.crs is None:
        raise TilewiseError(
            f"{path}: the {what} have no CRS, so where they lie is unknown; assign the CRS they are in "
            f"(e.g. `ogr2ogr -a_srs EPSG:4269 fixed.gpkg {path}`, or GeoDataFrame.set_crs) and point the config at it"
        )
    return frame


def _refuse_several_layers(path: Path, what: str) -> None:
    """A file of several geometry layers (parcels of two years, parcels and lots): which one is meant
    cannot be told, and GDAL would give the first."""
    import pyogrio

    layers = [name for name, kind in pyogrio.list_layers(path) if kind is not None]
    if len(layers) > 1:
        raise TilewiseError(
            f"{path}: {len(layers)} layers with geometries ({', '.join(layers)}), so which holds the {what} cannot "
            f"be told; write that one to its own file (ogr2ogr {what}.gpkg {path} LAYER) and point the config at it"
        )


def _read_postgis(query: str, dsn: str, what: str) -> gpd.GeoDataFrame:
    import psycopg  # only for a query: keeps file-based runs free of it

    wrapped = (
        "SELECT q.*, ST_AsBinary(q.geometry) AS tilewise_wkb, ST_SRID(q.geometry) AS tilewise_srid "
        f"FROM ({query}) AS q"  # noqa: S608 (the user's own query from their config)
    )
    try:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(wrapped)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise TilewiseError(
            f"PostGIS query for the {what} failed ({type(exc).__name__}: {exc}); the query must return a geometry "
            f"column named `geometry`: {query}"
        ) from exc
    keep = [i for i, n in enumerate(names) if n not in ("geometry", "tilewise_wkb", "tilewise_srid")]
    srids = {r[names.index("tilewise_srid")] for r in rows}
    if len(srids) > 1:
        raise TilewiseError(f"PostGIS query for the {what} returns geometries in several SRIDs {sorted(srids)}")
    geoms = shapely.from_wkb([bytes(r[names.index("tilewise_wkb")]) for r in rows])
    data = {names[i]: [r[i] for r in rows] for i in keep}
    srid = srids.pop() if srids else 4326
    return gpd.GeoDataFrame(data, geometry=geoms, crs=srid if srid else None)
