"""Unpack zip, 7z and tar archives and gzip/bzip2/xz streams (also multi-volume .7z.001…, volumes
inside an archive, and archives inside archives).

Archives are recognised by their first bytes, not their names. A member that would land outside
the target folder (absolute path, `..`, symlink or device) or that shares its path with another
member (an archive that holds two files under one name) makes the whole archive fail:
nothing is written. A tar hard link is a copy of the member it names. Member names are those
unzip writes (see `_zip_name`); backslashes in the names of a zip made on Windows are folders, as
unzip reads them. py7zr (pure Python, maintained) reads 7z
because the GDAL in the rasterio wheel has no /vsi7z/; the standard library reads tar and the
compressed streams (a `.tar.gz` is a gzip stream holding a tar: the stream is decompressed beside
it, then the tar is unpacked as an archive inside; a `dem.tif.gz` inside an archive becomes `dem.tif`
where it lay, beside its sidecars).
"""

from __future__ import annotations

import bz2
import lzma
import posixpath
import shutil
import stat
import struct
import sys
import tarfile
import threading
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from tilewise.shared.errors import FileFailure
from tilewise.shared.job import disk_full
from tilewise.sources.catalog import archive_group

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVENZ_MAGIC = b"7z\xbc\xaf\x27\x1c"
# single compressed streams: the decompressor of one stream, and the suffixes the decompressed file
# loses (or becomes .tar)
STREAMS = {
    "gzip": (b"\x1f\x8b", partial(zlib.decompressobj, wbits=31), {".gz": "", ".tgz": ".tar"}),
    "bzip2": (b"BZh", bz2.BZ2Decompressor, {".bz2": "", ".tbz2": ".tar", ".tbz": ".tar"}),
    "xz": (b"\xfd7zXZ\x00", partial(lzma.LZMADecompressor, format=lzma.FORMAT_XZ), {".xz": "", ".txz": ".tar"}),
}
TAR_MAGIC_OFFSET, TAR_MAGIC = 257, b"ustar"
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, zlib.error)
MAX_DEPTH = 4
_EOCD = b"PK\x05\x06"  # a zip's end-of-central-directory record: 22 bytes and a comment of up to 64 KiB
_EOCD_SEARCH = 22 + 0xFFFF
_UTF8_FLAG = 0x800  # general purpose bit 11 (EFS): the name is UTF-8
_UNICODE_PATH = 0x7075  # Info-ZIP's Unicode Path extra field
_ZIP64_EXTRA = 0x0001  # the Zip64 extra field: its data descriptor holds 8-byte sizes
MEMBER_BYTES = 4096  # what a member costs on disk at least (a block and an inode): many tiny members count too
COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class UnpackLimits:
    """Decompression-bomb caps for everything one download unpacks to, nested archives included."""

    max_unpacked_bytes: int
    max_ratio: float  # unpacked / downloaded; an all-nodata float32 tile deflates ~1,000×

    @classmethod
    def from_config(cls, section: dict) -> UnpackLimits:
        """From the `unpack:` section of the config (its defaults live in config/config.yaml only)."""
        return cls(int(section["max_unpacked_gb"] * (1 << 30)), float(section["max_ratio"]))


class _Budget:
    """The bytes one downloaded archive set may write in all, the archives inside it included: the
    smaller of `max_unpacked_bytes` and `max_ratio` × the downloaded bytes. Thread-safe (py7zr writes
    the folders of a 7z from several threads)."""

    def __init__(self, download: str, downloaded_bytes: int, limits: UnpackLimits):
        self.download, self.downloaded_bytes, self.limits = download, downloaded_bytes, limits
        self.by_ratio = limits.max_ratio * downloaded_bytes < limits.max_unpacked_bytes
        self.cap_bytes = int(min(limits.max_unpacked_bytes, limits.max_ratio * downloaded_bytes))
        self.used_bytes = 0
        self._lock = threading.Lock()

    def check_declared(self, archive: Path, declared_bytes: int) -> None:
        """Before an archive is opened for writing: its declared sizes must fit what is left."""
        if self.used_bytes + declared_bytes > self.cap_bytes:
            inside = "" if archive.name == self.download else f" ({archive.name} inside it declares {declared_bytes:,})"
            raise self._refusal(self.used_bytes + declared_bytes, inside)

    def take(self, n_bytes: int) -> None:
        """Before `n_bytes` are written."""
        with self._lock:
            if self.used_bytes + n_bytes > self.cap_bytes:
                raise self._refusal(self.used_bytes + n_bytes, f" (stopped after {self.used_bytes:,} bytes)")
            self.used_bytes += n_bytes

    def _refusal(self, total_bytes: int, detail: str) -> FileFailure:
        what = f"{self.download}: unpacking it would write {total_bytes:,} bytes{detail}, archives inside it included"
        if self.by_ratio:
            ratio = total_bytes / max(self.downloaded_bytes, 1)
            return FileFailure(
                "unpack",
                f"{what}: {ratio:,.0f}× the {self.downloaded_bytes:,} bytes downloaded, over the cap of "
                f"{self.limits.max_ratio:,.0f}× (unpack.max_ratio): a decompression bomb? Refused",
            )
        return FileFailure("unpack", f"{what}: over the cap of {self.cap_bytes:,} (unpack.max_unpacked_gb); refused")


