"""Rule build_tarball: the reproducible tarball of one source and its md5."""

from pathlib import Path

from tilewise import job
from tilewise.tarball import build_tarball

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
build_tarball(
    smk.wildcards.source,
    license_pdf=Path(smk.input.license),
    metadata_json=Path(smk.input.metadata),
    bounds_csv=Path(smk.input.bounds),
    coverage_gpkg=Path(smk.input.coverage),
    failures_csv=Path(smk.input.failures),
    store=Path(smk.input.bounds).parent,
    tar_path=Path(smk.output.tar),
    md5_path=Path(smk.output.md5),
    allow_incomplete=smk.params.allow_incomplete,
)
