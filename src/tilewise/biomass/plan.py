"""Paths and tables the Snakemake rules of the biomass pipeline need (kept out of the .smk files)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tilewise.errors import TilewiseError


@dataclass(frozen=True)
class StateInputs:
    state_fips: str
    counties: Path
    parcels: Path
    sentinel2_catalog: Path | None  # a table of tile, date, band, href, processing_baseline …
    worldcover_template: str  # href with {tile}, e.g. .../ESA_WorldCover_10m_2021_v200_{tile}_Map.tif
    cdl: tuple[str, ...]
    fia_plot: Path
    fia_tree: Path
    sentinel2_date: str | None = None  # None: the latest date with all bands
    sentinel2_template: str | None = None  # … or an href with {tile}, {date}, {band} (needs the date)
    sentinel2_processing_baseline: str | None = None  # with the template


def state_names(config: dict) -> list[str]:
    value = config.get("state") or []
    names = [value] if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in config["states"]]
    if unknown:
        raise TilewiseError(f"state {unknown} not in the config's `states` (known: {sorted(config['states'])})")
    return names


def state_inputs(config: dict, state: str, base: Path) -> StateInputs:
    s = config["states"][state]
    p = lambda rel: base / rel  # noqa: E731 (relative to the catalog folder)
    return StateInputs(
        state_fips=s["fips"],
        counties=p(s["counties"]),
        parcels=p(s["parcels"]),
        sentinel2_catalog=p(s["sentinel2_catalog"]),
        worldcover_template=s["worldcover"],
        cdl=tuple(s["cdl"]),
        fia_plot=p(s["fia_plot"]),
        fia_tree=p(s["fia_tree"]),
        sentinel2_date=s.get("sentinel2_date"),
    )


def local_state_files(inp: StateInputs) -> list[str]:
    files = (inp.counties, inp.parcels, inp.sentinel2_catalog, inp.fia_plot, inp.fia_tree)
    return [str(x) for x in files if x is not None]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_tiles(index_dir: str | Path) -> list[dict]:
    return _rows(Path(index_dir) / "tiles.csv")


def read_counties(index_dir: str | Path) -> list[dict]:
    return _rows(Path(index_dir) / "counties.csv")


def tile_path(state: str, product: str, key: str, ext: str = "tif") -> str:
    return f"results/states/{state}/tiles/{product}/{key}.{ext}"


def county_tiles(index_dir: str | Path, county: str) -> list[dict]:
    return [t for t in read_tiles(index_dir) if county in t["counties"].split()]