def archive_kind(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(TAR_MAGIC_OFFSET + len(TAR_MAGIC))
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(SEVENZ_MAGIC):
        return "7z"
    if head[TAR_MAGIC_OFFSET:] == TAR_MAGIC:
        return "tar"
    return next((kind for kind, (magic, _, _) in STREAMS.items() if head.startswith(magic)), None)


def _refuse_repeats(paths: list[Path], archive: Path) -> None:
    """Two members with one path: unzip -o or 7z would keep the last one silently."""
    twice = sorted(str(p) for p, n in Counter(paths).items() if n > 1)
    if twice:
        names = ", ".join(repr(t) for t in twice[:5])
        raise FileFailure(
            "unpack",
            f"{archive.name}: the archive holds two different files under one name ({names} twice), of which "
            "unpacking would keep only the last; refused: ask the producer for a fixed archive",
        )


def _refuse_unaccounted(archive: Path, before: int = 0, after: int = 0) -> None:
    """Bytes of the file that the archive's own directory does not account for: two archives joined
    into one file (zipfile and py7zr read only one of them; unzip warns and exits 1) or a stub before
    it. Which bytes are the producer's is unclear: refused."""
    if before or after:
        where = f"{before:,} bytes before its first member" if before else f"{after:,} bytes after its end"
        raise FileFailure(
            "unpack",
            f"{archive.name}: {where} that the archive's directory does not account for (two archives joined into "
            "one file?); refused: ask the producer for one archive per file",
        )


def _check_member(name: str, archive: Path) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and posix.parts[0].endswith(":")):
        raise FileFailure(
            "unpack", f"{archive.name}: member {name!r} would be written outside the target folder; refused"
        )


def _inside(target: Path, name: str, archive: Path) -> Path:
    """Where a checked member goes (as zipfile would put it: empty and `.` parts dropped)."""
    dest = target.joinpath(*[p for p in name.split("/") if p not in ("", ".")])
    if not dest.resolve().is_relative_to(target.resolve()):
        raise FileFailure("unpack", f"{archive.name}: member {name!r} would be written outside the target folder")
    return dest


