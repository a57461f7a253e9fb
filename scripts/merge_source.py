"""Rule merge_source: bounds.csv, coverage.gpkg and failures.csv of one source."""

from pathlib import Path

from tilewise import job
from tilewise.merge import merge_source

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
merge_source(
    [Path(p) for p in smk.input.ledgers],
    store=Path(smk.output.bounds).parent,
    bounds_csv=Path(smk.output.bounds),
    coverage_gpkg=Path(smk.output.coverage),
    failures_csv=Path(smk.output.failures),
    wanted_crs=smk.params.coverage_crs,
)
