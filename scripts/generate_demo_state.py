"""Rule generate_demo_state: write the demo state's synthetic inputs (no network)."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise_demo.state import generate

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
generate(Path(smk.output[-1]).parent)
job.done()