def _after_zip_end(path: Path) -> int:
    """The bytes after a zip's end-of-central-directory record and its comment (zipfile finds the
    record within the last 64 KiB and reads no further: another archive appended there is ignored)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - _EOCD_SEARCH))
        tail = f.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return 0  # zipfile opened it, so it found a record; a damaged one is its to report
    comment = int.from_bytes(tail[at + 20 : at + 22], "little")
    return max(0, len(tail) - (at + 22 + comment))


def _refuse_unlisted(path: Path, infos: list[zipfile.ZipInfo], directory: int) -> None:
    """Bytes between a zip's members, or between its last member and its directory, that are not
    zeros: a member the directory leaves out (unzip, like zipfile, reads only what it lists)."""
    ends = [(directory, directory)]
    with open(path, "rb") as f:
        for info in sorted(infos, key=lambda i: i.header_offset):
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) < 30 or not local.startswith(b"PK\x03\x04"):
                return  # zipfile reports a bad local header when the member is read
            name_bytes, extra_bytes = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            f.seek(info.header_offset + 30 + name_bytes)
            zip64 = any(kind == _ZIP64_EXTRA for kind, _ in _extra_fields(f.read(extra_bytes)))
            end = info.header_offset + 30 + name_bytes + extra_bytes + info.compress_size
            if info.flag_bits & 0x08:  # a data descriptor follows: [signature] CRC, sizes (8 bytes each in zip64)
                f.seek(end)
                end += 4 if f.read(4) == b"PK\x07\x08" else 0
                end += 20 if zip64 else 12
            ends.append((info.header_offset, end))
        ends.sort()
        for (_, end), (start, _) in zip(ends, ends[1:], strict=False):
            if start > end:
                f.seek(end)
                if f.read(start - end).strip(b"\0"):
                    raise FileFailure(
                        "unpack",
                        f"{path.name}: {start - end:,} bytes at offset {end:,} that its directory does not list "
                        "(a member left out of it?); refused: ask the producer for a fixed archive",
                    )


def _extra_fields(extra: bytes) -> Iterator[tuple[int, bytes]]:
    """A zip member's extra fields: (header id, body)."""
    while len(extra) >= 4:
        kind, size = struct.unpack("<HH", extra[:4])
        yield kind, extra[4 : 4 + size]
        extra = extra[4 + size :]


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's path as Debian's unzip 6.00 extracts it. Flagged UTF-8 (EFS) is UTF-8; else an Info-ZIP
    Unicode Path field whose checksum matches the name wins; else only a name made on MS-DOS (or NTFS
    by version 5.0) is in the OEM code page (CP437); every other host's bytes are taken as they are,
    UTF-8 when they decode (a Unix zip), kept as bytes when not (the output name escapes them).
    A zip made on MS-DOS/Windows may separate folders by `\\`."""
    if info.flag_bits & _UTF8_FLAG:
        name = info.filename
    else:
        raw = info.orig_filename.encode("cp437")  # zipfile decoded the bytes as CP437: undone exactly
        name = _unicode_path(info, raw) or raw.decode("cp437" if _oem_host(info) else "utf-8", "surrogateescape")
    return name.replace("\\", "/") if info.create_system == 0 else name


def _oem_host(info: zipfile.ZipInfo) -> bool:
    """unzip's Ext_ASCII_TO_Native: FAT hosts, except zip versions 2.5, 2.6 and 4.0, and NTFS of 5.0."""
    return (info.create_system == 0 and info.create_version not in (25, 26, 40)) or (
        info.create_system == 11 and info.create_version == 50
    )


def _unicode_path(info: zipfile.ZipInfo, raw: bytes) -> str | None:
    """The UTF-8 name of an Info-ZIP Unicode Path extra field (0x7075), if it belongs to `raw`."""
    for kind, body in _extra_fields(info.extra):
        if kind == _UNICODE_PATH and len(body) > 5 and body[0] == 1:
            if struct.unpack("<I", body[1:5])[0] == zlib.crc32(raw):
                return body[5:].decode("utf-8", "surrogateescape")
    return None


