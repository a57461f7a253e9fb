"""Rule summarize_state: all parcels of the state, the county summary and the biomass map."""

from pathlib import Path

from tilewise import job
from tilewise.biomass.state import summarize_state

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
summarize_state(
    [Path(p) for p in smk.input.parcels],
    [Path(p) for p in smk.input.stats],
    Path(smk.input.index) / "counties.csv",
    Path(smk.output.parquet),
    Path(smk.output.gpkg),
    Path(smk.output.summary),
    Path(smk.output.png),
    smk.wildcards.state,
)
