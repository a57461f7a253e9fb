"""Stable assignment of a source's files to chunks (the unit of one Snakemake job).

A file goes to chunk hash(archive set) mod K, with K a power of two. Adding or removing one URL
changes the members of exactly one chunk, so only that chunk reruns; K itself changes only when
the file count crosses a power of two, and then each chunk splits in two.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from pathlib import Path

from tilewise.sources.catalog import FileEntry

# Automatic size. A chunk job costs ~1 s of CPU before its first file (a Python process, its imports,
# Snakemake's bookkeeping): ~128 files a chunk up to 2,048 files, while small sources still get a
# few chunks to keep the cores busy; beyond, 4·√n files a chunk, so the start-ups fall with the size
# (20,000 files: 64 chunks of ~312 instead of 256 of ~78, 1.5 → 0.4 % of a 256² tile's work;
# measured in README "Performance") while a large source still has dozens of chunks for many cores.
AUTO_FILES_PER_CHUNK = 128
AUTO_GROWTH = 4
AUTO_MIN_CHUNKS = 4
LEDGER_NAME = re.compile(r"(\d{4})\.json")


def chunk_count(n_files: int, files_per_chunk: int | str = "auto", kept: int | None = None) -> int:
    """K for `n_files`. `kept`: the K of the source's existing ledgers (`kept_chunk_count`). A source
    first prepared while "auto" meant 128 files a chunk at every size keeps that K for as long as that
    rule still gives it, so an upgrade prepares (and downloads) none of its chunks again; once its list
    crosses a power of two, its chunks are made again anyway, and then with today's rule."""
    if files_per_chunk != "auto":
        return _power_of_two(math.ceil(n_files / int(files_per_chunk)))
    if kept is not None and kept == _power_of_two(_auto_wanted(n_files, AUTO_FILES_PER_CHUNK)):
        return kept
    per_chunk = max(AUTO_FILES_PER_CHUNK, AUTO_GROWTH * math.sqrt(n_files))
    return _power_of_two(_auto_wanted(n_files, per_chunk))


def _auto_wanted(n_files: int, per_chunk: float) -> int:
    return max(math.ceil(n_files / per_chunk), min(AUTO_MIN_CHUNKS, n_files))


def _power_of_two(wanted: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(wanted, 1))))


def kept_chunk_count(ledgers: Path) -> int | None:
    """The K the ledgers in folder `ledgers` were made with: the power of two above their highest chunk
    id, or None without ledgers. Where it matters (over 2,048 files, at least 64 a chunk on average)
    the highest chunk is practically never empty; the merge deletes ledgers of chunks no longer planned."""
    try:
        ids = [int(m[1]) for name in ledgers.iterdir() if (m := LEDGER_NAME.fullmatch(name.name))]
    except FileNotFoundError:
        return None
    return _power_of_two(max(ids) + 1) if ids else None


def _bucket(group: str, k: int) -> int:
    digest = hashlib.blake2b(group.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % k


def assign_chunks(
    files: tuple[FileEntry, ...], files_per_chunk: int | str = "auto", kept: int | None = None
) -> dict[str, list[FileEntry]]:
    """Chunk id ("0000"…) → its files in file-list order; empty chunks are left out. `kept`: see chunk_count."""
    k = chunk_count(len(files), files_per_chunk, kept)
    chunks: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in files:
        chunks[f"{_bucket(entry.group, k):04d}"].append(entry)
    return dict(sorted(chunks.items()))
