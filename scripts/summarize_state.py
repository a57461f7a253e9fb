"""Rule summarize_state: all parcels of the state, the county summary and the biomass map."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass.state import summarize_state
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
summarize_state(
    [Path(p) for p in smk.input.parcels],
    [Path(p) for p in smk.input.stats],
    Path(smk.input.index),
    Path(smk.output.parquet),
    Path(smk.output.gpkg),
    Path(smk.output.summary),
    Path(smk.output.png),
    smk.wildcards.state,
)
job.done()
