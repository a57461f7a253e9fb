"""Rule index_state: counties, parcels per county, needed tiles, FIA plot densities and crop yields of one state."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import made_from
from tilewise.biomass.plan import StateInputs
from tilewise.biomass.tile_index import index_state
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
index_state(
    StateInputs.from_params(smk.params.inputs),
    Path(smk.output[0]),
    smk.params.fia_missing,
    smk.params.nass_national_yields,
    made_from.config_digests(smk.config, smk.wildcards.state),
)
job.done()
