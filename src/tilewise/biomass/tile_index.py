"""The tile index of one state: its counties, their parcels, and every raster tile they need.

Written once per state (a Snakemake checkpoint): `counties.csv`, `counties.parquet`, `tiles.csv` (one
row per file to read, with the counties that read it and the lon/lat box they cover),
`parcels/{county}.parquet` and `fia_plots.parquet`. Sentinel-2 comes from a CSV catalog, an href
template, or a STAC API search (tilewise.biomass.stac).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

from tilewise.biomass import crop_tables, crops, made_from, stac, state_index
from tilewise.biomass.forest import refuse_plots_outside_the_state, state_plot_densities
from tilewise.biomass.grids import (
    continuous_lon,
    s2_footprint_lonlat,
    s2_tiles_near,
    worldcover_tile_box,
    worldcover_tiles,
    wrap_lon,
)
from tilewise.biomass.indices import boa_offset
from tilewise.biomass.plan import StacSearch, StateInputs
from tilewise.biomass.raster_checks import check_cell_areas
from tilewise.biomass.state_files import clear_earlier_results
from tilewise.biomass.state_index import TILE_COLUMNS
from tilewise.biomass.vectors import read_vector
from tilewise.shared import gdal_vsi  # noqa: F401 (GDAL's settings for remote rasters: CDL hrefs are opened here)
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs
from tilewise.shared.reproject import reproject

log = logging.getLogger(__name__)
S2_BANDS_NEEDED = ("B02", "B03", "B04", "B08")
WINDOW_MARGIN_DEG = 0.01  # a tile is clipped to its counties' and parcels' box plus about a kilometre
# A parcel whose FIPS columns name a county is that county's if it reaches within this distance of it:
# one straddling the line is, and parcel and county layers disagree by tens of metres along shared lines.
COUNTY_TOLERANCE_M = 100.0
_DATE = re.compile(r"^\d{8}$")


def resolve(href: str, base: Path) -> str:
    """Relative paths in a table are relative to the table's folder; URLs stay as they are."""
    if "://" in href or Path(href).is_absolute():
        return href
    return str((base / href).resolve())


def load_counties(source: str | dict, state_fips: str) -> gpd.GeoDataFrame:
    """The state's counties from a county layer of any extent (TIGER's national file, say)."""
    counties = read_vector(source, "counties")
    codes = county_codes(counties, source)
    counties = counties[codes.str[:2] == state_fips].copy()
    if counties.empty:
        raise TilewiseError(f"{source}: no county has STATEFP {state_fips!r}; check the state's fips in the config")
    counties["county_fips"] = codes[counties.index]
    counties["geometry"] = counties.geometry.make_valid()
    counties["name"] = counties["NAME"] if "NAME" in counties else counties["county_fips"]
    # a county stored as several features (its islands as single parts) is one county, counted once
    counties = counties[["county_fips", "name", "geometry"]].dissolve(by="county_fips", aggfunc="first")
    return counties.reset_index()[["county_fips", "name", "geometry"]].sort_values("county_fips")


def county_codes(counties: gpd.GeoDataFrame, source) -> pd.Series:
    """Each county's 5-digit FIPS from STATEFP + COUNTYFP (TIGER, cartographic boundary files) or GEOID,
    as text or as numbers (1 or 1.0 → 001). A code of another width (COUNTYFP holding the 5-digit GEOID)
    or a GEOID that is not STATEFP + COUNTYFP is refused: it would name every county wrong, quietly."""
    columns = set(counties.columns)
    parts = {"STATEFP", "COUNTYFP"} <= columns
    if not parts and "GEOID" not in columns:
        raise TilewiseError(
            f"{source}: county file needs columns STATEFP and COUNTYFP, or GEOID (has {list(counties.columns)})"
        )
    width = {"STATEFP": (2, "state"), "COUNTYFP": (3, "county"), "GEOID": (5, "state + county")}
    text = {}
    for column in [c for c in ("STATEFP", "COUNTYFP", "GEOID") if c in columns]:
        digits, what = width[column]
        raw = counties[column].astype("string").str.strip()
        values = _code_text(counties[column].astype(object).where(raw.notna(), ""), digits)
        bad = ~values.str.fullmatch(rf"[0-9]{{{digits}}}") | (raw.fillna("") == "").to_numpy()
        if bad.any():
            example = counties[column][bad].iloc[0]
            raise TilewiseError(
                f"{source}: {column} values are not {digits}-digit {what} codes, e.g. {example!r} "
                f"({int(bad.sum())} of {len(values)}); give the Census FIPS codes (STATEFP 2 digits, COUNTYFP 3, "
                "GEOID 5) as TIGER's county layer has them"
            )
        text[column] = values
    if not parts:
        return text["GEOID"]
    codes = text["STATEFP"] + text["COUNTYFP"]
    if "GEOID" in text and (differ := codes != text["GEOID"]).any():
        raise TilewiseError(
            f"{source}: GEOID and STATEFP + COUNTYFP differ, e.g. GEOID {text['GEOID'][differ].iloc[0]!r} vs "
            f"{codes[differ].iloc[0]!r} ({int(differ.sum())} of {len(codes)}); correct the layer, or keep one of them"
        )
    return codes


