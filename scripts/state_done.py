"""Rule state_done: the DONE record, written only when every county of the state succeeded."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
import json
from pathlib import Path

from tilewise.biomass import published
from tilewise.biomass.state import done_record
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
record = done_record(
    smk.wildcards.state,
    [Path(p) for p in smk.input.parcels],
    [Path(p) for p in smk.input.manifests],
    [Path(p) for p in smk.params.tiles],
)
Path(smk.output.done).write_text(json.dumps(record, indent=1))
published.write(Path(smk.output.record), [Path(smk.output.done)])
job.done()
