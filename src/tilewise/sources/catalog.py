"""Catalog entries in Mapterhorn's folder format: file_list.txt, metadata.json, LICENSE.pdf, recipe."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from tilewise.shared.errors import CatalogError
from tilewise.sources.names import local_name, wget_name
from tilewise.sources.recipe import Recipe, load_recipe
from tilewise.sources.text_files import lines, read_text

SCHEMES = ("http", "https", "file")
_WEB = ("http://", "https://")  # as urlsplit reads them (it lower-cases other spellings: they take its path)
METADATA_KEYS = ("name", "website", "license", "producer", "resolution", "access_year")
# what Mapterhorn's downstream stage reads from metadata.json, by type
_METADATA_TYPES = {"resolution": (int, float), "access_year": (int,)}
# Multi-volume archives (name.7z.001, name.zip.002, …) must stay together in one chunk.
_VOLUME = re.compile(r"^(?P<base>.+\.(7z|zip))\.(?P<part>\d{3})$", re.IGNORECASE)


@dataclass(frozen=True)
class FileEntry:
    """One line of file_list.txt."""

    line: int | None  # None in a chunk job: its line is looked up when the source is merged
    url: str
    name: str  # file name the download is stored under
    group: str  # archive set: the volumes of one multi-volume archive share it

    def local_path(self, entry_dir: Path) -> Path | None:
        """The file on this machine for file:// URLs and plain paths, else None."""
        if self.url.startswith(_WEB):  # the common case, without urlsplit (72,000 URLs in a list)
            return None
        parts = urlsplit(self.url)
        if parts.scheme == "file":
            return Path(os.fsdecode(unquote_to_bytes(parts.path)))
        if parts.scheme in ("http", "https"):
            return None
        path = Path(self.url)
        return path if path.is_absolute() else entry_dir / path


@dataclass(frozen=True)
class Source:
    name: str
    folder: Path
    files: tuple[FileEntry, ...]
    metadata: dict
    recipe: Recipe
    recipe_file: Path

    def license_pdf(self) -> Path:
        """Only the tarball needs it, so its absence stops only runs that build one."""
        path = self.folder / "LICENSE.pdf"
        if not path.is_file():
            raise CatalogError(
                f"source {self.name!r}: {path} is missing; the tarball must carry the producer's license: "
                "add it (a printout of the license page will do)"
            )
        if why := _not_a_pdf(path):
            raise CatalogError(
                f"source {self.name!r}: {path} is not a PDF ({why}); the tarball would ship it as the producer's "
                "license: "
                + (
                    "fetch the real file (git lfs pull in the catalog's clone)"
                    if why.startswith("a git-LFS pointer")
                    else "replace it with the license as a PDF (a printout of the license page will do)"
                )
            )
        return path