def assign_parcels(
    parcels: gpd.GeoDataFrame, counties: gpd.GeoDataFrame, path: str | dict
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Each parcel's 5-digit county FIPS: from its own columns when it has them (in its row: empty ones
    name none), else the county that contains a point inside it. Invalid geometries are repaired keeping
    the land drawn (make_valid, structure method); parcels that cannot be used are returned apart with
    the reason (empty, not a polygon, no area, outside the counties, or farther than COUNTY_TOLERANCE_M
    from the county their FIPS columns name: its tiles would not cover it, so it would get 0 t and still
    count in the acres)."""
    if "parcel_id" not in parcels.columns:
        raise TilewiseError(f"{path}: parcels need a `parcel_id` column (has {list(parcels.columns)})")
    check_parcel_ids(parcels["parcel_id"], path)
    if parcels["parcel_id"].duplicated().any():
        dupes = parcels.loc[parcels["parcel_id"].duplicated(), "parcel_id"].head(5).tolist()
        raise TilewiseError(f"{path}: parcel_id values repeat, e.g. {dupes}; make them unique")
    parcels = parcels.copy()
    reason = pd.Series("", index=parcels.index, dtype=object)
    empty = parcels.geometry.isna() | parcels.geometry.is_empty
    reason[empty] = "empty geometry"
    repaired = parcels.geometry.copy()
    # GEOS's "structure" repair keeps the land drawn: overlapping parts of a multipolygon are unioned
    # (the default "linework" repair made their overlap a hole) and a hole is cut from its shell only
    # (linework made the part of a hole outside its shell land); a bowtie is its two triangles either way
    repaired[~empty] = shapely.make_valid(parcels.geometry[~empty].values, method="structure")
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
    # a row whose FIPS columns are empty (null, blank) names no county: it is placed by its geometry, as
    # a file without the columns is (it was dropped as naming "no county of the state", its land lost)
    unnamed, fips = pd.Series(True, index=parcels.index), pd.Series(None, index=parcels.index, dtype=object)
    raw = fips
    if "county_fips" in parcels.columns:
        unnamed, fips = _blank(parcels["county_fips"]), _code_text(parcels["county_fips"], 5)
        raw = parcels["county_fips"]
    elif named:
        unnamed = _blank(parcels["fipsstate"]) | _blank(parcels["fipscounty"])
        fips = _code_text(parcels["fipsstate"], 2) + _code_text(parcels["fipscounty"], 3)
        raw = parcels["fipsstate"].astype(str) + " " + parcels["fipscounty"].astype(str)
    _refuse_malformed_fips(fips[~unnamed], raw[~unnamed], path)
    fips, place = fips.where(~unnamed), (reason == "") & unnamed
    if place.any():
        fips[place] = _county_of_inside_point(parcels[place].geometry, counties.to_crs(parcels.crs))
    parcels["county_fips"] = fips
    elsewhere = (reason == "") & ~parcels["county_fips"].isin(counties["county_fips"])
    _refuse_other_vintage(parcels["county_fips"][elsewhere & ~unnamed], counties, path)
    reason[elsewhere & ~unnamed] = "its FIPS columns name no county of the state"
    reason[elsewhere & unnamed] = "outside the state's counties"
    far = np.zeros(len(parcels), bool)
    if named:
        check = ((reason == "") & ~unnamed).to_numpy()
        far[check] = ~_reach_their_county(parcels[check], counties)
        reason[far] = f"outside the county its FIPS columns name (farther than {COUNTY_TOLERANCE_M:g} m from it)"
    if (reason != "").all() and (elsewhere.any() or far.any()):  # not one placed: the file or its columns are wrong
        _none_placed(parcels[elsewhere.to_numpy() | far], counties, path, named)
    if (reason != "").all():  # not one polygon (address points, centre lines): the state ran on nothing
        raise TilewiseError(
            f"{path}: no parcel can be used ({len(parcels)} row(s): {reason.value_counts().to_dict()}); a parcel "
            "file holds the parcels' polygons (not address points or lines): point the config at the polygon layer"
        )
    dropped = pd.DataFrame({"parcel_id": parcels["parcel_id"], "reason": reason})[reason != ""]
    if len(dropped):
        log.warning("%s: %d parcel(s) not used: %s", path, len(dropped), dropped["reason"].value_counts().to_dict())
    return parcels[reason == ""], dropped


FLOAT_EXACT_MAX = 2**53  # above it a float64 does not hold every integer: an id read as a float lost digits
_SCIENTIFIC = r"[+-]?[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+"  # a number as text in scientific notation


def check_parcel_ids(ids: pd.Series, path) -> None:
    """Every parcel has an id, and the ids are the file's: a missing or blank id is a result row no one can
    join back; ids written as text in scientific notation (1.70311E+13), or held as floats (a GeoPackage
    integer column with a null reads as float64, a shapefile number of 19+ digits is a Real field) beyond
    2**53, have lost their last digits on the way."""
    text = ids.astype("string").str.strip()
    missing = np.flatnonzero(ids.isna().to_numpy() | (text == "").fillna(True).to_numpy())
    if len(missing):
        raise TilewiseError(
            f"{path}: {len(missing)} parcel(s) without a parcel_id (rows {missing[:5].tolist()}); give every parcel "
            "its id, or drop those rows (a null in an integer column also makes GDAL read the whole column as "
            "floats, and ids past 2**53 then lose digits)"
        )
    if not pd.api.types.is_numeric_dtype(ids.dtype):
        # text in scientific notation (1.70311E+13): a spreadsheet wrote the number so, its last digits gone
        sci = np.flatnonzero(text.str.fullmatch(_SCIENTIFIC).fillna(False).to_numpy())
        if len(sci):
            raise TilewiseError(
                f"{path}: {len(sci)} parcel(s) with a parcel_id in scientific notation (rows {sci[:5].tolist()}, e.g. "
                f"{text.iloc[sci[0]]!r}): a spreadsheet's export wrote those numbers so, their last digits gone; take "
                "the ids from the parcel source as text (format the column as text before exporting)"
            )
    if pd.api.types.is_float_dtype(ids.dtype):
        values = ids.to_numpy(np.float64)
        beyond = values[np.abs(values) > FLOAT_EXACT_MAX]
        if len(beyond):
            raise TilewiseError(
                f"{path}: parcel_id values are floating-point numbers beyond 2**53 (e.g. {float(beyond[0])!r}), which "
                "cannot hold every digit: the ids are not the ones the source had; store parcel_id as text (or "
                "a 64-bit integer field without nulls) and point the config at that file"
            )


# a point inside a parcel that lies on a county line moves this share of the parcel's size, at 1 radian
# from east (no county line of a survey grid runs so), into the county on that side
ON_LINE_NUDGE = 1e-6


def _county_of_inside_point(geoms: gpd.GeoSeries, counties: gpd.GeoDataFrame) -> pd.Series:
    """The FIPS of the county that holds a point inside each parcel (GEOS's point on surface). A point on
    the line between two counties (a parcel split down its middle) is within neither: it is moved a
    hair, the same way in every state's run, so that exactly one county, of one state, takes the parcel."""
    points = gpd.GeoSeries(geoms.representative_point(), crs=geoms.crs)
    if geoms.crs.is_geographic:  # longitudes written 0…360° (Aleutian parcels at 180.5°): the counties' are −180…180
        points = gpd.GeoSeries(shapely.points(wrap_lon(points.x), points.y), index=points.index, crs=geoms.crs)
    fips = _county_of(points, counties, "within")
    on_line = fips.isna() & _county_of(points, counties, "intersects").notna()
    if on_line.any():
        moved = points[on_line]
        x0, y0, x1, y1 = geoms[on_line].bounds.to_numpy().T
        step = ON_LINE_NUDGE * np.maximum(x1 - x0, y1 - y0)
        nudged = gpd.GeoSeries(
            shapely.points(moved.x + step * np.cos(1.0), moved.y + step * np.sin(1.0)), index=moved.index, crs=geoms.crs
        )
        fips[on_line] = _county_of(nudged, counties, "within")
    return fips


def _county_of(points: gpd.GeoSeries, counties: gpd.GeoDataFrame, predicate: str) -> pd.Series:
    """Per point, the FIPS of the first county it is `predicate` to (NaN: none)."""
    joined = gpd.sjoin(gpd.GeoDataFrame(geometry=points), counties, predicate=predicate, how="left")
    return joined.groupby(level=0)["county_fips"].first().reindex(points.index)


# a share of the smaller parcel below this is a digitizing sliver between neighbours, not an overlap
OVERLAP_SHARE_MIN = 0.01


def overlapping_parcels(parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    """Pairs of parcels that cover the same land (stacked condominium units, a lot inside its parcel,
    two layers merged): each parcel's own numbers are right, but a county's totals count that land
    twice. `share_of_smaller`: their common area over the smaller one's."""
    geoms = parcels.geometry.to_numpy()
    i, j = shapely.STRtree(geoms).query(geoms)  # pairs whose boxes meet
    i, j = i[i < j], j[i < j]
    smaller = np.minimum(shapely.area(geoms[i]), shapely.area(geoms[j]))
    # their common area is at most their boxes': pairs whose boxes share too little (neighbours along
    # an edge) are settled without a polygon intersection
    b = shapely.bounds(geoms)
    box_common = np.clip(np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]), 0, None) * np.clip(
        np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]), 0, None
    )
    maybe = box_common >= OVERLAP_SHARE_MIN * smaller
    i, j, smaller = i[maybe], j[maybe], smaller[maybe]
    share = shapely.area(shapely.intersection(geoms[i], geoms[j])) / smaller
    keep = share >= OVERLAP_SHARE_MIN
    ids, fips = parcels["parcel_id"].to_numpy(), parcels["county_fips"].to_numpy()
    return pd.DataFrame(
        {
            "parcel_id": ids[i[keep]],
            "other_parcel_id": ids[j[keep]],
            "county_fips": fips[i[keep]],
            "share_of_smaller": np.round(share[keep], 6),
        }
    )


