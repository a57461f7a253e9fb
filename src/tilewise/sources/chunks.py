"""Stable assignment of a source's files to chunks (the unit of one Snakemake job).

A file goes to chunk hash(archive set) mod K, with K a power of two. Adding or removing one URL
changes the members of exactly one chunk, so only that chunk reruns; K itself changes only when
the file count crosses a power of two, and then each chunk splits in two.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict

from tilewise.sources.catalog import FileEntry

# Automatic size: ~128 files a chunk keeps a 36,000-file source at a few hundred jobs, while
# small sources still get a few chunks to keep the cores busy (each job costs ~0.4 s of start-up).
AUTO_FILES_PER_CHUNK = 128
AUTO_MIN_CHUNKS = 4


def chunk_count(n_files: int, files_per_chunk: int | str = "auto") -> int:
    if files_per_chunk == "auto":
        wanted = max(math.ceil(n_files / AUTO_FILES_PER_CHUNK), min(AUTO_MIN_CHUNKS, n_files))
    else:
        wanted = math.ceil(n_files / int(files_per_chunk))
    return 1 << max(0, math.ceil(math.log2(max(wanted, 1))))


def _bucket(group: str, k: int) -> int:
    digest = hashlib.blake2b(group.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % k


def assign_chunks(files: tuple[FileEntry, ...], files_per_chunk: int | str = "auto") -> dict[str, list[FileEntry]]:
    """Chunk id ("0000"…) → its files in file-list order; empty chunks are left out."""
    k = chunk_count(len(files), files_per_chunk)
    chunks: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in files:
        chunks[f"{_bucket(entry.group, k):04d}"].append(entry)
    return dict(sorted(chunks.items()))