def _not_a_pdf(path: Path) -> str | None:
    """Why a file is no whole PDF, or None: a PDF has `%PDF-` within its first 1,024 bytes and `%%EOF`
    within its last 1,024 (where PDF readers look for them)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - 1024))
        tail = f.read()
    if not size:
        return "an empty file"
    if head.startswith(b"version https://git-lfs"):
        return "a git-LFS pointer: the catalog was cloned without git-lfs"
    if b"%PDF-" not in head:
        return f"{size:,} bytes starting {head[:16]!r}, without the %PDF- header"
    if b"%%EOF" not in tail:
        return f"{size:,} bytes without the %%EOF trailer: cut short"
    return None


def _scheme(url: str) -> str:
    return url[: url.index(":")] if url.startswith(_WEB) else urlsplit(url).scheme


def file_name(url: str) -> str:
    """The name a URL's download is stored under: wget's for http(s), the file's own for local paths."""
    if _scheme(url) in ("http", "https"):
        return wget_name(url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return local_name(os.fsdecode(unquote_to_bytes(parts.path)))
    return local_name(url)


def archive_group(name: str) -> str:
    m = _VOLUME.match(name)
    return m["base"] if m else name


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # Unicode's Cc, Zl and Zp: no URL holds them


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def parse_file_list(path: Path) -> tuple[FileEntry, ...]:
    """The downloads of a source. The same URL twice is one download (Mapterhorn's wget --continue
    fetches it once); two different URLs that wget would save under one name are refused."""
    entries: list[FileEntry] = []
    seen: dict[str, tuple[int, str]] = {}
    for lineno, raw in enumerate(lines(read_text(path)), start=1):
        url = raw.strip()
        if not url or url.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if _has_control(url):
            raise CatalogError(f"{where}: control character in {url!r}; remove it")
        scheme = _scheme(url)
        if len(scheme) > 1 and scheme not in SCHEMES:
            raise CatalogError(
                f"{where}: unsupported URL scheme {scheme!r} in {url!r}; "
                f"use one of {', '.join(SCHEMES)} or a plain path"
            )
        name = file_name(url)
        if not name or name in (".", ".."):
            raise CatalogError(f"{where}: {url!r} has no file name; point it at a file")
        if name in seen:
            first, first_url = seen[name]
            if first_url == url:
                continue  # listed twice: one download, recorded under its first line
            raise CatalogError(
                f"{where}: {url!r} would be saved as {name!r}, like line {first} ({first_url!r}); "
                "file names must be unique within a source (Mapterhorn's wget --continue would splice the "
                "two into one file): remove one of the lines"
            )
        seen[name] = (lineno, url)
        entries.append(FileEntry(lineno, url, name, archive_group(name)))
    if not entries:
        raise CatalogError(f"{path}: no URLs; list one download URL per line")
    _check_volumes(path, entries)
    _check_sidecars(path, entries)
    return tuple(entries)


# files GDAL reads beside a raster of the same name: a world file, a .prj, its PAM file, an external mask or overviews
_SIDECAR_SUFFIXES = (".aux.xml", ".tfw", ".tifw", ".tiffw", ".wld", ".prj", ".msk", ".ovr", ".jgw", ".pgw", ".j2w")


def sidecar_names(raster: str) -> list[str]:
    """The names of the sidecars GDAL reads beside a raster file named `raster`: its PAM file and external
    mask (`dem.tif.aux.xml`, `dem.tif.msk`), its `.prj` and its world files (`dem.wld`, `dem.tfw`, `dem.tifw`)."""
    stem, ext = Path(raster).stem, Path(raster).suffix.lstrip(".")
    names = [f"{raster}.aux.xml", f"{raster}.msk", f"{stem}.prj", f"{stem}.wld"]
    if ext:
        names += [f"{stem}.{ext[0]}{ext[-1]}w", f"{stem}.{ext}w"]
    return names


def sidecars_beside(local: Path) -> list[Path]:
    """The sidecars GDAL reads beside a local raster file (`sidecar_names`), looked up by name in the usual
    spellings, not by listing its folder (a folder of 20,000 tiles would be listed 20,000 times)."""
    stem = local.stem
    found = {}
    for name in sidecar_names(local.name):
        for spelling in (name, name.lower(), f"{stem}{name[len(stem) :].upper()}", name.upper()):
            if (path := local.with_name(spelling)).is_file():
                found.setdefault(path.name, path)
    return [found[n] for n in sorted(found)]


def _check_sidecars(path: Path, entries: list[FileEntry]) -> None:
    """A sidecar listed as a download of its own (dem.tif and dem.tif.aux.xml on two lines): each download is
    unpacked into a folder of its own, so GDAL would convert the raster without its grid, CRS or nodata, and
    the sidecar would fail as a download without a raster. Refused before any download, naming both lines."""
    by_name = {e.name.lower(): e for e in entries}
    by_stem: dict[str, FileEntry] = {}
    for e in entries:
        if not e.name.lower().endswith(_SIDECAR_SUFFIXES):
            by_stem.setdefault(Path(e.name).stem.lower(), e)
    for e in entries:
        lower = e.name.lower()
        suffix = next((s for s in _SIDECAR_SUFFIXES if lower.endswith(s)), None)
        if suffix is None:
            continue
        base = lower[: -len(suffix)]
        raster = by_name.get(base) or by_stem.get(base) or by_stem.get(Path(base).stem)
        if raster is not None and raster is not e:
            raise CatalogError(
                f"{path}:{e.line}: {e.name} is a sidecar of {raster.name} (line {raster.line}), listed as a download "
                "of its own: each download is unpacked into a folder of its own, so GDAL would convert the raster "
                "without it (its grid, CRS or nodata lost); pack the raster and its sidecars into one archive and "
                "list that, or remove the line if the raster's own georeferencing is right"
            )


def _check_volumes(path: Path, entries: list[FileEntry]) -> None:
    """A split archive needs every volume: a gap in its numbers (x.7z.001 and x.7z.003 listed) would
    only reach 7z as a damaged archive, so the missing volume is named here, before any download."""
    listed: dict[str, dict[int, FileEntry]] = {}
    for e in entries:
        if m := _VOLUME.match(e.name):
            listed.setdefault(e.group, {})[int(m["part"])] = e
    whole = {e.name: e for e in entries if e.name in listed}
    for group, parts in listed.items():
        if group in whole:
            raise CatalogError(
                f"{path}: {group} (line {whole[group].line}) and the volumes {group}.001… (line "
                f"{min(parts.items())[1].line}) are listed: one archive and the split of another, or the same "
                "archive twice? Unpacked as one set, one of them would be lost; keep the lines of one of them"
            )
        missing = [f"{group}.{n:03d}" for n in range(1, max(parts)) if n not in parts]
        if missing:
            lines_of = ", ".join(f"{e.name} (line {e.line})" for _, e in sorted(parts.items()))
            raise CatalogError(
                f"{path}: the split archive {group} lacks {', '.join(missing)}: only {lines_of} are listed, and 7z "
                f"needs every volume; add the URL of {', '.join(missing)} to file_list.txt"
            )


def line_numbers(path: Path) -> dict[str, int]:
    """URL → its line in the file list as it is now (failures.csv reports it)."""
    return {e.url: e.line for e in parse_file_list(path)}


def read_metadata(path: Path) -> dict:
    text = read_text(path, bom_ok=False)
    try:
        data = json.loads(text, parse_constant=lambda name: _not_json(path, text, name))
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}); fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise CatalogError(
            f"{path}:1: the top level is {type(data).__name__ if data is not None else 'null'}, not a JSON object; "
            f"Mapterhorn needs an object with the keys {list(METADATA_KEYS)}"
        )
    missing = [k for k in METADATA_KEYS if k not in data]
    if missing:
        raise CatalogError(f"{path}: missing keys {missing}; Mapterhorn needs {list(METADATA_KEYS)}")
    for key in METADATA_KEYS:
        types = _METADATA_TYPES.get(key, (str,))
        if isinstance(data[key], bool) or not isinstance(data[key], types):
            wanted = " or ".join("a number" if t is float else "an integer" if t is int else "a string" for t in types)
            raise CatalogError(f"{path}: key {key!r} is {data[key]!r}; it must be {wanted}")
    if data["resolution"] <= 0:
        raise CatalogError(f"{path}: key 'resolution' is {data['resolution']!r}; it must be a number of metres above 0")
    return data


