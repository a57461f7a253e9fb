"""Rule load_postgis: the state's parcels into PostGIS, one transaction per county, idempotent."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
import json
from pathlib import Path

from tilewise.biomass.postgis import load_state
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
record = load_state(smk.params.dsn, smk.params.schema, smk.params.table, smk.wildcards.state, smk.input.parcels)
Path(smk.output[0]).write_text(json.dumps(record, indent=1))
job.done()