def _unzip(path: Path, target: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        # no member: all before the directory is unaccounted (an end record in a comment hides the real one)
        _refuse_unaccounted(path, min((i.header_offset for i in infos), default=zf.start_dir), _after_zip_end(path))
        _refuse_unlisted(path, infos, zf.start_dir)
        names = [_zip_name(i) for i in infos]
        for info, name in zip(infos, names, strict=True):
            _check_member(name, path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise FileFailure("unpack", f"{path.name}: member {name!r} is a symlink; refused")
        members = [(n, i.is_dir(), i.file_size, partial(zf.open, i)) for n, i in zip(names, infos, strict=True)]
        _write_members(path, target, budget, members)


def _write_members(archive: Path, target: Path, budget: _Budget, members: list[tuple]) -> None:
    """Write an archive's checked members, each `(path inside, is a folder, declared bytes, opener)`: no
    path twice, the declared sizes within the budget, every byte counted as it is written."""
    dests = [_inside(target, name, archive) for name, _, _, _ in members]
    files = [dest.relative_to(target) for dest, (_, folder, _, _) in zip(dests, members, strict=True) if not folder]
    _refuse_repeats(files, archive)
    budget.check_declared(archive, sum(size + MEMBER_BYTES for _, _, size, _ in members))
    for dest, (_, folder, _, opener) in zip(dests, members, strict=True):
        budget.take(MEMBER_BYTES)
        if folder:
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with opener() as src, open(dest, "wb") as out:
            _copy_counted(src, out, budget)


def _untar(path: Path, target: Path, budget: _Budget) -> None:
    with tarfile.open(path, "r:") as tf:
        members = tf.getmembers()
        _refuse_unaccounted(path, after=_after_tar_end(path, tf.offset))
        files = []
        for i, m in enumerate(members):
            _check_member(m.name, path)
            if m.islnk():
                m = _link_target(m, members[:i], path)
            elif not (m.isfile() or m.isdir()):
                raise FileFailure("unpack", f"{path.name}: member {m.name!r} is a symlink or a device; refused")
            files.append((members[i].name, m.isdir(), m.size if m.isfile() else 0, partial(tf.extractfile, m)))
        _write_members(path, target, budget, files)


def _link_target(link: tarfile.TarInfo, earlier: list[tarfile.TarInfo], archive: Path) -> tarfile.TarInfo:
    """The regular file a tar hard link names: its last member of that name before it, as GNU tar
    links it (tar -h and the producers' backup tools store a repeated file so). The link is written
    as a copy of its bytes."""
    _check_member(link.linkname, archive)
    name = posixpath.normpath(link.linkname)
    found = next((m for m in reversed(earlier) if posixpath.normpath(m.name) == name), None)
    if found is None or not found.isfile():
        what = "no member before it" if found is None else "a member that is not a regular file"
        raise FileFailure(
            "unpack",
            f"{archive.name}: member {link.name!r} is a hard link to {link.linkname!r}, {what}; refused: "
            "ask the producer for an archive without it",
        )
    return found


def _after_tar_end(path: Path, end: int) -> int:
    """The bytes after a tar's last member that are not its end-of-archive zeros (tar, like GNU tar
    without -i, stops at the first end blocks: a second tar joined to it would be ignored)."""
    with open(path, "rb") as f:
        f.seek(end)
        while block := f.read(COPY_BYTES):
            if block.strip(b"\0"):
                return path.stat().st_size - end
    return 0


def _decompress(path: Path, kind: str, target: Path, budget: _Budget) -> None:
    """A gzip/bzip2/xz stream becomes the file it holds, named without its suffix (`.tgz` → `.tar`);
    one under a name without such a suffix (a `dem.tif` stored gzipped on its server) keeps the name."""
    _, decompressor, suffixes = STREAMS[kind]
    suffix = path.suffix.lower()
    name = path.name[: -len(suffix)] + suffixes[suffix] if suffix in suffixes else path.name
    budget.take(MEMBER_BYTES)
    with open(target / name, "wb") as out:
        _decompress_one_stream(path, kind, decompressor(), out, budget)


def _decompress_one_stream(path: Path, kind: str, stream, out, budget: _Budget) -> None:
    """A gzip/bzip2/xz file of one stream, decompressed as it is read. Python's gzip, bz2 and lzma
    modules read `cat a.tif.gz b.tif.gz` (or .bz2, .xz) as one file: the second raster would become
    trailing bytes GDAL ignores. So a second stream is refused; trailing zeros (padding of some
    writers, xz's stream padding) are allowed."""
    with open(path, "rb") as f:
        while not stream.eof and (block := f.read(COPY_BYTES)):
            for data in _inflated(stream, block):
                budget.take(len(data))
                out.write(data)
        if not stream.eof:
            raise EOFError(f"the {kind} stream ends before its end (cut short)")
        if after := _nonzero_after(stream.unused_data, f):
            raise FileFailure(
                "unpack",
                f"{path.name}: {after:,} bytes after the end of its {kind} stream that the stream does not account "
                "for (two compressed files joined into one by `cat`? A parallel compressor such "
                "as pbzip2 also writes one file as several streams); refused, as which bytes are the file is unclear: "
                "ask the producer for one stream per file",
            )


def _inflated(stream, block: bytes) -> Iterator[bytes]:
    """What `block` decompresses to, at most COPY_BYTES at a time (a bomb stops at the cap). zlib keeps
    the input it did not use in `unconsumed_tail`; bz2 and lzma keep it inside until asked again."""
    data = stream.decompress(block, COPY_BYTES)
    yield data
    while not stream.eof:
        if hasattr(stream, "unconsumed_tail"):
            if not stream.unconsumed_tail:
                return
            data = stream.decompress(stream.unconsumed_tail, COPY_BYTES)
        elif stream.needs_input:
            return
        else:
            data = stream.decompress(b"", COPY_BYTES)
        yield data


def _nonzero_after(unused: bytes, f) -> int:
    """The bytes after a stream's end (`unused` and the rest of `f`), or 0 when they are all zeros."""
    after, nonzero = len(unused), bool(unused.strip(b"\0"))
    while block := f.read(COPY_BYTES):
        after += len(block)
        nonzero = nonzero or bool(block.strip(b"\0"))
    return after if nonzero else 0


def _copy_counted(src, out, budget: _Budget) -> None:
    while block := src.read(COPY_BYTES):
        budget.take(len(block))
        out.write(block)


def _damaged() -> tuple[type[Exception], ...]:
    """What a damaged archive raises: py7zr's errors too once a 7z has been opened (py7zr is imported then)."""
    seven = sys.modules.get("py7zr.exceptions")
    return _DAMAGED + ((seven.ArchiveError,) if seven else ())


def _last_volume(downloads: list[Path]) -> str:
    """A split archive whose last volumes are missing reads as damaged (no gap in the numbers tells)."""
    last = downloads[-1].name
    group = archive_group(last)
    if group == last:
        return ""
    after = f"{group}.{int(last[len(group) + 1 :]) + 1:03d}"
    return f"; if the archive has more volumes than {last}, add {after} (and any after it) to file_list.txt"


def unpack(downloads: list[Path], target: Path, limits: UnpackLimits) -> dict[Path, str]:
    """Unpack an archive set (one file, or the ordered volumes of one archive) into `target`; return
    the folders nested archives were unpacked into (relative to `target`) → each archive's name.

    Archives are deleted once unpacked, nested ones unpack into `{name}-x/` beside them (a folder of
    ours, not of the archive: names use the archive's stem for it). A download that is not an archive
    is moved into `target` unchanged. The caps count the whole tree.
    """
    budget = _Budget(downloads[0].name, sum(d.stat().st_size for d in downloads), limits)
    nested: dict[Path, str] = {}
    _unpack(downloads, target, budget, 0, nested)
    return {folder.relative_to(target): name for folder, name in nested.items()}


def _unpack(downloads: list[Path], target: Path, budget: _Budget, depth: int, nested: dict[Path, str]) -> None:
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
    if kind != "7z" and len(downloads) > 1:
        raise FileFailure("unpack", f"{first.name}: split {kind} archives are not supported; ask for a 7z or one file")
    if kind == "7z":
        # imported here, not at the top: py7zr costs every chunk job ~0.06 s and few sources use 7z;
        # and outside the try: a broken install is the job's failure, not the file's
        from tilewise.sources import unpack_7z
    try:
        if kind == "zip":
            _unzip(first, target, budget)
        elif kind == "7z":
            unpack_7z.un7z(downloads, target, budget)
        elif kind == "tar":
            _untar(first, target, budget)
        else:
            _decompress(first, kind, target, budget)
    except (*_damaged(), EOFError, OSError, ValueError) as exc:
        if full := disk_full(exc, f"{first.name}: unpacking it"):  # the job's failure, not the archive's
            raise full from exc
        raise FileFailure(
            "unpack",
            f"{first.name}: damaged {kind} archive ({type(exc).__name__}: {exc})"
            + (_last_volume(downloads) if depth == 0 else ""),
        ) from exc
    for d in downloads:
        d.unlink(missing_ok=True)
    inner: dict[tuple[Path, str], list[Path]] = {}  # the volumes of a multi-volume 7z inside stay together
    for path in sorted(target.rglob("*")):
        if path.is_file() and not path.is_symlink():
            inner.setdefault((path.parent, archive_group(path.name)), []).append(path)
    for (_, group), paths in inner.items():
        if len(paths) > 1 and paths[0].name == group:  # x.7z beside x.7z.001…: two archives, or one twice
            raise FileFailure(
                "unpack",
                f"{first.name}: holds {paths[0].relative_to(target)} and the volumes {paths[1].name}…: one "
                "archive and the split of another, or the same twice? Unpacked as one, one would be lost; refused",
            )
        if kind := archive_kind(paths[0]):
            folder = paths[0].with_name(group + "-x")
            if folder.exists():  # the archive's own a.zip-x/: its members and a.zip's would mix
                raise FileFailure(
                    "unpack",
                    f"{first.name}: holds the archive {paths[0].relative_to(target)} and also "
                    f"{folder.relative_to(target)}, where that archive would be unpacked; refused: rename one of "
                    "them in the archive",
                )
            nested[folder] = group
            _unpack(paths, folder, budget, depth + 1, nested)
            if kind in STREAMS:
                _beside_its_sidecars(folder, first, target, nested)


def _beside_its_sidecars(folder: Path, archive: Path, target: Path, nested: dict[Path, str]) -> None:
    """A compressed file inside an archive (`dem.tif.gz` beside `dem.tfw` and `dem.tif.aux.xml`) that
    held no archive goes where gunzip leaves it: beside the stream, whose sidecars give its grid, CRS or
    nodata (in a folder of its own GDAL would read it without them). A `.tar.gz` keeps its folder."""
    held = list(folder.iterdir())
    if len(held) != 1 or not held[0].is_file():
        return
    beside = folder.parent / held[0].name
    if beside.exists():
        raise FileFailure(
            "unpack",
            f"{archive.name}: holds {beside.relative_to(target)} and a compressed file that decompresses to it "
            f"({nested[folder]}); unpacked, one would replace the other: refused, ask the producer for a fixed archive",
        )
    held[0].rename(beside)
    folder.rmdir()
    del nested[folder]
