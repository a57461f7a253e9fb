"""Mapterhorn's source tarball, made reproducible: fixed member order, times, owners and modes.

Every COG goes in only as its ledger describes it: sizes are compared before the first byte is
written, and each member's md5 is computed while it is copied; a COG that differs fails the
tarball (no partial tar is left) and removes its chunk's ledger, so that the
same command run again prepares that chunk again. Beside the tarball, the changes file says which of its
files were added, changed or removed since the tarball before (tilewise.sources.changes_csv).

Snakemake deletes a job's outputs before it runs and after it fails, so the last tarball built is
also kept as a hard link, `work/{source}/published/{md5}.tar`, beside the published state
(`work/{source}/published.json`: its md5 and changes file). When a run fails and a source's
tarball, md5 and changes file are all gone, `restore` links that tarball back and writes its md5
and changes file again from the state; the next run builds the tarball again (`damage` says why).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tilewise.shared.errors import TilewiseError
from tilewise.shared.file_md5 import file_md5
from tilewise.sources import bounds_csv as bounds_file
from tilewise.sources import changes_csv, ledger
from tilewise.sources import store_index as store_index_file

COPY_BUFFER = 8 << 20  # big reads and writes: the tarball is most of the source's bytes again


class _Md5Thread:
    """md5s computed in one thread of their own, in the order given, a few buffers behind the caller:
    hashlib drops the GIL on large buffers, so the hashing runs while the next block is read and
    written. The tarball's md5 has one, its members' md5s another: the copy costs about one md5."""

    def __init__(self, name: str, depth: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[Future] = deque()
        self._depth = depth

    def update(self, md5, data: bytes) -> None:
        if len(self._pending) >= self._depth:  # a few buffers in memory at most; a hashing error surfaces here
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(md5.update, data))

    def finish(self) -> None:
        """Wait until every buffer given is hashed; the thread ends."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(cancel_futures=True)


class _HashingWriter:
    """File wrapper that computes the md5 of what is written, so the tar is read only once."""

    def __init__(self, f):
        self.f, self.md5, self._thread = f, hashlib.md5(), _Md5Thread("tar-md5")

    def write(self, data) -> int:
        self._thread.update(self.md5, bytes(data))  # bytes: copy a mutable buffer
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def finish(self) -> str:
        """Wait for the hashing thread and return the md5 of everything written."""
        self._thread.finish()
        return self.md5.hexdigest()


class _HashingReader:
    """File wrapper that has the md5 of what the tar copies out of it computed in `thread`."""

    def __init__(self, f, thread: _Md5Thread):
        self.f, self.md5, self._thread = f, hashlib.md5(), thread

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self._thread.update(self.md5, data)
        return data


class MemberMismatch(TilewiseError):
    """A COG differs from its ledger record."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path = path


class _Members:
    """Adds files to the tar; the COGs' md5s are computed in their own thread and compared with
    their ledgers' once all are copied (`check`), before the tarball takes its place."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar, self._thread, self._expected = tar, _Md5Thread("member-md5"), []

    def add(self, path: Path, arcname: str, size: int | None = None, md5: str | None = None) -> None:
        info = tarfile.TarInfo(arcname)
        info.size = path.stat().st_size if size is None else size
        info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
        with open(path, "rb") as f:
            reader = _HashingReader(f, self._thread)
            try:
                self.tar.addfile(info, reader)
            except OSError as exc:  # shorter than its size: changed while it was copied
                raise MemberMismatch(path, str(exc)) from None
            if md5 is not None and f.read(1):
                raise MemberMismatch(path, f"longer than the {info.size:,} bytes its ledger says")
        if md5 is not None:
            self._expected.append((path, reader.md5, md5))

    def stop(self) -> None:
        """After a failure: end the hashing thread without comparing."""
        self._thread.finish()

    def check(self) -> None:
        self._thread.finish()
        for path, computed, md5 in self._expected:
            if computed.hexdigest() != md5:
                raise MemberMismatch(path, f"md5 {computed.hexdigest()}, its ledger says {md5}")


def _expected_members(ledgers: list[tuple[Path, ledger.Ledger]], bounds_csv: Path) -> dict[str, tuple[dict, Path]]:
    """Per COG: its ledger record and ledger. bounds.csv must be, byte for byte, what the ledgers' rows
    make (a file edited by hand after the merge is removed, so that the next run merges again)."""
    records = {out["filename"]: (out, path) for path, led in ledgers for out in led.outputs()}
    expected = bounds_file.text([out for out, _ in records.values()]).splitlines()
    found = bounds_csv.read_text(errors="replace").splitlines()
    if found != expected:
        odd = sorted(set(found) ^ set(expected), key=lambda line: line.split(",", 1)[0])
        bounds_csv.unlink(missing_ok=True)
        raise TilewiseError(
            f"{bounds_csv} and the chunk ledgers differ (changed after the merge?) in these rows:\n"
            + "".join(f"  {line}\n" for line in odd[:10])
            + "It was removed: run the same command again to merge the source again"
        )
    return records


