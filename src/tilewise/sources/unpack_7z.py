"""7z archives and multi-volume 7z sets, for tilewise.sources.unpack (imported only when a 7z is met).

py7zr extracts through a counting writer, so every byte is taken from the download's budget before
it is written and an archive that lies about its sizes stops at the cap."""

from __future__ import annotations

import os
from pathlib import Path

import multivolumefile
import py7zr
import py7zr.io

from tilewise.shared.errors import FileFailure
from tilewise.sources.unpack import (
    MEMBER_BYTES,
    _Budget,
    _check_member,
    _inside,
    _refuse_repeats,
    _refuse_unaccounted,
)


class _CountedFile(py7zr.io.Py7zIO):
    """A 7z member written to disk, every byte taken from the budget before it is written."""

    def __init__(self, path: Path, budget: _Budget):
        budget.take(MEMBER_BYTES)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.budget, self.f, self.n = budget, open(path, "wb"), 0

    def write(self, s: bytes | bytearray) -> int:
        self.budget.take(len(s))
        self.n += len(s)
        return self.f.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def flush(self) -> None:
        self.f.flush()

    def size(self) -> int:
        return self.n

    def close(self) -> None:
        self.f.close()


class _CountedFiles(py7zr.io.WriterFactory):
    def __init__(self, target: Path, archive: Path, budget: _Budget):
        self.target, self.archive, self.budget = target, archive, budget

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        path = Path(filename)
        if not path.resolve().is_relative_to(self.target.resolve()):
            raise FileFailure("unpack", f"{self.archive.name}: member {filename!r} would be written outside the target")
        return _CountedFile(path, self.budget)


def _un7z(volumes: list[Path], target: Path, budget: _Budget) -> None:
    _refuse_unaccounted(volumes[0], after=_after_end(volumes))
    if len(volumes) > 1:
        # multivolumefile joins name.7z.0001… ; give it links with the names it expects
        base = volumes[0].with_name(volumes[0].name.rsplit(".", 1)[0])
        for i, vol in enumerate(volumes, start=1):
            os.replace(vol, base.with_name(f"{base.name}.{i:04d}"))
        with multivolumefile.open(base, mode="rb") as joined, py7zr.SevenZipFile(joined) as archive:
            _extract_7z(archive, base, target, budget)
        for vol in _volumes(base, len(volumes)):
            vol.unlink()
        return
    with py7zr.SevenZipFile(volumes[0]) as archive:
        _extract_7z(archive, volumes[0], target, budget)


def un7z(volumes: list[Path], target: Path, budget: _Budget) -> None:
    try:
        _un7z(volumes, target, budget)
    except py7zr.exceptions.PasswordRequired as exc:
        raise FileFailure("unpack", f"{volumes[0].name}: the 7z archive is encrypted (no password to open it)") from exc


def _after_end(volumes: list[Path]) -> int:
    """The bytes of the (joined) volumes after the end their 7z signature header gives: 32 bytes, then
    the next header's offset and size (little-endian, at bytes 12 and 20)."""
    with open(volumes[0], "rb") as f:
        head = f.read(32)
    if len(head) < 32:
        return 0  # too short to be whole: py7zr says it is damaged
    end = 32 + int.from_bytes(head[12:20], "little") + int.from_bytes(head[20:28], "little")
    return max(0, sum(v.stat().st_size for v in volumes) - end)


def _volumes(base: Path, n: int) -> list[Path]:
    return [base.with_name(f"{base.name}.{i:04d}") for i in range(1, n + 1)]


def _extract_7z(archive: py7zr.SevenZipFile, path: Path, target: Path, budget: _Budget) -> None:
    infos = archive.list()
    for info in infos:
        _check_member(info.filename, path)
        if info.is_symlink:
            raise FileFailure("unpack", f"{path.name}: member {info.filename!r} is a symlink; refused")
    _refuse_repeats([_inside(target, i.filename, path).relative_to(target) for i in infos if not i.is_directory], path)
    budget.check_declared(path, sum((i.uncompressed or 0) + MEMBER_BYTES for i in infos))
    target = target.absolute()
    for info in infos:  # the counting writer makes files only; folders (empty ones too) are made here
        if info.is_directory:
            budget.take(MEMBER_BYTES)
            _inside(target, info.filename, path).mkdir(parents=True, exist_ok=True)
    archive.extractall(path=target, factory=_CountedFiles(target, path, budget))
