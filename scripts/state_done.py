"""Rule state_done: the DONE record, written only when every county of the state succeeded."""

import json
from pathlib import Path

from tilewise import job
from tilewise.biomass.state import done_record

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
record = done_record(smk.wildcards.state, smk.input.parcels, smk.input.manifests, smk.params.tiles)
Path(smk.output[0]).write_text(json.dumps(record, indent=1))
