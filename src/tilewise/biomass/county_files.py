"""A county's result files: the one module that writes and reads them.

{county}.parquet        GeoParquet, one row per parcel (the unit in every numeric column's name)
{county}.crops.parquet  one row per parcel and CDL crop
{county}.stats.json     parcels, processing seconds, bytes read, bytes of the tiles read from
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write(parcels_path: Path, crops_path: Path, stats_path: Path, parcels, crops, stats: dict) -> None:
    for path, save in (
        (parcels_path, parcels.to_parquet),
        (crops_path, crops.to_parquet),
        (stats_path, lambda p: Path(p).write_text(json.dumps(stats, indent=1))),
    ):
        tmp = path.with_name(path.name + ".tmp")
        save(tmp)
        os.replace(tmp, path)


def county_of(path: Path) -> str:
    return Path(path).name.split(".")[0]


def read_parcels(paths: list[Path]):
    """Every parcel of the given county files, in one GeoDataFrame."""
    import geopandas as gpd
    import pandas as pd

    frames = [gpd.read_parquet(p) for p in paths]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)


def read_stats(paths: list[Path]):
    import pandas as pd

    return pd.DataFrame([{"county_fips": county_of(p), **json.loads(Path(p).read_text())} for p in paths])
