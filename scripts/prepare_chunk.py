"""Rule prepare_chunk: every file of one chunk, end to end; writes the chunk's ledger."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.shared import job
from tilewise.shared.download import DownloadSettings
from tilewise.sources.catalog import FileEntry
from tilewise.sources.chunk_job import ChunkJob
from tilewise.sources.plan import SourceSettings, inputs_digest
from tilewise.sources.prepare import run_chunk
from tilewise.sources.recipe import Recipe
from tilewise.sources.unpack import UnpackLimits

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
run_chunk(
    ChunkJob(
        source=smk.wildcards.source,
        chunk=smk.wildcards.chunk,
        files=tuple(FileEntry(None, *f[:3]) for f in smk.params.files),  # f[3]: a refresh's version
        entry_dir=Path(smk.params.entry_dir),
        recipe=Recipe.from_dict(smk.params.recipe),
        staging=Path(smk.params.staging),
        scratch=Path(smk.params.scratch),
        ledger=Path(smk.output.ledger),
        # the params' settings, and how downloads run (not params: they change no output)
        download=DownloadSettings.from_config(
            {**smk.params.download, **SourceSettings.from_config(smk.config, smk.wildcards.source).download_tuning()}
        ),
        limits=UnpackLimits.from_config(smk.params.unpack),
        inputs=inputs_digest(smk.params.files, smk.params.recipe),
    )
)
job.done()
