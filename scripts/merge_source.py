"""Rule merge_source: bounds.csv, coverage.gpkg and failures.csv of one source."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise.sources.merge import merge_source

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
merge_source(
    [Path(p) for p in smk.input.ledgers],
    store=Path(smk.params.store),
    bounds_csv=Path(smk.output.bounds),
    coverage_gpkg=Path(smk.output.coverage),
    failures_csv=Path(smk.output.failures),
    skipped_csv=Path(smk.output.skipped),
    wanted_crs=smk.params.coverage_crs,
)