def _refuse_malformed_fips(codes: pd.Series, raw: pd.Series, path) -> None:
    """Parcel FIPS codes (as read: `raw`) that are no 5-digit state + county code: a county's 3-digit code
    alone (003, 3) reads as 00003, a county of no state (no state's FIPS is 00), and its parcels were
    dropped with a warning; 6 digits or more name no county either."""
    bad = np.flatnonzero(~codes.str.fullmatch(r"(?!00)[0-9]{5}").fillna(False).to_numpy())
    if len(bad):
        raise TilewiseError(
            f"{path}: {len(bad)} parcel(s) whose FIPS columns are no 5-digit state + county code (rows "
            f"{codes.index[bad[:5]].tolist()}, e.g. {str(raw.iloc[bad[0]])!r} read as {codes.iloc[bad[0]]!r}); write "
            "county_fips as the state's 2 digits and the county's 3 (17031), or give fipsstate and fipscounty"
        )


def _refuse_other_vintage(codes: pd.Series, counties: gpd.GeoDataFrame, path) -> None:
    """Parcel FIPS codes of this state that name no county of the county layer: the layer is of another year
    than the codes (Connecticut's planning regions 09110… since 2022, Valdez-Cordova 02261 split in 2019), and
    every parcel of that county was dropped, its land lost with a warning. Another state's codes stay dropped."""
    state = counties["county_fips"].iloc[0][:2]
    unknown = sorted({c for c in codes.dropna() if str(c)[:2] == state})
    if unknown:
        raise TilewiseError(
            f"{path}: {int(codes.isin(unknown).sum())} parcel(s) name counties of state {state} that the county layer "
            f"does not have ({', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}; it has "
            f"{', '.join(counties['county_fips'].head(5))}…): the county layer is of another year than the parcels' "
            "codes; give the county layer of the parcels' year (TIGER of that year), or drop the parcels' FIPS columns "
            "so that each is placed by its geometry"
        )


