"""Paths and tables the Snakemake rules of the biomass pipeline need (kept out of the .smk files)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tilewise.biomass.tile_index import StateInputs
from tilewise.errors import TilewiseError


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


def read_tiles(index_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(index_dir) / "tiles.csv", dtype=str, keep_default_na=False)


def read_counties(index_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(index_dir) / "counties.csv", dtype={"county_fips": str})


def tile_path(state: str, product: str, key: str, ext: str = "tif") -> str:
    return f"results/states/{state}/tiles/{product}/{key}.{ext}"


def county_tiles(index_dir: str | Path, county: str) -> pd.DataFrame:
    tiles = read_tiles(index_dir)
    return tiles[tiles["counties"].str.split().apply(lambda users: county in users)]
