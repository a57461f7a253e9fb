"""Where a state's results live (rules/common.smk takes its patterns from here), and the clearing of an
earlier run's results when the state's index is made again.

A new index means new inputs: results of the earlier ones must not stand beside the new run's, neither
while it runs nor after it fails (DONE.json of the earlier run would vouch for files the new inputs no
longer give), nor for a county that left the index (its files would be read by a glob).
"""

from __future__ import annotations

import shutil
from pathlib import Path

STATE_INDEX = "results/states/{state}/index"
TILE = "results/states/{state}/tiles/{product}/{key}.tif"  # written and deleted by tilewise, not Snakemake
TILE_MANIFEST = "results/states/{state}/tiles/{product}/{key}.json"
COUNTY_RUN = "results/states/{state}/county_runs/{county}.json"
COUNTY_STAGED = "results/states/{state}/county_runs/{county}"
COUNTY_PARCELS = "results/states/{state}/counties/{county}.parquet"
COUNTY_CROPS = "results/states/{state}/counties/{county}.crops.parquet"
COUNTY_STATS = "results/states/{state}/counties/{county}.stats.json"
STATE_PARCELS = "results/states/{state}/parcels.parquet"
STATE_PARCELS_GPKG = "results/states/{state}/parcels.gpkg"
COUNTY_SUMMARY = "results/states/{state}/county_summary.csv"
BIOMASS_MAP = "results/states/{state}/biomass_map.png"
STATE_ENDED = "results/states/{state}/ended.json"
STATE_DONE = "results/states/{state}/DONE.json"

# made from the counties' results: a new index makes each again
_STATE_RESULTS = (STATE_DONE, STATE_PARCELS, STATE_PARCELS_GPKG, COUNTY_SUMMARY, BIOMASS_MAP)


def clear_earlier_results(index_dir: Path) -> list[Path]:
    """Remove the state's results of an earlier index (`index_dir`: the new index's folder, under the
    working folder): DONE.json, the state files and every published county file. Returns what went."""
    state = index_dir.parent.name
    root = index_dir.parents[len(Path(STATE_INDEX).parts) - 1]
    gone = []
    for pattern in _STATE_RESULTS:
        path = root / pattern.format(state=state)
        if path.exists():
            path.unlink()
            gone.append(path)
    counties = (root / COUNTY_PARCELS.format(state=state, county="x")).parent
    if counties.is_dir():
        gone += sorted(counties.iterdir())
        shutil.rmtree(counties)
    return gone
