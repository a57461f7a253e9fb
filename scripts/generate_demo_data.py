"""Rule generate_demo_data: write the demo source's synthetic data (no network)."""

from pathlib import Path

from tilewise import job
from tilewise.demo import demo_files, generate

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
unknown = sorted({Path(p).name for p in smk.output} - set(demo_files()))
if unknown:
    raise SystemExit(f"catalog/demo/file_list.txt names files the demo generator does not make: {unknown}")
generate(Path(smk.output[0]).parent)