def _none_placed(unplaced: gpd.GeoDataFrame, counties: gpd.GeoDataFrame, path, named: bool) -> None:
    how = "FIPS columns (county_fips, or fipsstate + fipscounty)" if named else "geometries"
    codes = f" (they name {sorted(set(unplaced['county_fips'].dropna()))[:3]}…)" if named else ""
    raise TilewiseError(
        f"{path}: no parcel's {how} place it in one of the state's {len(counties)} counties "
        f"({', '.join(counties['county_fips'].head(3))}, …){codes}; is it this state's parcel file, with the CRS "
        "its coordinates are in and 5-digit state+county FIPS codes?"
    )


def _blank(codes: pd.Series) -> pd.Series:
    return codes.isna() | (codes.astype("string").str.strip() == "").fillna(True)


def _code_text(codes: pd.Series, width: int) -> pd.Series:
    """FIPS codes as zero-padded text, also when read as numbers (17001.0, the float of a column with gaps)."""
    numbers = pd.to_numeric(codes, errors="coerce")
    whole = np.isfinite(numbers) & (numbers == numbers.round())
    text = codes.astype(str).str.strip()
    text[whole] = numbers[whole].astype("int64").astype(str)
    return text.str.zfill(width)


def _reach_their_county(parcels: gpd.GeoDataFrame, counties: gpd.GeoDataFrame) -> np.ndarray:
    """Per parcel: whether it lies within COUNTY_TOLERANCE_M of its `county_fips` county. The few that do
    not touch it are measured in metres, in an equidistant projection centred on their county (right
    across the antimeridian too, where one UTM zone for a whole state is not)."""
    shapes = counties.set_index("county_fips").geometry
    native = shapes.to_crs(parcels.crs)
    shapely.prepare(native.values)
    own = native.reindex(parcels["county_fips"]).values
    near = shapely.intersects(parcels.geometry.values, own)
    centres = shapes.to_crs(4326).representative_point()
    for fips, rows in pd.Series(np.flatnonzero(~near)).groupby(parcels["county_fips"].to_numpy()[~near]):
        lon, lat = centres[fips].x, centres[fips].y
        local = f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs"
        county = shapes.loc[[fips]].to_crs(local).iloc[0]
        them = parcels.geometry.iloc[rows.to_numpy()].to_crs(local).values
        near[rows.to_numpy()] = shapely.distance(them, county) <= COUNTY_TOLERANCE_M
    return near


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
                "where": "the config's sentinel2_processing_baseline",
            }
            for t in tiles
            for b in (*S2_BANDS_NEEDED, "SCL")
        ]
    )


