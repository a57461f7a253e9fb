"""Rule convert_tile: one tile as a verified, internally tiled, lossless COG."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass.tiles import convert_tile, siblings
from tilewise.shared import job
from tilewise.shared.download import DownloadSettings

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
convert_tile(
    smk.params.href,
    Path(smk.output.tif),
    Path(smk.output.manifest),
    smk.params.codec,
    DownloadSettings.from_config(smk.params.download),
    tiles_dir=Path(smk.params.tiles_dir),
    siblings=siblings(Path(smk.input.index), smk.wildcards.product, smk.params.href),
)
