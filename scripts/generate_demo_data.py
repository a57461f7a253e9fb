"""Rule generate_demo_data: write the demo source's synthetic data (no network)."""

from pathlib import Path

from tilewise.demo import generate
from tilewise.logs import log_to

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
generate(Path(snakemake.output[0]).parent)  # noqa: F821
