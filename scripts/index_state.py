"""Rule index_state: counties, parcels per county, needed tiles and FIA plot densities of one state."""

from pathlib import Path

from tilewise import job
from tilewise.biomass.tile_index import index_state

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
index_state(smk.params.inputs, Path(smk.output[0]), Path(smk.params.base))