def _check_sizes(store: Path, records: dict[str, tuple[dict, Path]]) -> None:
    """Before the first byte is written: every COG is there, with the size its ledger records."""
    wrong = {}
    for name, (out, path) in records.items():
        try:
            size = (store / name).stat().st_size
        except FileNotFoundError:
            wrong[store / name] = (path, "missing")
            continue
        if size != out["bytes"]:
            wrong[store / name] = (path, f"{size:,} bytes, its ledger says {out['bytes']:,}")
    if wrong:
        listing = "\n".join(f"  {cog}: {why}" for cog, (_, why) in list(wrong.items())[:20])
        raise ledger.discard(
            (p for p, _ in wrong.values()),
            f"COGs do not match their ledgers (deleted or changed after the run):\n{listing}",
        )


def build_tarball(
    source: str,
    license_pdf: Path,
    metadata_json: Path,
    bounds_csv: Path,
    coverage_gpkg: Path,
    store_index: Path,
    failures_csv: Path,
    store: Path,
    ledgers: list[Path],
    tar_path: Path,
    md5_path: Path,
    changes: Path,
    published: Path,
    allow_incomplete: bool,
    record: Path,
    kept: Path,
    legacy: Path | None = None,
) -> str:
    """`changes`: the changes file to write beside the tarball; `published`: the published state
    (what the next tarball is compared with, tilewise.sources.changes_csv); `record`: where the
    tarball's and its md5's sizes and times are kept (`damage` compares them); `kept`: the folder of
    the hard link to the tarball (`restore`); `legacy`: the published changes file an earlier
    version kept instead of the state (read when there is no state, then removed)."""
    ledgers_read = ledger.read_all(ledgers)
    failed = [rec for _, led in ledgers_read for rec in led.failures()]  # the ledgers', not an edited report's
    if failed and not allow_incomplete:
        listing = "\n".join(f"  {r['file']} ({r['step']}): {r['error']}" for r in failed[:50])
        more = f"\n  … and {len(failed) - 50} more" if len(failed) > 50 else ""
        raise TilewiseError(
            f"source {source!r} is incomplete: {len(failed)} file(s) failed (see {failures_csv}):\n{listing}{more}\n"
            "Fix them and rerun, or set allow_incomplete: true to publish the tarball without them."
        )
    records = _expected_members(ledgers_read, bounds_csv)
    store_index_file.check_coverage(store_index, coverage_gpkg)
    names = sorted(records)
    if not names:
        raise TilewiseError(f"source {source!r}: {bounds_csv} lists no COG; nothing to put in a tarball")
    _check_sizes(store, records)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(tar_path.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            writer = _HashingWriter(raw)
            try:
                with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as tar:
                    members = _Members(tar)
                    try:
                        members.add(license_pdf, "LICENSE.pdf")
                        members.add(metadata_json, "metadata.json")
                        members.add(bounds_csv, "bounds.csv")
                        members.add(coverage_gpkg, "coverage.gpkg")
                        for name in names:
                            out = records[name][0]
                            members.add(store / name, f"files/{name}", out["bytes"], out["md5"])
                    except BaseException:
                        members.stop()
                        raise
                    members.check()
            finally:
                digest = writer.finish()
    except MemberMismatch as exc:
        tmp.unlink(missing_ok=True)
        why = f"a COG does not match its ledger (changed after the run): {exc}"
        raise ledger.discard([records[exc.path.name][1]], why) from None
    except BaseException:
        tmp.unlink(missing_ok=True)  # a tarball is most of a source's bytes again: leave no partial one
        raise
    try:
        kept_record = json.loads(record.read_bytes()).get("md5_text")
    except (OSError, ValueError, AttributeError):
        kept_record = None
    kept_digest, kept_changes = changes_csv.load_state(published, legacy, kept_record)
    if digest == kept_digest:  # the published tarball built again: its changes file is the one its build wrote
        text = kept_changes
    else:
        after = {
            name: {"md5": out["md5"], **{k: out[k] for k in changes_csv.BOUNDS}} for name, (out, _) in records.items()
        }
        text = changes_csv.text(changes_csv.compare(changes_csv.files(kept_changes), after))
    os.replace(tmp, tar_path)
    md5_path.write_text(f"{digest} {tar_path.name}\n")
    _write_record(record, tar_path, md5_path, [license_pdf, metadata_json], text)
    changes_csv.write_text(text, changes)
    # the state moves on last: a kill before it compares the rebuilt tarball with the one before, after
    # it the same tarball gets the same changes file
    link = _keep(tar_path, kept, digest)
    changes_csv.save_state(published, digest, text)
    if legacy is not None:
        legacy.unlink(missing_ok=True)
    for old in kept.glob("*.tar*"):  # the tarball before (and a link a killed build left)
        if old != link:
            old.unlink(missing_ok=True)
    (kept / RESTORED).unlink(missing_ok=True)
    return digest


RESTORED = "restored"  # in the kept folder: the tarball in tar-store/ was linked back after a failed build


def _keep(tar_path: Path, kept: Path, digest: str) -> Path | None:
    """Hard-link the tarball as `kept/{digest}.tar` (no copy: no bytes are written); None where it
    cannot be linked (another file system), and then no tarball is kept to restore."""
    kept.mkdir(parents=True, exist_ok=True)
    link, tmp = kept / f"{digest}.tar", kept / f"{digest}.tar.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(tar_path, tmp)
    except OSError as exc:
        print(f"tilewise: {tar_path} cannot be kept as a hard link in {kept} ({exc}): a failed build loses it")
        return None
    os.replace(tmp, link)
    return link


def restore(tar_path: Path, md5_path: Path, changes: Path, published: Path, kept: Path) -> bool:
    """After a failed run: when the tarball, its md5 and its changes file are all gone (Snakemake
    removes a failed job's outputs), link the last tarball built back and write its md5 and changes
    file from the published state. The next run builds the tarball again (`damage`). True if restored."""
    if tar_path.exists() or md5_path.exists() or changes.exists():
        return False
    digest, text = changes_csv.load_state(published)
    link = kept / f"{digest}.tar"
    if digest is None or not link.is_file() or file_md5(link) != digest:
        return False  # a link shares its tarball's bytes: one rewritten in place is not brought back
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    os.link(link, tar_path)
    md5_path.write_text(f"{digest} {tar_path.name}\n")
    changes_csv.write_text(text, changes)
    (kept / RESTORED).write_text("")
    return True


def _write_record(record: Path, tar_path: Path, md5_path: Path, catalog_files: list[Path], changes_text: str) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(record.name + ".tmp")
    kept = {
        "tar_bytes": tar_path.stat().st_size,
        "md5_text": md5_path.read_text(),
        "changes_md5": _text_md5(changes_text),
        "catalog_md5": {p.name: file_md5(p) for p in catalog_files},
    }
    tmp.write_text(json.dumps(kept))
    os.replace(tmp, record)


def _text_md5(text: str) -> str:
    """The md5 of a changes file's text, as the build writes it and `damage` reads it back."""
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


def damage(
    tar_path: Path,
    md5_path: Path,
    record: Path,
    catalog_files: list[Path],
    kept: Path | None = None,
    changes: Path | None = None,
) -> str | None:
    """Why a built tarball must be built again: it or its md5 was deleted or changed after the build,
    or its `changes` file edited (an uploader follows it; Snakemake never reruns a job for an output
    edited after it, and the build writes it again from the published state),
    or linked back after a failed build (`kept`: the folder of its hard link, see `restore`), or a
    catalog file it ships (`catalog_files`: LICENSE.pdf, metadata.json) has other bytes now (a
    copy that kept an older time is not newer than the tarball: Snakemake alone would not see it).
    The record the build kept has the tar's size, the md5 file's text and the catalog files' md5s;
    times are compared only as an order (Snakemake touches a job's outputs after it, in order: the
    tar is never newer than its md5 unless it was written again)."""
    if not tar_path.exists() and not md5_path.exists():
        return None  # never built, or both removed: Snakemake builds it
    if kept is not None and (kept / RESTORED).exists():
        return f"{tar_path} is the previous tarball, linked back after a failed build"
    try:
        tar, md5_text, md5_time = tar_path.stat(), md5_path.read_text(errors="replace"), md5_path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        return f"{exc.filename} was deleted"
    try:
        kept = json.loads(record.read_bytes())
    except (OSError, ValueError):
        kept = {}  # a work folder deleted, or a tarball of an earlier version: the order still tells
    if kept.get("tar_bytes") not in (None, tar.st_size):
        return f"{tar_path} changed size ({kept['tar_bytes']:,} → {tar.st_size:,} bytes) after the build"
    if kept.get("md5_text") not in (None, md5_text):
        return f"{md5_path} was edited after the build"
    if changes is not None and kept.get("changes_md5") is not None and changes.is_file():
        with open(changes, newline="", errors="replace") as f:  # read as changes_csv writes it
            text = f.read()
        if _text_md5(text) != kept["changes_md5"]:
            return f"{changes} was edited after the build"
    if tar.st_mtime_ns > md5_time:
        return f"{tar_path} was written after its md5 {md5_path}"
    recorded = kept.get("catalog_md5", {})
    for path in catalog_files:
        if path.name in recorded and path.is_file() and file_md5(path) != recorded[path.name]:
            return f"{path} has other bytes than the tarball ships"
    return None
