"""Rule summarize_state: all parcels of the state, the county summary and the biomass map."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import county_files, published
from tilewise.biomass.state import summarize_state
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
# the counties' own staged copies, as their jobs wrote them, not the published files an operator may edit
# (the published ones are inputs: they are published, and a republish makes this run again)
staged = [
    county_files.staged_paths(
        Path(smk.params.staged.format(state=smk.wildcards.state, county=county_files.county_of(p)))
    )
    for p in smk.input.parcels
]
summarize_state(
    [parcels for parcels, _, _ in staged],
    [stats for _, _, stats in staged],
    Path(smk.input.index),
    Path(smk.output.parquet),
    Path(smk.output.gpkg),
    Path(smk.output.summary),
    Path(smk.output.png),
    smk.wildcards.state,
)
outputs = [Path(smk.output[k]) for k in ("parquet", "gpkg", "summary", "png")]
published.write(Path(smk.output.record), outputs)
job.done()
