"""One chunk of a source, end to end, in one process: download → unpack → recipe → COG → bounds, coverage.

Downloads run in a thread pool of `connections` ahead of the conversion, as far as a byte budget
(`download.ahead_mb`) for downloaded but unconverted files allows, so the network and the CPU
overlap on slow servers while the disk stays bounded. Every set is deleted as soon as its COGs
are written. The result is the chunk's ledger: for every file of the chunk,
either its COGs (bounds row, coverage polygon, bytes, md5, where it came from) or its failure
(step, error), or its exclusion by the recipe, and the rasters it skipped or converted with a
warning. COGs are written under a scratch name and renamed, once complete, into the chunk's own
staging folder: a chunk never writes into source-store/, so it cannot overwrite another chunk's
COG of the same name; the merge moves them into the store after it has seen every chunk's names.
The steps from unpacking to the staged COG are sources/convert_set.py's.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from tilewise.shared.download import Offer, Pieces, RemoteState, fetch, make_pool
from tilewise.shared.errors import FileFailure
from tilewise.sources import convert_set, ledger
from tilewise.sources.catalog import FileEntry
from tilewise.sources.chunk_job import ChunkJob, failing_as
from tilewise.sources.ledger import Ledger
from tilewise.sources.raster_find import Note

log = logging.getLogger(__name__)


def _archive_sets(files: tuple[FileEntry, ...]) -> list[list[FileEntry]]:
    sets: dict[str, list[FileEntry]] = {}
    for entry in files:
        sets.setdefault(entry.group, []).append(entry)
    return [sorted(v, key=lambda e: e.name) for v in sets.values()]


def _download_folder(job: ChunkJob, members: list[FileEntry]) -> Path:
    return job.scratch / "download" / members[0].group


def _download_set(
    job: ChunkJob, members: list[FileEntry], pool, offers: Callable[[int], Offer | None]
) -> list[RemoteState]:
    """Each member's validators and md5, for its record (a later refresh compares them)."""
    folder = _download_folder(job, members)
    return [
        fetch(
            e.url,
            folder / e.name,
            e.local_path(job.entry_dir),
            job.download,
            pool,
            offers(i),
            job.limits.max_unpacked_bytes,
        )
        for i, e in enumerate(members)
    ]