def select_sentinel2(
    counties: gpd.GeoDataFrame, cat: pd.DataFrame, catalog_dir: Path, date: str | None, needed: set[str] | None = None
) -> pd.DataFrame:
    """Per Sentinel-2 tile the counties' polygons touch: the bands of its latest complete date
    (or of `date`). Relative hrefs are relative to `catalog_dir`. Every county of `needed` (default:
    all; the index passes those with parcels) must be reached by a tile."""
    missing = {"tile", "date", "band", "href"} - set(cat.columns)
    if missing:
        raise TilewiseError(f"{catalog_dir}: the Sentinel-2 catalog needs columns {sorted(missing)}")
    _check_dates(cat, catalog_dir)
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
        _refuse_two_products(chosen, catalog_dir)
        _refuse_files_named_otherwise(chosen, catalog_dir)
        for _, r in chosen.iterrows():
            if r["band"] not in (*S2_BANDS_NEEDED, "SCL"):
                continue
            offset = boa_offset(r.get("processing_baseline"), r.get("boa_add_offset"), _catalog_place(r, catalog_dir))
            sign = r.get("sign", "none")
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
                    "sign": "none" if pd.isna(sign) else sign,
                }
            )
    served = {c for r in rows for c in r["counties"].split()}
    unserved = [c for c in counties["county_fips"] if c not in served and (needed is None or c in needed)]
    if unserved:  # its parcels would get no index and a clear fraction of 0, which reads as a cloudy summer
        raise TilewiseError(
            f"no Sentinel-2 tile with every band{f' on {date}' if date else ''} in the catalog reaches counties "
            f"{', '.join(unserved[:10])}{' …' if len(unserved) > 10 else ''} (the warnings above say which tiles "
            "were skipped): add those tiles to the catalog, or widen the STAC search's datetime or max_cloud_cover"
        )
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def _check_dates(cat: pd.DataFrame, catalog_dir: Path) -> None:
    """Dates are compared to find the latest: each must be a real day written YYYYMMDD (as the config's
    sentinel2_date and the product name write it); `2024-08-15` sorts before `20240615` as text."""
    for _, r in cat.iterrows():
        text = str(r["date"])
        try:
            ok = bool(_DATE.match(text)) and datetime.strptime(text, "%Y%m%d") is not None
        except ValueError:
            ok = False
        if not ok:
            raise TilewiseError(
                f"{_catalog_place(r, catalog_dir)}: date {r['date']!r} is not a day written YYYYMMDD "
                "(20240815, as in the product's name); write every date of the catalog so"
            )


def _refuse_two_products(chosen: pd.DataFrame, catalog_dir: Path) -> None:
    """One tile, date and band from two rows (a reprocessed product beside the original, two granules
    of a datastrip): which pixels and which offset belong together cannot be told. One file for two
    bands (B08's row pointing at B04's file) is refused too: NDVI would be 0 everywhere."""
    same_file = chosen[chosen.duplicated("href", keep=False)]
    if not same_file.empty:
        places = "; ".join(_catalog_place(r, catalog_dir) for _, r in same_file.iterrows())
        raise TilewiseError(f"Sentinel-2 catalog: one file for two bands: {places}; give each band its own file")
    twice = chosen[chosen.duplicated("band", keep=False)]
    if not twice.empty:
        places = "; ".join(_catalog_place(r, catalog_dir) for _, r in twice.iterrows())
        raise TilewiseError(
            f"Sentinel-2 catalog: two products for one tile, date and band: {places}; keep one product's rows "
            "(the latest processing baseline) and drop the other's"
        )


# what a Sentinel-2 file's name says of itself: T16TCK_20240815T163901_B04_10m.jp2 (ESA, the Planetary
# Computer), B04.tif (Earth Search, whose folder holds tile and date)
_NAMED_BAND = re.compile(r"(?<![A-Za-z0-9])(B0[1-9]|B8A|B1[0-2]|SCL)(?![A-Za-z0-9])", re.IGNORECASE)
_NAMED_TILE = re.compile(r"(?<![A-Za-z0-9])T(\d{2}[C-X][A-Z]{2})(?![A-Za-z0-9])")
_NAMED_DATE = re.compile(r"(?<![0-9])(20\d{6})(?=T\d{6}|[^0-9A-Za-z]|$)")
# ESA's Level-1C product (S2A_MSIL1C_…, granule L1C_T16TCK_…), AWS's sentinel-s2-l1c bucket, Earth Search's
# sentinel-2-l1c collection: anywhere in the href, folders included
_NAMED_L1C = re.compile(r"(?<![A-Za-z0-9])(?:MSI)?L1C(?![A-Za-z0-9])|-L1C(?![A-Za-z0-9])", re.IGNORECASE)


