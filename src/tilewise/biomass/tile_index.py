"""The tile index of one state: its counties, their parcels, and every raster tile they need.

Written once per state (a Snakemake checkpoint): `counties.csv`, `tiles.csv` (one row per file to
convert, with the counties that read it), `parcels/{county}.parquet` and `fia_plots.parquet`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

from tilewise.biomass import state_index
from tilewise.biomass.forest import plot_densities
from tilewise.biomass.grids import s2_footprint_lonlat, s2_tiles_near, worldcover_tile_box, worldcover_tiles
from tilewise.biomass.indices import boa_offset
from tilewise.biomass.plan import StateInputs
from tilewise.biomass.state_index import TILE_COLUMNS
from tilewise.shared.errors import TilewiseError

log = logging.getLogger(__name__)
S2_BANDS_NEEDED = ("B02", "B03", "B04", "B08")
# A parcel whose FIPS columns name a county is that county's if it reaches within this distance of it:
# one straddling the line is, and parcel and county layers disagree by tens of metres along shared lines.
COUNTY_TOLERANCE_M = 100.0
FIA_COLUMNS = {  # what forest.plot_densities reads, per FIADB table
    "PLOT": ("CN", "LAT", "LON", "INVYR"),
    "TREE": ("PLT_CN", "STATUSCD", "DRYBIO_AG", "DRYBIO_BOLE", "TPA_UNADJ"),
}


def resolve(href: str, base: Path) -> str:
    """Relative paths in a table are relative to the table's folder; URLs stay as they are."""
    if "://" in href or Path(href).is_absolute():
        return href
    return str((base / href).resolve())


def read_parcels(path: Path) -> gpd.GeoDataFrame:
    try:
        parcels = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    except Exception as exc:
        raise TilewiseError(
            f"{path}: cannot read the parcels ({type(exc).__name__}: {exc}); "
            "give a GeoParquet or GeoPackage with parcel_id and geometry"
        ) from exc
    return _with_crs(parcels, path, "parcels")


def _with_crs(frame: gpd.GeoDataFrame, path: Path, what: str) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise TilewiseError(
            f"{path}: the {what} have no CRS, so where they lie is unknown; assign the CRS they are in "
            f"(e.g. `ogr2ogr -a_srs EPSG:4269 fixed.gpkg {path}`, or GeoDataFrame.set_crs) and point the config at it"
        )
    return frame


def read_fia_table(path: Path, table: str) -> pd.DataFrame:
    """A FIADB table (PLOT, TREE) as CSV, with the columns the forest model reads, or a clear stop."""
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise TilewiseError(f"{path}: cannot read the FIA {table} table ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in FIA_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise TilewiseError(
            f"{path}: the FIA {table} table has no column {', '.join(missing)}; give FIADB's {table} table "
            f"(the state's {table}.csv from the FIA DataMart) as fia_{table.lower()} in the config"
        )
    return frame


def load_counties(path: Path, state_fips: str) -> gpd.GeoDataFrame:
    counties = _with_crs(gpd.read_file(path), path, "counties")
    needed = {"STATEFP", "COUNTYFP"}
    if not needed <= set(counties.columns):
        raise TilewiseError(f"{path}: county file needs columns STATEFP and COUNTYFP (has {list(counties.columns)})")
    counties = counties[counties["STATEFP"].astype(str).str.zfill(2) == state_fips].copy()
    if counties.empty:
        raise TilewiseError(f"{path}: no county has STATEFP {state_fips!r}; check the state's fips in the config")
    counties["county_fips"] = state_fips + counties["COUNTYFP"].astype(str).str.zfill(3)
    counties["geometry"] = counties.geometry.make_valid()
    name = counties["NAME"] if "NAME" in counties else counties["county_fips"]
    return counties.assign(name=name)[["county_fips", "name", "geometry"]].sort_values("county_fips")