class _DownloadsAhead:
    """Downloads of a chunk's sets, in order, as far ahead of the conversion as the byte budget allows.

    Up to `connections` requests run at once (the job's `net` resource); a new set starts when a
    connection is free, while the finished but unconverted downloads hold less than `ahead_mb`
    (the ones in flight come on top). The set the conversion waits for always starts, so a budget
    smaller than one file still makes progress. On a slow server the connections stay busy while the
    CPU converts; on a fast one the disk holds at most budget + `connections` files.

    A file of at least two `piece_mb` comes in pieces (shared/download.py `Pieces`): a free connection
    takes the next piece of the earliest file before it starts another set, so files arrive in list
    order, each over many connections, and the conversion waits for the first file a fraction of the
    time one connection takes. Sets start only while the files whose first answer is still to come
    would find connections for the pieces they are expected to have (as many as the last file had).
    """

    def __init__(self, job: ChunkJob, sets: list[list[FileEntry]], ex: ThreadPoolExecutor, pool):
        self.job, self.sets, self.ex, self.pool = job, sets, ex, pool
        self.connections = job.download.connections
        self.budget = job.download.ahead_mb * 1e6
        # one connection has nothing to share: its files come whole
        self.piece_bytes = int(job.download.piece_mb * 1e6) if self.connections > 1 else 0
        self.lock = threading.Lock()
        self.futures: list[Future] = []
        self.running = 0  # requests in flight: set downloads and pieces
        self.waiting_bytes: dict[int, int] = {}  # downloaded, not yet converted: set number → bytes
        self.wanted = 0  # the set the conversion needs next
        self.closed = False
        self.unanswered = 0  # downloads whose first answer has not come
        self.per_file = self.connections  # pieces a file is expected to take: unknown before the first answer
        self.offered: list[tuple[int, Pieces]] = []  # files with pieces, earliest set first

    def _start_more(self) -> None:
        sets, pieces = [], []
        with self.lock:  # submitted under the lock: once `close` has run, nothing more is
            while not self.closed:
                if self.running < self.connections and (piece := self._next_piece()):
                    owner, span = piece
                    try:
                        pieces.append(self.ex.submit(owner.run, span))
                    except RuntimeError:  # the executor is shutting down: the piece will not run
                        owner.give_back(span)
                        break
                elif self._may_start_set():
                    number = len(self.futures)
                    offer = self._offer_locked(number) if self.piece_bytes else None
                    offers = functools.partial(self._first_offer, number, offer)
                    self.futures.append(self.ex.submit(_download_set, self.job, self.sets[number], self.pool, offers))
                    sets.append(number)
                else:
                    break
                self.running += 1
        for number in sets:  # outside the lock: a download already done runs its callback right here
            self.futures[number].add_done_callback(lambda f, n=number: self._ended(n, f))
        for future in pieces:
            future.add_done_callback(self._piece_ended)

    def _next_piece(self) -> tuple[Pieces, tuple[int, int]] | None:
        while self.offered:
            owner = self.offered[0][1]
            if span := owner.claim():
                return owner, span
            self.offered.pop(0)
        return None

    def _may_start_set(self) -> bool:
        """The next set may start: the conversion waits for it (whatever else runs), or a connection
        is free, the budget has room and the pieces of files not yet answered would find connections."""
        number = len(self.futures)
        if number >= len(self.sets):
            return False
        if number <= self.wanted:
            return True
        return (
            sum(self.waiting_bytes.values()) < self.budget
            and self.running + 1 + self.unanswered * (self.per_file - 1) <= self.connections
        )

    def _first_offer(self, number: int, first: Offer | None, member: int) -> Offer | None:
        if member == 0 or not self.piece_bytes:
            return first
        with self.lock:
            return self._offer_locked(number)

    def _offer_locked(self, number: int) -> Offer:
        self.unanswered += 1
        return Offer(self.piece_bytes, functools.partial(self._answered, number))

    def _answered(self, number: int, pieces: Pieces | None) -> None:
        with self.lock:
            self.unanswered -= 1
            self.per_file = 1 if pieces is None else -(-pieces.total // pieces.piece_bytes)
            if pieces is not None:
                self.offered.append((number, pieces))
                self.offered.sort(key=lambda item: item[0])
        self._start_more()

    def _piece_ended(self, _: Future) -> None:
        with self.lock:
            self.running -= 1
        self._start_more()

    def _ended(self, number: int, future: Future) -> None:
        with self.lock:
            self.running -= 1
            if number >= self.wanted and not future.exception():
                self.waiting_bytes[number] = sum(state.size or 0 for state in future.result())
        self._start_more()

    def get(self, number: int) -> Future:
        """The download of set `number` (the sets before it are converted and deleted)."""
        with self.lock:
            self.wanted = number
            for done in [n for n in self.waiting_bytes if n < number]:
                del self.waiting_bytes[done]
        self._start_more()
        return self.futures[number]

    def close(self) -> None:
        with self.lock:
            self.closed = True


def _downloads_ahead(job: ChunkJob, sets: list[list[FileEntry]]) -> Iterator[tuple[list[FileEntry], Future]]:
    """Yield each set with its download future (see _DownloadsAhead)."""
    pool = make_pool(job.download, maxsize=job.download.connections)
    with ThreadPoolExecutor(max_workers=job.download.connections, thread_name_prefix="download") as ex:
        ahead = _DownloadsAhead(job, sets, ex, pool)
        try:
            for number, members in enumerate(sets):
                yield members, ahead.get(number)
        finally:
            ahead.close()


def _skipped(notes: list[Note]) -> dict:
    """The ledger's per-file list of rasters skipped or converted with a warning (absent when none)."""
    return {"skipped": [n.as_dict() for n in notes]} if notes else {}


def run_chunk(job: ChunkJob) -> Ledger:
    """Process every file of the chunk; write and return its ledger. A full disk fails the job."""
    for leftover in (job.scratch, job.staging):  # of a killed run (the job lock says it is dead), or a previous run
        shutil.rmtree(leftover, ignore_errors=True)
    job.staging.mkdir(parents=True)
    try:
        records = _process_files(job)
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)  # also after a failure: a full disk needs the room back
    record = Ledger(job.source, job.chunk, job.recipe.as_dict(), records, job.inputs)
    ledger.write(job.ledger, record)
    return record


def _process_files(job: ChunkJob) -> list[dict]:
    records: list[dict] = []
    sets = _archive_sets(job.files)
    wanted = [m for m in sets if not job.recipe.excludes(*(e.name for e in m))]
    for members in sets:
        if members not in wanted:  # the recipe drops the download itself: not even fetched
            records += [{"url": e.url, "file": e.name, "status": "excluded", "excluded": [e.name]} for e in members]
    with convert_set.gdal_env():
        for number, (members, future) in enumerate(_downloads_ahead(job, wanted)):
            records += _set_records(job, number, members, future)
    return records


def _set_records(job: ChunkJob, number: int, members: list[FileEntry], future: Future) -> list[dict]:
    """The records of one set's files: their outputs, their exclusion or their failure. Its download
    and unpacked files are deleted whatever happens."""
    base = [{"url": e.url, "file": e.name} for e in members]
    try:
        with failing_as("download", members[0].group):
            remote = future.result()
        base = [{**rec, "remote": asdict(state)} for rec, state in zip(base, remote, strict=True)]
        downloads = [_download_folder(job, members) / e.name for e in members]
        outputs, notes, excluded = convert_set.convert_set(job, number, members, downloads)
        log.info("%s: %d COG(s), %d note(s)", members[0].group, len(outputs), len(notes))
        status = "ok" if outputs or not excluded else "excluded"
        records = []
        for i, rec in enumerate(base):  # the first volume of a set carries its outputs and notes
            mine = (outputs, excluded, notes) if i == 0 else ([], [], [])
            records.append({**rec, "status": status, "outputs": mine[0], "excluded": mine[1]} | _skipped(mine[2]))
        return records
    except FileFailure as failure:
        log.error("%s failed at %s: %s", members[0].group, failure.step, failure)
        failed = {"status": "failed", "step": failure.step, "error": str(failure)}
        notes = getattr(failure, "notes", [])  # a download whose rasters were all skipped says why
        return [{**rec, **failed, **_skipped(notes if i == 0 else [])} for i, rec in enumerate(base)]
    finally:
        shutil.rmtree(_download_folder(job, members), ignore_errors=True)
        shutil.rmtree(job.scratch / "unpacked" / members[0].group, ignore_errors=True)
