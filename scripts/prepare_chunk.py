"""Rule prepare_chunk: every file of one chunk, end to end; writes the chunk's ledger."""

from pathlib import Path

from tilewise import job
from tilewise.catalog import FileEntry
from tilewise.download import DownloadSettings
from tilewise.prepare import ChunkJob, run_chunk
from tilewise.recipe import Recipe
from tilewise.unpack import UnpackLimits

import _paths  # noqa: F401 (tilewise importable under --sdm conda)

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
run_chunk(
    ChunkJob(
        source=smk.wildcards.source,
        chunk=smk.wildcards.chunk,
        files=tuple(FileEntry(*f) for f in smk.params.files),
        entry_dir=Path(smk.params.entry_dir),
        recipe=Recipe.from_dict(smk.params.recipe),
        store=Path(smk.params.store),
        scratch=Path(smk.params.scratch),
        ledger=Path(smk.output.ledger),
        download=DownloadSettings.from_config(smk.params.download),
        connections=smk.params.download["connections"],
        limits=UnpackLimits.from_config(smk.params.unpack),
    )
)
