"""Stable assignment of a source's files to chunks (the unit of one Snakemake job).

A file goes to chunk hash(archive set) mod K, with K a power of two. Adding or removing one URL
changes the members of exactly one chunk, so only that chunk reruns; K itself changes only when
the file count crosses a power of two, and then each chunk splits in two.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import defaultdict
from pathlib import Path

from tilewise.shared.errors import TilewiseError
from tilewise.sources.catalog import FileEntry

# Automatic size. A chunk job costs ~1 s of CPU before its first file (a Python process, its imports,
# Snakemake's bookkeeping): ~128 files a chunk up to 2,048 files, while small sources still get a
# few chunks to keep the cores busy; beyond, 4·√n files a chunk, so the start-ups fall with the size
# (20,000 files: 64 chunks of ~312 instead of 256 of ~78, 1.5 → 0.4 % of a 256² tile's work;
# measured in docs/performance.md) while a large source still has dozens of chunks for many cores.
AUTO_FILES_PER_CHUNK = 128
AUTO_GROWTH = 4
AUTO_MIN_CHUNKS = 4
LEDGER_NAME = re.compile(r"(\d{4})\.json")


def chunk_count(n_files: int, files_per_chunk: int | str = "auto", kept: int | None = None) -> int:
    """K for `n_files`. `kept`: the K the source was last prepared with (`read_record`, `kept_chunk_count`). A source
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


def kept_chunk_count(ledgers: Path, n_files: int) -> int | None:
    """The old rule's K for `n_files` when the ledger folder `ledgers` was made with it: a ledger in its
    top half that today's rule does not make (a chunk id in [max(today's K, K/2), K)), and none of a
    K twice as large (the list then crossed a power of two: its chunks are made again anyway, with
    today's rule). Else None. Only ledger files count (not a folder or a temporary file); an empty top
    chunk only costs the keeping. Read at a source's first planning by this rule (see `read_record`)."""
    old = _power_of_two(_auto_wanted(n_files, AUTO_FILES_PER_CHUNK))
    low = max(chunk_count(n_files), old // 2)
    try:
        ids = [int(m[1]) for e in os.scandir(ledgers) if (m := LEDGER_NAME.fullmatch(e.name)) and e.is_file()]
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TilewiseError(f"cannot list the chunk ledgers in {ledgers} ({exc.strerror}): fix it and rerun") from None
    made_by_old = any(low <= i < old for i in ids) and not any(old <= i < 2 * old for i in ids)
    return old if made_by_old else None


def read_record(path: Path) -> int | None:
    """The chunk count of a source's last run that ran jobs (`write_record`, from Snakemake's `onstart`,
    after the DAG is built), or None. Every process of a run (a cluster job parses the workflow again,
    while running jobs' ledgers are deleted) and every later run plans with it, not with what the
    ledger folder shows at that moment; a dry-run, `--dag` or `--summary` writes none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TilewiseError(f"cannot read {path} ({exc.strerror}): fix it and rerun") from None
    if not re.fullmatch(r"[1-9]\d{0,4}\n?", text) or int(text) & (int(text) - 1):
        raise TilewiseError(
            f"{path} holds {text[:40]!r}, not a chunk count (a power of two): delete it, and the next run "
            "takes the count from the source's ledgers"
        )
    return int(text)


def write_record(path: Path, k: int) -> None:
    if read_record(path) == k:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{k}\n")
        os.replace(tmp, path)  # atomic: a process that plans meanwhile reads the old count or the new one
    except OSError as exc:
        raise TilewiseError(f"cannot write {path} ({exc.strerror}): fix it and rerun") from None


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
