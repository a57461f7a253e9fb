"""Where a state's results live (rules/common.smk takes its patterns from here), and the clearing of an
earlier run's results when the state's index is made again, or when one of its counties runs again.

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
# what publish_county, summarize_state and state_done recorded of the files they wrote (tilewise.biomass.published)
PUBLISHED = "results/states/{state}/published"
COUNTY_RECORD = PUBLISHED + "/{county}.json"
SUMMARY_RECORD = PUBLISHED + "/summary.json"
DONE_RECORD = PUBLISHED + "/done.json"
# a flag made at planning for a job whose published files were deleted or changed (rules/common.smk)
REPUBLISH = "results/states/{state}/republish/{what}.{token}"
# a flag made at planning for a county or tile job whose record says its last run failed (rules/common.smk)
RERUN_FAILED = "results/states/{state}/rerun/{what}.{token}"

# made from the counties' results: a new index makes each again
_STATE_RESULTS = (STATE_DONE, STATE_PARCELS, STATE_PARCELS_GPKG, COUNTY_SUMMARY, BIOMASS_MAP)
_STATE_RECORDS = (SUMMARY_RECORD, DONE_RECORD)


def clear_state_outputs(states_root: Path, state: str) -> list[Path]:
    """Remove DONE.json and the state files of the run before (and their records), when a county of the
    state runs again: if it then fails, no DONE.json of the earlier run stands beside its missing files.
    `states_root` is the folder of the states (`results/states` under the working folder)."""
    root = Path(states_root).parents[len(Path(STATE_INDEX).parts) - 3]
    gone = []
    for pattern in (*_STATE_RESULTS, *_STATE_RECORDS):
        path = root / pattern.format(state=state)
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # not there, or another county of the state removed it first
        gone.append(path)
    return gone


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
    for folder in (COUNTY_PARCELS, COUNTY_RECORD):
        folder = (root / folder.format(state=state, county="x")).parent
        if folder.is_dir():
            gone += sorted(folder.iterdir())
            shutil.rmtree(folder)
    return gone
