"""Rule end_state: every county of the state has ended; reclaim the tiles of the ones that succeeded,
keep those of the failed ones, and record the state's turn (the next state's tiles wait for this)."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import outcomes, tiles
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
rows = list(smk.params.tiles)
reclaimed, kept = tiles.release(rows, smk.params.runs)
outcomes.write_state_ended(
    Path(smk.output[0]),
    smk.wildcards.state,
    [Path(p) for p in smk.input.runs],
    [tiles.read_manifest(m) for m in smk.input.manifests],
    reclaimed,
    kept,
)
job.done()