def assign_parcels(
    parcels: gpd.GeoDataFrame, counties: gpd.GeoDataFrame, path: Path
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Each parcel's 5-digit county FIPS: from its own columns when it has them, else the county that
    contains a point inside it. Invalid geometries are repaired (make_valid); parcels that cannot be
    used are returned apart with the reason (empty, not a polygon, no area, outside the counties, or
    farther than COUNTY_TOLERANCE_M from the county their FIPS columns name)."""
    if "parcel_id" not in parcels.columns:
        raise TilewiseError(f"{path}: parcels need a `parcel_id` column (has {list(parcels.columns)})")
    if parcels["parcel_id"].duplicated().any():
        dupes = parcels.loc[parcels["parcel_id"].duplicated(), "parcel_id"].head(5).tolist()
        raise TilewiseError(f"{path}: parcel_id values repeat, e.g. {dupes}; make them unique")
    parcels = parcels.copy()
    reason = pd.Series("", index=parcels.index, dtype=object)
    empty = parcels.geometry.isna() | parcels.geometry.is_empty
    reason[empty] = "empty geometry"
    repaired = parcels.geometry.copy()
    repaired[~empty] = parcels.geometry[~empty].make_valid()
    # make_valid can turn a self-touching ring into a collection: keep its polygons only
    repaired[~empty] = repaired[~empty].apply(
        lambda g: shapely.union_all(
            [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")] or [shapely.Polygon()]
        )
    )
    parcels["geometry"] = repaired
    flat = (reason == "") & (parcels.geometry.is_empty | (parcels.geometry.area <= 0))
    reason[flat] = "no polygon with area (after make_valid)"
    named = "county_fips" in parcels.columns or {"fipsstate", "fipscounty"} <= set(parcels.columns)
    if "county_fips" in parcels.columns:
        parcels["county_fips"] = parcels["county_fips"].astype(str).str.zfill(5)
    elif named:
        parcels["county_fips"] = parcels["fipsstate"].astype(str).str.zfill(2) + parcels["fipscounty"].astype(
            str
        ).str.zfill(3)
    else:
        usable = parcels[reason == ""]
        points = gpd.GeoDataFrame(geometry=usable.geometry.representative_point(), crs=parcels.crs)
        joined = gpd.sjoin(points, counties.to_crs(parcels.crs), predicate="within", how="left")
        parcels["county_fips"] = joined.groupby(level=0)["county_fips"].first()
    reason[(reason == "") & ~parcels["county_fips"].isin(counties["county_fips"])] = "outside the state's counties"
    if named:  # a parcel elsewhere would get no pixels from its county's tiles: 0 t, yet counted in the acres
        check = (reason == "").to_numpy()
        far = np.zeros(len(parcels), bool)
        far[check] = ~_reach_their_county(parcels[check], counties)
        reason[far] = f"outside the county its FIPS columns name (farther than {COUNTY_TOLERANCE_M:g} m from it)"
    dropped = pd.DataFrame({"parcel_id": parcels["parcel_id"], "reason": reason})[reason != ""]
    if len(dropped):
        log.warning("%s: %d parcel(s) not used: %s", path, len(dropped), dropped["reason"].value_counts().to_dict())
    return parcels[reason == ""], dropped


def _reach_their_county(parcels: gpd.GeoDataFrame, counties: gpd.GeoDataFrame) -> np.ndarray:
    """Per parcel: whether it intersects its `county_fips` county grown by COUNTY_TOLERANCE_M."""
    metric = counties.estimate_utm_crs()
    grown = counties.to_crs(metric).buffer(COUNTY_TOLERANCE_M).to_crs(parcels.crs).values
    shapely.prepare(grown)
    by_fips = dict(zip(counties["county_fips"], grown, strict=True))
    return shapely.intersects(parcels.geometry.values, np.array([by_fips[f] for f in parcels["county_fips"]]))


def catalog_from_template(counties: gpd.GeoDataFrame, template: str, date: str, baseline: str) -> pd.DataFrame:
    """A Sentinel-2 catalog for every tile near the counties, from an href template."""
    tiles = s2_tiles_near(counties.to_crs(4326).union_all())
    return pd.DataFrame(
        [
            {
                "tile": t,
                "date": date,
                "band": b,
                "href": template.format(tile=t, date=date, band=b),
                "processing_baseline": baseline,
            }
            for t in tiles
            for b in (*S2_BANDS_NEEDED, "SCL")
        ]
    )


def select_sentinel2(
    counties: gpd.GeoDataFrame, cat: pd.DataFrame, catalog_dir: Path, date: str | None
) -> pd.DataFrame:
    """Per Sentinel-2 tile the counties' polygons touch: the bands of its latest complete date
    (or of `date`). Relative hrefs are relative to `catalog_dir`."""
    missing = {"tile", "date", "band", "href"} - set(cat.columns)
    if missing:
        raise TilewiseError(f"{catalog_dir}: the Sentinel-2 catalog needs columns {sorted(missing)}")
    lonlat = counties.to_crs(4326)
    rows = []
    for tile, group in cat.groupby("tile"):
        footprint = s2_footprint_lonlat(tile)
        users = lonlat.loc[lonlat.intersects(footprint), "county_fips"].tolist()
        if not users:
            continue
        complete = group.groupby("date")["band"].apply(lambda b: set(S2_BANDS_NEEDED) <= set(b))
        dates = sorted(complete[complete].index)
        if date is not None:
            dates = [d for d in dates if d == date]
        if not dates:
            log.warning(
                "%s: no date with all of %s%s; tile skipped", tile, S2_BANDS_NEEDED, f" on {date}" if date else ""
            )
            continue
        chosen = group[group["date"] == dates[-1]]
        for _, r in chosen.iterrows():
            if r["band"] not in (*S2_BANDS_NEEDED, "SCL"):
                continue
            declared = r.get("boa_add_offset", np.nan)
            offset = boa_offset(r.get("processing_baseline"), None if pd.isna(declared) else float(declared))
            rows.append(
                {
                    "product": "sentinel2",
                    "key": f"{tile}_{r['date']}_{r['band']}",
                    "href": resolve(str(r["href"]), catalog_dir),
                    "tile": tile,
                    "band": r["band"],
                    "date": r["date"],
                    "boa_add_offset_dn": offset,
                    "counties": " ".join(users),
                }
            )
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def select_worldcover(counties: gpd.GeoDataFrame, template: str) -> pd.DataFrame:
    lonlat = counties.to_crs(4326)
    rows = []
    for name in worldcover_tiles(tuple(lonlat.total_bounds)):
        users = lonlat.loc[lonlat.intersects(worldcover_tile_box(name)), "county_fips"].tolist()
        if users:
            rows.append(
                {
                    "product": "worldcover",
                    "key": name,
                    "href": template.format(tile=name),
                    "counties": " ".join(users),
                }
            )
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def select_cdl(counties: gpd.GeoDataFrame, hrefs: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for href in hrefs:
        with rasterio.open(href) as ds:
            box = gpd.GeoSeries([shapely.box(*ds.bounds)], crs=ds.crs)
        users = counties.loc[counties.to_crs(box.crs).intersects(box.iloc[0]), "county_fips"].tolist()
        if users:
            rows.append({"product": "cdl", "key": Path(href).stem, "href": href, "counties": " ".join(users)})
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def sentinel2_catalog(inp: StateInputs, counties: gpd.GeoDataFrame) -> tuple[pd.DataFrame, Path]:
    """The Sentinel-2 catalog table and the folder its relative hrefs are relative to."""
    if inp.sentinel2_template:
        table = catalog_from_template(
            counties, inp.sentinel2_template, inp.sentinel2_date, inp.sentinel2_processing_baseline
        )
        return table, Path(".")
    path = Path(inp.sentinel2_catalog)
    table = pd.read_csv(path, dtype={"tile": str, "date": str, "band": str, "processing_baseline": str})
    return table, path.parent


def index_state(inp: StateInputs, out: Path) -> dict:
    """Write the state's index under `out`."""
    counties = load_counties(Path(inp.counties), inp.state_fips)
    parcels, dropped = assign_parcels(read_parcels(Path(inp.parcels)), counties, Path(inp.parcels))
    catalog, catalog_dir = sentinel2_catalog(inp, counties)
    tiles = pd.concat(
        [
            select_sentinel2(counties, catalog, catalog_dir, inp.sentinel2_date),
            select_worldcover(counties, inp.worldcover_template),
            select_cdl(counties, inp.cdl),
        ],
        ignore_index=True,
    )
    counts = parcels.groupby("county_fips").size()
    counties["parcels"] = counties["county_fips"].map(counts).fillna(0).astype(int)
    counties = counties[counties["parcels"] > 0]
    for product in ("sentinel2", "worldcover", "cdl"):
        counties[f"{product}_files"] = [
            int(tiles.loc[tiles["product"] == product, "counties"].str.split().apply(lambda c, f=f: f in c).sum())
            for f in counties["county_fips"]
        ]
    summary = {
        "counties": len(counties),
        "parcels": int(counts.sum()),
        "parcels_dropped": len(dropped),
        "tiles": len(tiles),
    }
    state_index.write(
        out,
        counties=pd.DataFrame(counties.drop(columns="geometry")),
        tiles=tiles,
        parcels=parcels,
        fia_plots=plot_densities(
            read_fia_table(Path(inp.fia_plot), "PLOT"), read_fia_table(Path(inp.fia_tree), "TREE")
        ),
        dropped=dropped,
        summary=summary,
    )
    log.info("state %s: %s", inp.state_fips, summary)
    return summary
