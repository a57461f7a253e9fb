"""Rule convert_tile: one tile read in place, or clipped/converted to a verified COG; its manifest."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import state_index
from tilewise.biomass.tiles import TileSettings, prepare_tile, sibling_hrefs, tile_bands
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
row = dict(smk.params.row)
rows = state_index.read_tiles(smk.input.index)
prepare_tile(
    row,
    Path(smk.params.tif),
    Path(smk.output.manifest),
    TileSettings.from_params(smk.params.settings),
    Path(smk.params.states_root),
    smk.params.failed_before,
    sibling_hrefs(rows, row),
    tile_bands(rows, row),
)
job.done()
