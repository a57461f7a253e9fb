"""The state index folder (`results/states/{state}/index/`): the one module that writes and reads it.

    index.json              format version and counts
    counties.csv            county_fips, name, parcels, {product}_files
    counties.parquet        county_fips, name, parcels, geometry (GeoParquet; the state and national maps)
    tiles.csv               one row per tile file to read: product, key, href, tile, band, date,
                            boa_add_offset_dn, counties (space-separated FIPS that read it), sign
                            (none or planetary-computer), window_lonlat (`west south east north`)
    parcels/{county}.parquet  parcel_id, county_fips, geometry (GeoParquet)
    fia_plots.parquet       per sampled FIA plot location: LAT, LON, forest share, densities (forest.plot_densities)
    fia_excluded_plots.csv  CN, problem: plots left out for missing values (`fia_missing: exclude_plot`)
    crop_yields.csv         the crop year's NASS yields, state and national (crops.YIELD_COLUMNS)
    dropped_parcels.csv     parcel_id, reason
    made_from.json          the files read and config digests the state was made from (tilewise.biomass.made_from)

index.json also holds the FIA counts (what was left out and why) and the crop year with its yield files.

The CSV readers use only the csv module: Snakemake calls them while it builds the DAG.
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

from tilewise.shared.errors import TilewiseError

VERSION = 3  # 3: counties.parquet (outlines with name and parcels), tiles.csv sign and window
TILE_COLUMNS = [
    "product",
    "key",
    "href",
    "tile",
    "band",
    "date",
    "boa_add_offset_dn",
    "counties",
    "sign",
    "window_lonlat",
]


OVERLAPS = "overlapping_parcels.csv"  # tile_index.overlapping_parcels


def write(out: Path, counties, tiles, parcels, fia, yields, dropped, overlaps, summary: dict) -> None:
    """Write every file of the index under `out`: `counties` a GeoDataFrame, `fia` the plots, counts
    and excluded plots of forest.plot_densities, `yields` (crop year, yields table, files)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "parcels").mkdir(exist_ok=True)
    for fips, group in parcels.groupby("county_fips"):
        group[["parcel_id", "county_fips", "geometry"]].to_parquet(out / "parcels" / f"{fips}.parquet")
    counties.drop(columns="geometry").to_csv(out / "counties.csv", index=False)
    counties[["county_fips", "name", "parcels", "geometry"]].to_parquet(out / "counties.parquet")
    tiles[TILE_COLUMNS].to_csv(out / "tiles.csv", index=False)
    fia_plots, fia_counts, fia_excluded = fia
    fia_plots.to_parquet(out / "fia_plots.parquet")
    fia_excluded.to_csv(out / "fia_excluded_plots.csv", index=False)
    year, yield_table, yield_files = yields
    yield_table.to_csv(out / "crop_yields.csv", index=False)
    dropped.to_csv(out / "dropped_parcels.csv", index=False)
    overlaps.to_csv(out / OVERLAPS, index=False)
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
    """The rows of an index CSV. Snakemake asks for them once per job while it builds the DAG (10,000s
    of times in a national run): parsed once per file version, handed out as copies."""
    stat = path.stat()
    return [dict(r) for r in _parsed(str(path), stat.st_mtime_ns, stat.st_size)]


@lru_cache(maxsize=256)
def _parsed(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:
    with open(path, newline="") as f:
        return tuple(csv.DictReader(f))


def read_tiles(index_dir: str | Path) -> list[dict]:
    return _rows(_checked(index_dir) / "tiles.csv")


def read_counties(index_dir: str | Path) -> list[dict]:
    return _rows(_checked(index_dir) / "counties.csv")


def read_summary(index_dir: str | Path) -> dict:
    """index.json: the counts (counties, parcels, parcels_dropped, tiles)."""
    return json.loads((_checked(index_dir) / "index.json").read_text())


def read_county_shapes(index_dir: str | Path):
    import geopandas as gpd

    return gpd.read_parquet(_checked(index_dir) / "counties.parquet")


def county_tiles(index_dir: str | Path, county: str) -> list[dict]:
    return [t for t in read_tiles(index_dir) if county in t["counties"].split()]


def read_county_parcels(index_dir: str | Path, county: str):
    import geopandas as gpd

    return gpd.read_parquet(_checked(index_dir) / "parcels" / f"{county}.parquet")


def read_fia_plots(index_dir: str | Path):
    import pandas as pd

    return pd.read_parquet(_checked(index_dir) / "fia_plots.parquet")


def read_yields(index_dir: str | Path):
    import pandas as pd

    from tilewise.biomass.crops import Yields

    summary = _summary(index_dir)
    table = pd.read_csv(Path(index_dir) / "crop_yields.csv", keep_default_na=False, na_values=[""])
    return Yields(summary["crop_year"], table, summary["crop_yield_files"])
