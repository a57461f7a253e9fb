"""Mapterhorn's source tarball, made reproducible: fixed member order, times, owners and modes."""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import tarfile
import threading
from pathlib import Path

from tilewise.errors import TilewiseError

COPY_BUFFER = 8 << 20  # big reads and writes: the tarball is most of the source's bytes again


class _HashingWriter:
    """File wrapper that computes the md5 of what is written, so the tar is read only once.

    The md5 runs in a thread (hashlib drops the GIL on large buffers) while the next member is
    read and written: the tarball costs about its md5 instead of md5 + copy.
    """

    def __init__(self, f):
        self.f, self.md5 = f, hashlib.md5()
        self._blocks: queue.Queue = queue.Queue(maxsize=4)  # at most a few copy buffers in memory
        self._hasher = threading.Thread(target=self._hash, name="md5", daemon=True)
        self._hasher.start()

    def _hash(self) -> None:
        while (block := self._blocks.get()) is not None:
            self.md5.update(block)

    def write(self, data) -> int:
        self._blocks.put(bytes(data))  # a copy only if the caller passed a mutable buffer
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def finish(self) -> str:
        """Wait for the hashing thread and return the md5 of everything written."""
        self._blocks.put(None)
        self._hasher.join()
        return self.md5.hexdigest()


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = path.stat().st_size
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
    with open(path, "rb") as f:
        tar.addfile(info, f)


def failed_files(failures_csv: Path) -> list[dict]:
    with open(failures_csv, newline="") as f:
        return list(csv.DictReader(f))


def build_tarball(
    source: str,
    license_pdf: Path,
    metadata_json: Path,
    bounds_csv: Path,
    coverage_gpkg: Path,
    failures_csv: Path,
    store: Path,
    tar_path: Path,
    md5_path: Path,
    allow_incomplete: bool,
) -> str:
    failed = failed_files(failures_csv)
    if failed and not allow_incomplete:
        listing = "\n".join(f"  {r['file']} ({r['step']}): {r['error']}" for r in failed[:50])
        more = f"\n  … and {len(failed) - 50} more" if len(failed) > 50 else ""
        raise TilewiseError(
            f"source {source!r} is incomplete: {len(failed)} file(s) failed (see {failures_csv}):\n{listing}{more}\n"
            "Fix them and rerun, or set allow_incomplete: true to publish the tarball without them."
        )
    with open(bounds_csv, newline="") as f:
        names = sorted(row["filename"] for row in csv.DictReader(f))
    if not names:
        raise TilewiseError(f"source {source!r}: {bounds_csv} lists no COG; nothing to put in a tarball")
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(tar_path.name + ".tmp")
    with open(tmp, "wb") as raw:
        writer = _HashingWriter(raw)
        try:
            with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as tar:
                _add(tar, license_pdf, "LICENSE.pdf")
                _add(tar, metadata_json, "metadata.json")
                _add(tar, bounds_csv, "bounds.csv")
                _add(tar, coverage_gpkg, "coverage.gpkg")
                for name in names:
                    _add(tar, store / name, f"files/{name}")
        finally:
            digest = writer.finish()
    os.replace(tmp, tar_path)
    md5_path.write_text(f"{digest} {tar_path.name}\n")
    return digest
