"""Rule process_county: per-parcel biomass of one county, read from the state's converted tiles."""

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from tilewise import job
from tilewise.biomass.county import CountyInputs, S2Tile, process_county

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
index = Path(smk.input.index)
tiles = pd.DataFrame(smk.params.tiles)
s2 = [
    S2Tile(
        tile,
        date,
        float(group["boa_add_offset_dn"].iloc[0]),
        dict(zip(group["band"], map(Path, group["path"]), strict=True)),
    )
    for (tile, date), group in tiles[tiles["product"] == "sentinel2"].groupby(["tile", "date"])
]
result, crops, stats = process_county(
    CountyInputs(
        parcels=gpd.read_parquet(index / "parcels" / f"{smk.wildcards.county}.parquet"),
        worldcover=[Path(p) for p in tiles.loc[tiles["product"] == "worldcover", "path"]],
        cdl=[Path(p) for p in tiles.loc[tiles["product"] == "cdl", "path"]],
        s2=s2,
        fia_plots=pd.read_parquet(index / "fia_plots.parquet"),
        fia_radius_km=smk.params.fia_radius_km,
        idw_power=smk.params.idw_power,
    ),
    workers=smk.threads,
)
result.insert(1, "county_fips", smk.wildcards.county)
result.to_parquet(smk.output.parcels)
crops.to_parquet(smk.output.crops)
Path(smk.output.stats).write_text(json.dumps(stats, indent=1))