def _not_json(path: Path, text: str, name: str):
    """Python's json reads NaN and ±Infinity; JSON has no such values (a browser's JSON.parse refuses them)."""
    line = text[: text.find(name)].count("\n") + 1
    raise CatalogError(f"{path}:{line}: {name} is not JSON; write a number")


def load_source(catalog: Path, name: str, check_values: bool = True) -> Source:
    """Read and check one catalog entry; every problem is a CatalogError naming the file."""
    folder = catalog / name
    if not folder.is_dir():
        known = sorted(p.name for p in catalog.iterdir() if p.is_dir()) if catalog.is_dir() else []
        hint = f"known sources: {', '.join(known[:20])}{' …' if len(known) > 20 else ''}"
        raise CatalogError(f"source {name!r}: no folder {folder} ({hint if known else 'catalog is empty or missing'})")
    for required in ("file_list.txt", "metadata.json"):
        if not (folder / required).is_file():
            raise CatalogError(
                f"source {name!r}: {folder / required} is missing; a catalog entry needs "
                "file_list.txt, metadata.json and LICENSE.pdf"
            )
    files = parse_file_list(folder / "file_list.txt")
    metadata = read_metadata(folder / "metadata.json")
    recipe, recipe_file = load_recipe(folder, check_values)
    return Source(name, folder, files, metadata, recipe, recipe_file)
