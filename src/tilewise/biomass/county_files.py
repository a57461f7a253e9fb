"""A county's result files: the one module that writes and reads them.

{county}.parquet        GeoParquet, one row per parcel (the unit in every numeric column's name)
{county}.crops.parquet  one row per parcel and CDL crop
{county}.stats.json     parcels, processing seconds, bytes read, bytes of the tiles read from

The county job writes them into its staging folder (`county_runs/{county}/`, `staged_paths`);
`publish` copies them to their published names once the county's outcome says it succeeded: a copy,
never a hard link, so that a published file edited in place (a notebook's `to_parquet` on the same path,
`cp` over it) leaves the staged files, which the state and national summaries read, as the county job
wrote them; the next run publishes the county again from them (tilewise.biomass.published).
"""

from __future__ import annotations

import json
import os
import shutil
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


def staged_paths(folder: Path) -> tuple[Path, Path, Path]:
    """parcels, crops and stats inside a county's staging folder."""
    return folder / "parcels.parquet", folder / "crops.parquet", folder / "stats.json"


def publish(folder: Path, parcels_path: Path, crops_path: Path, stats_path: Path) -> None:
    """Copy the staged files to their published names (another inode: see above)."""
    for staged, published in zip(staged_paths(folder), (parcels_path, crops_path, stats_path), strict=True):
        tmp = published.with_name(published.name + ".tmp")
        tmp.unlink(missing_ok=True)
        shutil.copyfile(staged, tmp)
        os.replace(tmp, published)


def county_of(path: Path) -> str:
    """The county of a published file ({county}.parquet, …) or of a staged one (county_runs/{county}/…)."""
    path = Path(path)
    if path.name in {p.name for p in staged_paths(path.parent)}:
        return path.parent.name
    return path.name.split(".")[0]


def read_parcels(paths: list[Path]):
    """Every parcel of the given county files, in one GeoDataFrame."""
    import geopandas as gpd
    import pandas as pd

    frames = [gpd.read_parquet(p) for p in paths]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)


def read_stats(paths: list[Path]):
    import pandas as pd

    return pd.DataFrame([{"county_fips": county_of(p), **json.loads(Path(p).read_text())} for p in paths])
