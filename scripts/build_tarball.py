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
    changes=Path(smk.output.changes),
    # beside the published changes file of earlier versions (PUBLISHED), which names them: not params,
    # a new one would rerun every built tarball (PUBLISHED_STATE, TARBALL_RECORD, KEPT_TARBALL)
    published=Path(smk.params.published).with_name("published.json"),
    allow_incomplete=smk.params.allow_incomplete,
    record=Path(smk.params.published).with_name("tarball.json"),
    kept=Path(smk.params.published).with_name("published"),
    legacy=Path(smk.params.published),
)
job.done()
