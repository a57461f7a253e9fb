"""Rule summarize_national: per state of a national run, counties done and failed, totals, peak tile
bytes and seconds; and the national map."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import published
from tilewise.biomass.state import national_summary
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
national_summary(
    list(smk.params.states),
    [Path(p) for p in smk.input.indexes],
    [Path(p) for p in smk.input.ended],
    smk.params.staged,
    Path(smk.output.summary),
    Path(smk.output.png),
)
# the record last: planning sees an edit, overwrite or restored backup of either file (national_again)
published.write(Path(smk.output.record), [Path(smk.output.summary), Path(smk.output.png)])
job.done()
