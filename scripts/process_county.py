"""Rule process_county: per-parcel biomass of one county; records its outcome, then frees the tiles
that every reader has finished with."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
import logging
import shutil
import time
from pathlib import Path

from tilewise.biomass import county_files, outcomes, state_files, tiles
from tilewise.biomass.county import CountyInputs, process_county
from tilewise.shared import gdal_vsi, job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
started = time.time()
county = smk.wildcards.county
staged = Path(smk.output.staged)
settings = tiles.TileSettings.from_params(smk.params.settings)
gdal_vsi.configure_retries(settings.download.attempts, settings.download.backoff_seconds)


def work() -> dict:
    rows = tiles.county_read_paths(list(smk.params.tiles), settings, Path(smk.params.states_root))
    inputs = CountyInputs.from_index(
        Path(smk.input.index), county, rows, smk.params.fia_radius_km, smk.params.idw_power
    )
    result, crops, stats = process_county(inputs, workers=smk.threads)
    tiles.check_in_place_versions(rows, settings)  # the bytes read are of the version the tiles' check saw
    result.insert(1, "county_fips", county)
    county_files.write(*county_files.staged_paths(staged), result, crops, stats)
    return stats


# the state's DONE.json and state files of the run before go first: if this county fails, none of them
# vouches for a state whose county results are no longer all there
for path in state_files.clear_state_outputs(Path(smk.params.states_root), smk.wildcards.state):
    logging.getLogger("tilewise").info("county %s runs again: removed %s of the run before", county, path)
staged.mkdir(parents=True, exist_ok=True)
status, reason, stats = outcomes.run_isolated(work)
if status != outcomes.OK:
    shutil.rmtree(staged)  # nothing half-written is left to publish
    staged.mkdir()
outcomes.write_outcome(Path(smk.output.run), status, reason, started, smk.params.failed_before, **stats)
tiles.release(list(smk.params.tiles), smk.params.runs)
job.done()
