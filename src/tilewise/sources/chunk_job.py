"""What a chunk job is given, and how one file's failure is told apart from the job's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tilewise.shared.download import DownloadSettings
from tilewise.shared.errors import DiskFull, FileFailure
from tilewise.shared.job import disk_full
from tilewise.sources.catalog import FileEntry
from tilewise.sources.recipe import Recipe
from tilewise.sources.unpack import UnpackLimits


@dataclass(frozen=True)
class ChunkJob:
    source: str
    chunk: str
    files: tuple[FileEntry, ...]
    entry_dir: Path  # catalog entry: plain paths in file_list.txt are relative to it
    recipe: Recipe
    staging: Path  # work/{source}/staging/{chunk}: the chunk's COGs until the merge moves them
    scratch: Path  # work/{source}/scratch/{chunk}
    ledger: Path
    download: DownloadSettings
    limits: UnpackLimits
    inputs: str | None = None  # tilewise.sources.plan.inputs_digest of the job's params, kept in its ledger


@contextmanager
def failing_as(step: str, what: str) -> Iterator[None]:
    """Turn any unexpected error of one file's step into that file's recorded failure, except a full
    disk: that is the job's failure (a rerun with free space fixes it), never the file's."""
    try:
        yield
    except (FileFailure, DiskFull):
        raise
    except Exception as exc:
        if full := disk_full(exc, f"{what} ({step})"):
            raise full from exc
        raise FileFailure(step, f"{what}: {type(exc).__name__}: {exc}") from exc