def _refuse_files_named_otherwise(chosen: pd.DataFrame, catalog_dir: Path) -> None:
    """A row's file whose name says another band, tile or date than the row (B03 and B04 swapped: NDVI of
    green; the SCL of another day: that day's clouds masked) is refused, naming the row and the file.
    Only the file name is read for those (a product folder's name holds its processing time too); the
    whole href for the level: an L1C product's bands (top of atmosphere) are not L2A's."""
    for _, r in chosen.iterrows():
        if _NAMED_L1C.search(str(r["href"]).split("?")[0]):
            raise TilewiseError(
                f"{_catalog_place(r, catalog_dir)}: its file {r['href']} is of Sentinel-2's Level-1C product (top of "
                "atmosphere), not L2A: its DN are no surface reflectance and the indices would be off everywhere; "
                "give the L2A product's bands (S2?_MSIL2A_…, collection sentinel-2-l2a)"
            )
        name = str(r["href"]).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        said = {
            "band": ({m.upper() for m in _NAMED_BAND.findall(name)}, str(r["band"]).upper()),
            "tile": (set(_NAMED_TILE.findall(name)), str(r["tile"])),
            "date": (set(_NAMED_DATE.findall(name)), str(r["date"])),
        }
        for what, (named, row) in said.items():
            if named and row not in named:
                raise TilewiseError(
                    f"{_catalog_place(r, catalog_dir)}: its file {name} is named for {what} "
                    f"{', '.join(sorted(named))}, not {row}; point the row at the {what} it names, or correct the "
                    "row (a band's file of another band, day or tile is combined with the others without a word)"
                )


def _catalog_place(r: pd.Series, catalog_dir: Path) -> str:
    """Where a catalog row comes from, for messages: its file and line, STAC item or config key."""
    place = r.get("where")
    if not isinstance(place, str) or not place:
        place = f"the Sentinel-2 catalog in {catalog_dir}"
    return f"{place} (tile {r['tile']} {r['date']} band {r['band']})"


def select_worldcover(counties: gpd.GeoDataFrame, template: str) -> pd.DataFrame:
    lonlat = counties.to_crs(4326)
    rows = []
    # the box in continuous longitudes: a county across the antimeridian needs the tiles of 179°…181°
    for name in worldcover_tiles(continuous_lon(lonlat.union_all()).bounds):
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


def select_cdl(counties: gpd.GeoDataFrame, hrefs: tuple[str, ...], needed: set[str] | None = None) -> pd.DataFrame:
    """The CDL files the counties' polygons touch, in the config's order: the order in which a county
    counts them where they overlap (the first with data at a place counts it, docs/biomass-model.md §1).
    Two files of one name are refused (a tile is named by its file); files whose boxes overlap over a
    county are logged, naming both (a national file and a state clip, or neighbouring clips). Every
    county of `needed` (default: all; the index passes those with parcels) must be reached by one."""
    rows, boxes = [], []
    for href in hrefs:
        key = Path(href).stem
        same = [r["href"] for r in rows if r["key"] == key]
        if same:
            raise TilewiseError(
                f"CDL files {same[0]} and {href} have one name, {key!r} (the tile's name): list a file once, and "
                "rename one of two different files"
            )
        with rasterio.open(href) as ds:
            check_cell_areas(ds, href)  # here, before any county: its acres would be wrong
            box = gpd.GeoSeries([shapely.box(*ds.bounds)], crs=ds.crs)
        users = counties.loc[counties.to_crs(box.crs).intersects(box.iloc[0]), "county_fips"].tolist()
        if users:
            rows.append({"product": "cdl", "key": key, "href": href, "counties": " ".join(users)})
            boxes.append((href, key, box.crs, box.iloc[0]))
    _log_overlapping_cdl(counties, boxes)
    served = {c for r in rows for c in r["counties"].split()}
    unserved = [c for c in counties["county_fips"] if c not in served and (needed is None or c in needed)]
    if unserved:  # its crops would be 0 acres, which reads as a real zero
        raise TilewiseError(
            f"no CDL file of the config ({', '.join(hrefs)}) reaches counties {', '.join(unserved[:10])}"
            f"{' …' if len(unserved) > 10 else ''}: list the CDL that covers the state (the national file or the "
            "state's clip from CroplandCROS) under the state's cdl"
        )
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def _log_overlapping_cdl(counties: gpd.GeoDataFrame, boxes: list[tuple]) -> None:
    """A warning per pair of CDL files whose boxes overlap over some county (their data may not: two
    states' clips with nodata margins)."""
    for j, (href, _, crs, box) in enumerate(boxes):
        for earlier, _, other_crs, other in boxes[:j]:
            if other_crs != crs:
                other = to_crs(other, other_crs, crs, densify=(other.bounds[2] - other.bounds[0]) / 20)
            both = box.intersection(other)
            if both.area <= 0:
                continue
            over = counties.loc[counties.to_crs(crs).intersects(both), "county_fips"].tolist()
            if over:
                log.warning(
                    "CDL files %s and %s overlap over county %s: where both have data a county counts the "
                    "first listed (%s) and not the other; list one file per place if they are not one product "
                    "and year",
                    earlier,
                    href,
                    " ".join(over),
                    earlier,
                )


