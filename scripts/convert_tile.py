"""Rule convert_tile: one tile as a verified, internally tiled, lossless COG."""

from pathlib import Path

from tilewise import job
from tilewise.biomass.tiles import convert_tile
from tilewise.download import DownloadSettings

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
convert_tile(
    smk.params.href,
    Path(smk.output.tif),
    Path(smk.output.manifest),
    smk.params.codec,
    DownloadSettings.from_config(smk.params.download),
)
