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
from pathlib import Path, PurePosixPath

import multivolumefile
import py7zr

from tilewise.errors import FileFailure

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVENZ_MAGIC = b"7z\xbc\xaf\x27\x1c"
MAX_DEPTH = 4


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


def _unzip(path: Path, target: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            _check_member(info.filename, path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise FileFailure("unpack", f"{path.name}: member {info.filename!r} is a symlink; refused")
        zf.extractall(target)


def _un7z(volumes: list[Path], target: Path) -> None:
    if len(volumes) > 1:
        # multivolumefile joins name.7z.0001… ; give it links with the names it expects
        base = volumes[0].with_name(volumes[0].name.rsplit(".", 1)[0])
        for i, vol in enumerate(volumes, start=1):
            os.replace(vol, base.with_name(f"{base.name}.{i:04d}"))
        with multivolumefile.open(base, mode="rb") as joined, py7zr.SevenZipFile(joined) as archive:
            _extract_7z(archive, base, target)
        for i in range(1, len(volumes) + 1):
            base.with_name(f"{base.name}.{i:04d}").unlink()
        return
    with py7zr.SevenZipFile(volumes[0]) as archive:
        _extract_7z(archive, volumes[0], target)


def _extract_7z(archive: py7zr.SevenZipFile, path: Path, target: Path) -> None:
    for info in archive.list():
        _check_member(info.filename, path)
        if info.is_symlink:
            raise FileFailure("unpack", f"{path.name}: member {info.filename!r} is a symlink; refused")
    archive.extractall(path=target)


def unpack(downloads: list[Path], target: Path, depth: int = 0) -> None:
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
            _unzip(first, target)
        else:
            _un7z(downloads, target)
    except (zipfile.BadZipFile, py7zr.exceptions.ArchiveError, EOFError, OSError, ValueError) as exc:
        raise FileFailure("unpack", f"{first.name}: damaged {kind} archive ({type(exc).__name__}: {exc})") from exc
    for d in downloads:
        d.unlink(missing_ok=True)
    for path in sorted(target.rglob("*")):
        if path.is_file() and not path.is_symlink() and archive_kind(path):
            unpack([path], path.with_name(path.name + "-x"), depth + 1)
