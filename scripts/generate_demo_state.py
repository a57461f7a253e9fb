"""Rule generate_demo_state: write the demo state's synthetic inputs (no network)."""

from pathlib import Path

from tilewise import job
from tilewise.biomass.demo_state import generate

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
generate(Path(smk.output[-1]).parent)