def catalog_from_stac(counties: gpd.GeoDataFrame, search: StacSearch) -> pd.DataFrame:
    """A Sentinel-2 catalog of the clearest item per MGRS tile near the counties, from a STAC API."""
    lonlat = counties.to_crs(4326)
    tiles = s2_tiles_near(lonlat.union_all())
    bbox = [float(v) for v in lonlat.total_bounds]
    picks = stac.pick_items(search.stac, search.collection, search.datetime, search.max_cloud_cover, tiles, bbox=bbox)
    missing = [t for t in tiles if t not in picks]
    if missing:
        log.warning(
            "%s: no %s item with eo:cloud_cover <= %s and bands %s in %s for tile(s) %s; parcels there use the "
            "neighbouring tiles (MGRS tiles overlap)",
            search.stac,
            search.collection,
            search.max_cloud_cover,
            ", ".join(stac.BANDS),
            search.datetime,
            " ".join(missing),
        )
    for p in picks.values():
        log.info(
            "tile %s: %s (%.1f %% cloud, BOA offset %d DN)",
            p.tile,
            p.item_id,
            p.cloud_cover_percent,
            p.boa_add_offset_dn,
        )
    columns = ["tile", "date", "band", "href", "processing_baseline", "boa_add_offset", "sign", "item_id"]
    table = pd.DataFrame(stac.catalog_rows(picks, search.sign), columns=columns)
    return table.assign(where=[f"{search.stac} item {i}" for i in table["item_id"]])


def sentinel2_catalog(inp: StateInputs, counties: gpd.GeoDataFrame) -> tuple[pd.DataFrame, Path]:
    """The Sentinel-2 catalog table and the folder its relative hrefs are relative to."""
    search = inp.stac()
    if search is not None:
        return catalog_from_stac(counties, search), Path(".")
    if inp.sentinel2_template:
        table = catalog_from_template(
            counties, inp.sentinel2_template, inp.sentinel2_date, inp.sentinel2_processing_baseline
        )
        return table, Path(".")
    path = Path(inp.sentinel2_catalog)
    text = {"tile": str, "date": str, "band": str, "processing_baseline": str}
    table = pd.read_csv(path, dtype=text, skip_blank_lines=False)
    table["where"] = [f"{path}:{i + 2}" for i in table.index]  # its line: blank lines kept, after the header
    return table.dropna(how="all", subset=table.columns[:-1]), path.parent


