"""Mapterhorn's source tarball, made reproducible: fixed member order, times, owners and modes."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tilewise.shared.errors import TilewiseError
from tilewise.sources import bounds_csv as bounds_file
from tilewise.sources import failures_csv as failures_file

COPY_BUFFER = 8 << 20  # big reads and writes: the tarball is most of the source's bytes again


class _HashingWriter:
    """File wrapper that computes the md5 of what is written, so the tar is read only once.

    The md5 runs in one thread (in order; hashlib drops the GIL on large buffers) while the next
    block is read and written: the tarball costs about its md5 instead of md5 + copy.
    """

    def __init__(self, f):
        self.f, self.md5 = f, hashlib.md5()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="md5")
        self._pending: deque[Future] = deque()

    def write(self, data) -> int:
        if len(self._pending) >= 4:  # a few copy buffers in memory at most; a hashing error surfaces here
            self._pending.popleft().result()
        self._pending.append(self._hasher.submit(self.md5.update, bytes(data)))  # bytes: copy a mutable buffer
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def finish(self) -> str:
        """Wait for the hashing thread and return the md5 of everything written."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._hasher.shutdown(cancel_futures=True)
        return self.md5.hexdigest()


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = path.stat().st_size
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
    with open(path, "rb") as f:
        tar.addfile(info, f)


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
    failed = failures_file.read(failures_csv)
    if failed and not allow_incomplete:
        listing = "\n".join(f"  {r['file']} ({r['step']}): {r['error']}" for r in failed[:50])
        more = f"\n  … and {len(failed) - 50} more" if len(failed) > 50 else ""
        raise TilewiseError(
            f"source {source!r} is incomplete: {len(failed)} file(s) failed (see {failures_csv}):\n{listing}{more}\n"
            "Fix them and rerun, or set allow_incomplete: true to publish the tarball without them."
        )
    names = sorted(row["filename"] for row in bounds_file.read(bounds_csv))
    if not names:
        raise TilewiseError(f"source {source!r}: {bounds_csv} lists no COG; nothing to put in a tarball")
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(tar_path.name + ".tmp")
    try:
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
    except BaseException:
        tmp.unlink(missing_ok=True)  # a tarball is most of a source's bytes again: leave no partial one
        raise
    os.replace(tmp, tar_path)
    md5_path.write_text(f"{digest} {tar_path.name}\n")
    return digest
