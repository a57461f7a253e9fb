"""Rule publish_county: a county's results under their published names, or its failure, with why."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import county_files, outcomes, published
from tilewise.shared import job
from tilewise.shared.errors import TilewiseError

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
record = outcomes.read_outcome(Path(smk.input.run))
if record is None or record["status"] != outcomes.OK:
    reason = record["reason"] if record else "no outcome recorded"
    raise TilewiseError(
        f"county {smk.wildcards.county} of state {smk.wildcards.state} failed: {reason} (the next run tries it "
        f"again; to force that: snakemake -f {smk.input.run} …)"
    )
files = [Path(smk.output.parcels), Path(smk.output.crops), Path(smk.output.stats)]
county_files.publish(Path(smk.input.staged), *files)
published.write(Path(smk.output.record), files)  # what the next run's planning checks them against
job.done()
