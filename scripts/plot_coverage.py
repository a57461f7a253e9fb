"""Rule plot_coverage: the coverage map PNG of one source."""

from pathlib import Path

from tilewise import job
from tilewise.plot import plot_coverage

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
plot_coverage(smk.wildcards.source, [Path(p) for p in smk.input.ledgers], Path(smk.output.png))