def county_reach(counties: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The counties with each one's polygon joined by its parcels that reach past it: the land its job reads.
    A parcel is its county's by a point inside it or by its FIPS columns, and may run on past the county's
    edge into a tile (WorldCover's 3° square, a UTM zone's Sentinel-2 tile, a CDL clip) that the polygon
    does not touch: chosen by the polygon alone, that tile was not read and the parcel's part there had
    no data (a tree-covered fifth of a parcel counted no forest). Parcels go in whole, through lon/lat
    across ±180° (a parcel written in 0…360° longitudes joins the county's parts at +179° and −179°)."""
    native = counties.set_index("county_fips").geometry.to_crs(parcels.crs)
    shapely.prepare(native.values)
    own = native.reindex(parcels["county_fips"]).values
    geoms = parcels.geometry.values
    if parcels.crs.is_geographic:  # written in 0…360° (Hawaii at 204.5°): each moved by whole turns into −180…180
        xy, at = shapely.get_coordinates(geoms, return_index=True)
        turns = np.round(shapely.get_x(shapely.centroid(geoms)) / 360)
        xy[:, 0] -= 360 * turns[at]
        geoms = shapely.set_coordinates(geoms.copy(), xy)
    past = np.flatnonzero(~shapely.covered_by(geoms, own))
    reach = counties.copy()
    if not len(past):
        return reach
    src, dst, geoms = parcels.crs, counties.crs, geoms[past]
    beyond = to_crs(geoms, src, dst)
    if dst.is_geographic:  # vertex by vertex, one across ±180° or written past it is a band around the globe
        west, _, east, _ = shapely.bounds(beyond).T
        odd = np.flatnonzero((east - west > 180) | (west < -180) | (east > 180))
        beyond[odd] = [reproject(g, src, dst) for g in geoms[odd]]
    beyond = pd.Series(beyond, dtype=object)
    joined = beyond.groupby(parcels["county_fips"].to_numpy()[past]).agg(lambda g: shapely.union_all(list(g)))
    reach["geometry"] = [
        shapely.union_all([geom, joined[fips]]) if fips in joined.index else geom
        for fips, geom in zip(reach["county_fips"], reach.geometry, strict=True)
    ]
    return reach


def county_boxes_lonlat(counties: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> dict[str, tuple]:
    """Per county, the lon/lat box of its polygon and of its parcels (a parcel may reach past its county)."""
    boxes = {}
    lonlat_parcels = parcels.to_crs(4326)
    for fips, geom in zip(counties["county_fips"], counties.to_crs(4326).geometry, strict=True):
        own = lonlat_parcels[lonlat_parcels["county_fips"] == fips]
        b = [geom.bounds] + ([tuple(own.total_bounds)] if len(own) else [])
        boxes[fips] = (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))
    return boxes


def window_text(boxes: dict[str, tuple], readers: list[str]) -> str:
    """`west south east north` around the readers' boxes, with a margin (tiles.window_of reads it)."""
    b = [boxes[c] for c in readers if c in boxes]
    if not b:
        return ""
    m = WINDOW_MARGIN_DEG
    west, south = min(x[0] for x in b) - m, min(x[1] for x in b) - m
    east, north = max(x[2] for x in b) + m, max(x[3] for x in b) + m
    return f"{west:.6f} {south:.6f} {east:.6f} {north:.6f}"


def index_state(
    inp: StateInputs, out: Path, fia_missing: str, national_yields: str | None, config: dict[str, str] | None = None
) -> dict:
    """Write the state's index under `out`; `national_yields` None: the national table shipped with tilewise.
    The results of an earlier index go first (tilewise.biomass.state_files). `config`: the digests of the
    config that shapes the state (made_from.config_digests), recorded with the fingerprints of the files
    read, taken before they are read (made_from.json; planning compares it with the files of now)."""
    inputs_before = made_from.stamps(made_from.input_files(inp.local_files(), national_yields))
    for path in clear_earlier_results(out):
        log.info("removed %s: a result of the state's earlier inputs", path)
    crops.check_cdl_year(inp.cdl, inp.cdl_year)
    counties = load_counties(inp.counties, inp.state_fips)
    state_counties = counties  # all of them: a FIA plot of a county without parcels still counts
    parcels, dropped = assign_parcels(read_vector(inp.parcels, "parcels"), counties, inp.parcels)
    overlaps = overlapping_parcels(parcels)
    if len(overlaps):
        log.warning(
            "%s: %d pair(s) of parcels cover the same land (listed in %s): each parcel's numbers are its own, "
            "but a county's totals count that land once per parcel",
            inp.parcels,
            len(overlaps),
            out / state_index.OVERLAPS,
        )
    reach = county_reach(counties, parcels)  # the tiles of a county are those its polygon or parcels touch
    catalog, catalog_dir = sentinel2_catalog(inp, reach)
    tiles = pd.concat(
        [
            select_sentinel2(reach, catalog, catalog_dir, inp.sentinel2_date, needed=set(parcels["county_fips"])),
            select_worldcover(reach, inp.worldcover_template),
            select_cdl(reach, inp.cdl, needed=set(parcels["county_fips"])),
        ],
        ignore_index=True,
    )
    counts = parcels.groupby("county_fips").size()
    counties["parcels"] = counties["county_fips"].map(counts).fillna(0).astype(int)
    counties = counties[counties["parcels"] > 0]
    # a county without parcels runs no job: it reads no tile (a tile only it read is not needed)
    with_parcels = set(counties["county_fips"])
    tiles["counties"] = [" ".join(c for c in readers.split() if c in with_parcels) for readers in tiles["counties"]]
    tiles = tiles[tiles["counties"] != ""].reset_index(drop=True)
    boxes = county_boxes_lonlat(counties, parcels)
    tiles["window_lonlat"] = [window_text(boxes, c.split()) for c in tiles["counties"]]
    tiles["sign"] = tiles["sign"].fillna("none")
    for product in ("sentinel2", "worldcover", "cdl"):
        counties[f"{product}_files"] = [
            int(tiles.loc[tiles["product"] == product, "counties"].str.split().apply(lambda c, f=f: f in c).sum())
            for f in counties["county_fips"]
        ]
    summary = {
        "counties": len(counties),
        "parcels": int(counts.sum()),
        "parcels_dropped": len(dropped),
        "parcel_pairs_overlapping": len(overlaps),
        "tiles": len(tiles),
    }
    fia = state_plot_densities(inp.fia_plot, inp.fia_cond, inp.fia_tree, fia_missing, inp.state_fips)
    refuse_plots_outside_the_state(fia[0], state_counties, inp.fia_plot)
    national = national_yields or str(crop_tables.NATIONAL_YIELDS)
    yields = crops.yields_table(inp.nass_yields, national, inp.state_fips, inp.cdl_year)
    local_tiles = [h for h in dict.fromkeys(tiles["href"]) if "://" not in h and h not in inputs_before]
    tiles_before = made_from.stamps(made_from.with_sidecars(local_tiles))  # before convert_tile reads them
    state_index.write(
        out,
        counties=counties,
        tiles=tiles,
        parcels=parcels,
        fia=fia,
        yields=(inp.cdl_year, yields, [f for f in (inp.nass_yields, national) if f]),
        dropped=dropped,
        overlaps=overlaps,
        summary=summary,
    )
    made_from.write(out, inputs_before, tiles_before, config or {})
    log.info("state %s: %s", inp.state_fips, summary)
    return summary
