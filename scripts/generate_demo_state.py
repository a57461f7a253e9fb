"""Rule generate_demo_state: write the demo state's synthetic inputs (no network)."""

from pathlib import Path

from tilewise.biomass.demo_state import generate
from tilewise.logs import log_to

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
log_to(smk.log[0])
generate(Path(smk.output[-1]).parent)
