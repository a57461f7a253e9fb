"""Unpack zip and 7z archives (also multi-volume .7z.001… and archives inside archives).

Archives are recognised by their first bytes, not their names. A member that would land outside
the target folder (absolute path, `..`, symlink) makes the whole archive fail: nothing is written.
py7zr (pure Python, maintained) reads 7z because the GDAL in the rasterio wheel has no /vsi7z/.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import multivolumefile
import py7zr

from tilewise.shared.errors import FileFailure

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVENZ_MAGIC = b"7z\xbc\xaf\x27\x1c"
MAX_DEPTH = 4


@dataclass(frozen=True)
class UnpackLimits:
    """Decompression-bomb caps, checked against the sizes an archive declares before anything is
    written (zipfile and py7zr then refuse to produce more than they declared)."""

    max_unpacked_bytes: int
    max_ratio: float  # unpacked / packed; an all-nodata float32 tile deflates ~1,000×

    @classmethod
    def from_config(cls, section: dict) -> UnpackLimits:
        """From the `unpack:` section of the config (its defaults live in config/config.yaml only)."""
        return cls(int(section["max_unpacked_gb"] * (1 << 30)), float(section["max_ratio"]))

    def check(self, archive: Path, packed: int, unpacked: int) -> None:
        if unpacked > self.max_unpacked_bytes:
            raise FileFailure(
                "unpack",
                f"{archive.name}: declares {unpacked:,} unpacked bytes, over the cap of "
                f"{self.max_unpacked_bytes:,} (unpack.max_unpacked_gb); refused",
            )
        if packed and unpacked / packed > self.max_ratio:
            raise FileFailure(
                "unpack",
                f"{archive.name}: would unpack {unpacked / packed:,.0f}× its size, over the "
                f"cap of {self.max_ratio:,.0f}× (unpack.max_ratio): a decompression bomb?",
            )


def archive_kind(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head == SEVENZ_MAGIC:
        return "7z"
    return None


def _check_member(name: str, archive: Path) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and posix.parts[0].endswith(":")):
        raise FileFailure(
            "unpack", f"{archive.name}: member {name!r} would be written outside the target folder; refused"
        )


def _unzip(path: Path, target: Path, limits: UnpackLimits) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member(info.filename, path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise FileFailure("unpack", f"{path.name}: member {info.filename!r} is a symlink; refused")
        limits.check(path, path.stat().st_size, sum(i.file_size for i in infos))
        zf.extractall(target)


def _un7z(volumes: list[Path], target: Path, limits: UnpackLimits) -> None:
    if len(volumes) > 1:
        # multivolumefile joins name.7z.0001… ; give it links with the names it expects
        base = volumes[0].with_name(volumes[0].name.rsplit(".", 1)[0])
        for i, vol in enumerate(volumes, start=1):
            os.replace(vol, base.with_name(f"{base.name}.{i:04d}"))
        with multivolumefile.open(base, mode="rb") as joined, py7zr.SevenZipFile(joined) as archive:
            _extract_7z(archive, base, target, limits, sum(v.stat().st_size for v in _volumes(base, len(volumes))))
        for vol in _volumes(base, len(volumes)):
            vol.unlink()
        return
    with py7zr.SevenZipFile(volumes[0]) as archive:
        _extract_7z(archive, volumes[0], target, limits, volumes[0].stat().st_size)


def _volumes(base: Path, n: int) -> list[Path]:
    return [base.with_name(f"{base.name}.{i:04d}") for i in range(1, n + 1)]


def _extract_7z(archive: py7zr.SevenZipFile, path: Path, target: Path, limits: UnpackLimits, packed: int) -> None:
    infos = archive.list()
    for info in infos:
        _check_member(info.filename, path)
        if info.is_symlink:
            raise FileFailure("unpack", f"{path.name}: member {info.filename!r} is a symlink; refused")
    limits.check(path, packed, sum(i.uncompressed or 0 for i in infos))
    archive.extractall(path=target)


def unpack(downloads: list[Path], target: Path, limits: UnpackLimits, depth: int = 0) -> None:
    """Unpack an archive set (one file, or the ordered volumes of one archive) into `target`.

    Archives are deleted once unpacked, nested ones unpack into `{name}-x/` beside them. A download
    that is not an archive is moved into `target` unchanged.
    """
    target.mkdir(parents=True, exist_ok=True)
    first = downloads[0]
    kind = archive_kind(first)
    if kind is None:
        if len(downloads) > 1:
            raise FileFailure("unpack", f"{first.name}: volumes of a multi-volume set, but not a 7z/zip archive")
        shutil.move(first, target / first.name)
        return
    if depth >= MAX_DEPTH:
        raise FileFailure("unpack", f"{first.name}: archives nested more than {MAX_DEPTH} deep; refused")
    try:
        if kind == "zip":
            if len(downloads) > 1:
                raise FileFailure(
                    "unpack", f"{first.name}: split zip archives are not supported; ask for a 7z or single zip"
                )
            _unzip(first, target, limits)
        else:
            _un7z(downloads, target, limits)
    except (zipfile.BadZipFile, py7zr.exceptions.ArchiveError, EOFError, OSError, ValueError) as exc:
        raise FileFailure("unpack", f"{first.name}: damaged {kind} archive ({type(exc).__name__}: {exc})") from exc
    for d in downloads:
        d.unlink(missing_ok=True)
    for path in sorted(target.rglob("*")):
        if path.is_file() and not path.is_symlink() and archive_kind(path):
            unpack([path], path.with_name(path.name + "-x"), limits, depth + 1)
