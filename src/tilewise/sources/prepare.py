"""One chunk of a source, end to end, in one process: download → unpack → recipe → COG → bounds, coverage.

Downloads run in a small thread pool a few archive sets ahead of the conversion, so the network
and the CPU overlap while at most `connections + 1` sets sit on disk. Every set is deleted as
soon as its COGs are written. The result is the chunk's ledger: for every file of the chunk,
either its COGs (bounds row, coverage polygon, md5) or its failure (step, error). COGs are
written under a scratch name and renamed into the store only when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio

from tilewise.shared.download import DownloadSettings, RemoteState, fetch, make_pool
from tilewise.shared.errors import DiskFull, FileFailure
from tilewise.shared.job import check_room, disk_full
from tilewise.sources import ledger, rasters
from tilewise.sources.catalog import FileEntry
from tilewise.sources.ledger import Ledger
from tilewise.sources.recipe import Recipe
from tilewise.sources.unpack import UnpackLimits, unpack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkJob:
    source: str
    chunk: str
    files: tuple[FileEntry, ...]
    entry_dir: Path  # catalog entry: plain paths in file_list.txt are relative to it
    recipe: Recipe
    store: Path  # source-store/{source}
    scratch: Path  # work/{source}/scratch/{chunk}
    ledger: Path
    download: DownloadSettings
    limits: UnpackLimits


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


def _pixel_bytes(piece: rasters.Piece) -> int:
    """The most a COG of `piece` can take: its pixels uncompressed, plus headers and slack."""
    try:
        with rasterio.open(piece.raster) as ds:
            width, height = (piece.window.width, piece.window.height) if piece.window else (ds.width, ds.height)
            pixels = int(width * height * ds.count * np.dtype(ds.dtypes[0]).itemsize)
    except Exception:  # unreadable: the failure is the file's, whatever the disk
        return 0
    return pixels + pixels // 64 + (1 << 20)


def _archive_sets(files: tuple[FileEntry, ...]) -> list[list[FileEntry]]:
    sets: dict[str, list[FileEntry]] = {}
    for entry in files:
        sets.setdefault(entry.group, []).append(entry)
    return [sorted(v, key=lambda e: e.name) for v in sets.values()]


def _download_folder(job: ChunkJob, members: list[FileEntry]) -> Path:
    return job.scratch / "download" / members[0].group


def _download_set(job: ChunkJob, members: list[FileEntry], pool) -> list[RemoteState]:
    """Each member's validators and sha256, for its record (a later refresh compares them)."""
    folder = _download_folder(job, members)
    return [fetch(e.url, folder / e.name, e.local_path(job.entry_dir), job.download, pool) for e in members]


def _downloads_ahead(job: ChunkJob, sets: list[list[FileEntry]]) -> Iterator[tuple[list[FileEntry], Future]]:
    """Yield each set with its download future, keeping only a few downloads ahead."""
    ahead = job.download.connections + 1
    pool = make_pool(job.download, maxsize=job.download.connections)
    with ThreadPoolExecutor(max_workers=job.download.connections, thread_name_prefix="download") as ex:
        futures: list[Future] = []
        for i, members in enumerate(sets):
            while len(futures) < min(i + ahead + 1, len(sets)):
                futures.append(ex.submit(_download_set, job, sets[len(futures)], pool))
            yield members, futures[i]


def _convert_set(job: ChunkJob, members: list[FileEntry], downloads: list[Path]) -> list[dict]:
    group = members[0].group
    unpacked = job.scratch / "unpacked" / group
    with failing_as("unpack", group):  # anything an archive library raises on a hostile or damaged file
        unpack(downloads, unpacked, job.limits)
    found = rasters.find_rasters(unpacked)
    if not found:
        raise FileFailure("unpack", f"{group}: no raster GDAL can read was found in it")
    outputs: list[dict] = []
    written: list[Path] = []
    try:
        for raster in found:
            for piece in rasters.plan_pieces(raster, job.recipe):
                if piece.name in job.recipe.exclude or rasters.window_is_empty(piece, job.recipe):
                    continue
                if any(o["filename"] == piece.name for o in outputs):
                    raise FileFailure("convert", f"{group}: two rasters inside it both become {piece.name}")
                tmp = job.scratch / "cog" / piece.name
                tmp.parent.mkdir(parents=True, exist_ok=True)
                with failing_as("convert", raster.name):
                    try:
                        rasters.write_cog(piece, job.recipe, tmp)
                    except Exception:  # GDAL does not say ENOSPC: a failure on a disk without room is not trusted
                        tmp.unlink(missing_ok=True)
                        check_room(tmp.parent, _pixel_bytes(piece), f"{group}: writing the COG {piece.name}")
                        raise
                row, geom, crs = rasters.describe(tmp)
                row["filename"] = piece.name
                final = job.store / piece.name
                os.replace(tmp, final)  # atomic: no partial COG ever has its final name
                written.append(final)
                outputs.append(
                    {
                        **row,
                        "crs": crs,
                        "coverage_wkb": geom.wkb_hex,
                        "bytes": final.stat().st_size,
                        "raster": str(raster.relative_to(unpacked)),
                    }
                )
    except BaseException:
        for path in written:  # a file succeeds whole or not at all
            path.unlink(missing_ok=True)
        raise
    if not outputs:
        raise FileFailure("convert", f"{group}: every raster in it was excluded by the recipe or empty")
    return outputs


def run_chunk(job: ChunkJob) -> Ledger:
    """Process every file of the chunk; write and return its ledger. A full disk fails the job."""
    shutil.rmtree(job.scratch, ignore_errors=True)  # leftovers of a killed run (the job lock says it is dead)
    job.store.mkdir(parents=True, exist_ok=True)
    try:
        records = _process_files(job)
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)  # also after a failure: a full disk needs the room back
    record = Ledger(job.source, job.chunk, job.recipe.as_dict(), records)
    ledger.write(job.ledger, record)
    return record


def _process_files(job: ChunkJob) -> list[dict]:
    records: list[dict] = []
    for members, future in _downloads_ahead(job, _archive_sets(job.files)):
        base = [{"line": e.line, "url": e.url, "file": e.name} for e in members]
        try:
            with failing_as("download", members[0].group):
                remote = future.result()
            base = [{**rec, "remote": asdict(state)} for rec, state in zip(base, remote, strict=True)]
            outputs = _convert_set(job, members, [_download_folder(job, members) / e.name for e in members])
            log.info("%s: %d COG(s)", members[0].group, len(outputs))
            for i, rec in enumerate(base):  # the first volume of a set carries its outputs
                records.append({**rec, "status": "ok", "outputs": outputs if i == 0 else []})
        except FileFailure as failure:
            log.error("%s failed at %s: %s", members[0].group, failure.step, failure)
            records.extend({**rec, "status": "failed", "step": failure.step, "error": str(failure)} for rec in base)
        finally:
            shutil.rmtree(_download_folder(job, members), ignore_errors=True)
            shutil.rmtree(job.scratch / "unpacked" / members[0].group, ignore_errors=True)
    return records
