"""Rule build_tarball: the reproducible tarball of one source and its md5."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise.sources.tarball import build_tarball

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
build_tarball(
    smk.wildcards.source,
    license_pdf=Path(smk.input.license),
    metadata_json=Path(smk.input.metadata),
    bounds_csv=Path(smk.input.bounds),
    coverage_gpkg=Path(smk.input.coverage),
    store_index=Path(smk.input.store_index),
    failures_csv=Path(smk.input.failures),
    store=Path(smk.params.store),
    ledgers=[Path(p) for p in smk.input.ledgers],
    tar_path=Path(smk.output.tar),
    md5_path=Path(smk.output.md5),
    changes=(Path(smk.output.changes), Path(smk.params.published)),
    allow_incomplete=smk.params.allow_incomplete,
    # beside the published changes (TARBALL_RECORD): not a param, a new one would rerun every built tarball
    record=Path(smk.params.published).with_name("tarball.json"),
)
job.done()
