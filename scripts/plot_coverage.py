"""Rule plot_coverage: the coverage map PNG of one source."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise.sources.plot import plot_coverage

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
plot_coverage(smk.wildcards.source, [Path(p) for p in smk.input.ledgers], Path(smk.output.png))
job.done()
