"""Rule merge_source: the store, bounds.csv, coverage.gpkg, failures.csv and store index of one source."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise.sources.merge import MergePaths, merge_source

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
merge_source(
    [Path(p) for p in smk.input.ledgers],
    MergePaths(
        store=Path(smk.params.store),
        staging=Path(smk.params.staging),
        store_index=Path(smk.output.store_index),
        bounds_csv=Path(smk.output.bounds),
        coverage_gpkg=Path(smk.output.coverage),
        failures_csv=Path(smk.output.failures),
        skipped_csv=Path(smk.output.skipped),
        remote_state=Path(smk.params.remote_state),
    ),
    file_list=Path(smk.input.file_list),
    recipe_file=Path(smk.params.recipe_file),
    wanted_crs=smk.params.coverage_crs,
    threads=smk.threads,
)
job.done()
