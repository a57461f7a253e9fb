"""Rule generate_demo_data: write the demo source's synthetic data (no network)."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise_demo.source import demo_files, generate

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
unknown = sorted({Path(p).name for p in smk.output} - set(demo_files()))
if unknown:
    raise SystemExit(f"catalog/demo/file_list.txt names files the demo generator does not make: {unknown}")
generate(Path(smk.output[0]).parent)
job.done()
