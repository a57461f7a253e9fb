"""Rule generate_demo_data: write the demo source's synthetic data (no network)."""

from pathlib import Path

from tilewise.demo import generate
from tilewise.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
generate(Path(snakemake.output[0]).parent)  # noqa: F821
