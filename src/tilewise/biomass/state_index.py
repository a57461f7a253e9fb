"""The state index folder (`results/states/{state}/index/`): the one module that writes and reads it.

    index.json              format version and counts
    counties.csv            county_fips, name, parcels, {product}_files
    county_outlines.parquet county_fips, geometry (GeoParquet; the map draws them)
    tiles.csv               one row per tile file to convert: product, key, href, tile, band, date,
                            boa_add_offset_dn, counties (space-separated FIPS that read it)
    parcels/{county}.parquet  parcel_id, county_fips, geometry (GeoParquet)
    fia_plots.parquet       per sampled FIA plot location: LAT, LON, forest share, densities (forest.plot_densities)
    fia_excluded_plots.csv  CN, problem: plots left out for missing values (`fia_missing: exclude_plot`)
    crop_yields.csv         the crop year's NASS yields, state and national (crops.YIELD_COLUMNS)
    dropped_parcels.csv     parcel_id, reason

index.json also holds the FIA counts (what was left out and why) and the crop year with its yield files.

The CSV readers use only the csv module: Snakemake calls them while it builds the DAG.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tilewise.shared.errors import TilewiseError

VERSION = 2
TILE_COLUMNS = ["product", "key", "href", "tile", "band", "date", "boa_add_offset_dn", "counties"]


def write(out: Path, counties, tiles, parcels, fia, yields, dropped, summary: dict) -> None:
    """Write every file of the index under `out`: `counties` a GeoDataFrame, `fia` the plots, counts
    and excluded plots of forest.plot_densities, `yields` (crop year, yields table, files)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "parcels").mkdir(exist_ok=True)
    for fips, group in parcels.groupby("county_fips"):
        group[["parcel_id", "county_fips", "geometry"]].to_parquet(out / "parcels" / f"{fips}.parquet")
    counties.drop(columns="geometry").to_csv(out / "counties.csv", index=False)
    counties[["county_fips", "geometry"]].to_parquet(out / "county_outlines.parquet")
    tiles[TILE_COLUMNS].to_csv(out / "tiles.csv", index=False)
    fia_plots, fia_counts, fia_excluded = fia
    fia_plots.to_parquet(out / "fia_plots.parquet")
    fia_excluded.to_csv(out / "fia_excluded_plots.csv", index=False)
    year, yield_table, yield_files = yields
    yield_table.to_csv(out / "crop_yields.csv", index=False)
    dropped.to_csv(out / "dropped_parcels.csv", index=False)
    summary = {**summary, "fia": fia_counts, "crop_year": year, "crop_yield_files": yield_files}
    (out / "index.json").write_text(json.dumps({"version": VERSION, **summary}, indent=1))


def _summary(index_dir: str | Path) -> dict:
    folder = Path(index_dir)
    try:
        summary = json.loads((folder / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise TilewiseError(f"{folder}: not a complete state index ({exc}); delete the folder to rebuild it") from exc
    if summary.get("version") != VERSION:
        raise TilewiseError(
            f"{folder}: state index format {summary.get('version')!r}, this tilewise reads {VERSION}; "
            "delete the folder to rebuild it"
        )
    return summary


def _checked(index_dir: str | Path) -> Path:
    _summary(index_dir)
    return Path(index_dir)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_tiles(index_dir: str | Path) -> list[dict]:
    return _rows(_checked(index_dir) / "tiles.csv")


def read_counties(index_dir: str | Path) -> list[dict]:
    return _rows(_checked(index_dir) / "counties.csv")


def county_tiles(index_dir: str | Path, county: str) -> list[dict]:
    return [t for t in read_tiles(index_dir) if county in t["counties"].split()]


def read_county_parcels(index_dir: str | Path, county: str):
    import geopandas as gpd

    return gpd.read_parquet(_checked(index_dir) / "parcels" / f"{county}.parquet")


def read_fia_plots(index_dir: str | Path):
    import pandas as pd

    return pd.read_parquet(_checked(index_dir) / "fia_plots.parquet")


def read_county_outlines(index_dir: str | Path):
    import geopandas as gpd

    return gpd.read_parquet(_checked(index_dir) / "county_outlines.parquet")


def read_yields(index_dir: str | Path):
    import pandas as pd

    from tilewise.biomass.crops import Yields

    summary = _summary(index_dir)
    table = pd.read_csv(Path(index_dir) / "crop_yields.csv", keep_default_na=False, na_values=[""])
    return Yields(summary["crop_year"], table, summary["crop_yield_files"])
