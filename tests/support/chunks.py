"""A chunk job over served URLs, as the tests of sources/prepare.py build it (no GDAL loaded here)."""

from __future__ import annotations

from pathlib import Path

from tilewise.sources.catalog import FileEntry, archive_group
from tilewise.sources.chunk_job import ChunkJob
from tilewise.sources.recipe import Recipe

from support.config import download_settings, unpack_limits


def chunk_job(folder: Path, urls: list[str], **download) -> ChunkJob:
    """Chunk 0000 of source "s": `urls`, each named after its last part and grouped into archive sets
    as the plan groups them, worked on in `folder`, with the workflow's defaults but `download`."""
    names = [u.rsplit("/", 1)[-1] for u in urls]
    files = tuple(FileEntry(None, u, n, archive_group(n)) for u, n in zip(urls, names, strict=True))
    (folder / "staging").mkdir(parents=True)
    return ChunkJob(
        "s", "0000", files, folder, Recipe(), folder / "staging", folder / "scratch", folder / "l.json",
        download_settings(**download), unpack_limits(),
    )  # fmt: skip
