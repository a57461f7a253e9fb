"""Rule index_state: counties, parcels per county, needed tiles and FIA plot densities of one state."""

from pathlib import Path

from tilewise.biomass.tile_index import index_state
from tilewise.logs import log_to

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
log_to(smk.log[0])
index_state(smk.params.inputs, Path(smk.output[0]), Path(smk.params.base))
