"""Catalog entries in Mapterhorn's folder format: file_list.txt, metadata.json, LICENSE.pdf, recipe."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tilewise.shared.errors import CatalogError
from tilewise.sources.recipe import Recipe, load_recipe

SCHEMES = ("http", "https", "file")
METADATA_KEYS = ("name", "website", "license", "producer", "resolution", "access_year")
# Multi-volume archives (name.7z.001, name.zip.002, …) must stay together in one chunk.
_VOLUME = re.compile(r"^(?P<base>.+\.(7z|zip))\.(?P<part>\d{3})$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@~-]")


@dataclass(frozen=True)
class FileEntry:
    """One line of file_list.txt."""

    line: int
    url: str
    name: str  # file name the download is stored under
    group: str  # archive set: the volumes of one multi-volume archive share it

    def local_path(self, entry_dir: Path) -> Path | None:
        """The file on this machine for file:// URLs and plain paths, else None."""
        parts = urlsplit(self.url)
        if parts.scheme == "file":
            return Path(unquote(parts.path))
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
        return path


def file_name(url: str) -> str:
    """The name a URL's download is stored under: its last path segment, made filesystem-safe."""
    path = urlsplit(url).path if urlsplit(url).scheme else url
    base = unquote(path.rsplit("/", 1)[-1])
    return _UNSAFE.sub("_", base).lstrip(".")


def archive_group(name: str) -> str:
    m = _VOLUME.match(name)
    return m["base"] if m else name


def parse_file_list(path: Path) -> tuple[FileEntry, ...]:
    entries: list[FileEntry] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        url = raw.strip()
        if not url or url.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        scheme = urlsplit(url).scheme
        if len(scheme) > 1 and scheme not in SCHEMES:
            raise CatalogError(
                f"{where}: unsupported URL scheme {scheme!r} in {url!r}; "
                f"use one of {', '.join(SCHEMES)} or a plain path"
            )
        if any(c in url for c in "\x00\r\n\t"):
            raise CatalogError(f"{where}: control character in {url!r}; remove it")
        name = file_name(url)
        if not name:
            raise CatalogError(f"{where}: {url!r} has no file name; point it at a file")
        if name in seen:
            raise CatalogError(
                f"{where}: file name {name!r} repeats line {seen[name]}; file names must be "
                "unique within a source (Mapterhorn's rule): remove or rename one line"
            )
        seen[name] = lineno
        entries.append(FileEntry(lineno, url, name, archive_group(name)))
    if not entries:
        raise CatalogError(f"{path}: no URLs; list one download URL per line")
    return tuple(entries)


def read_metadata(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON ({exc}); fix the syntax") from exc
    missing = [k for k in METADATA_KEYS if k not in data]
    if not isinstance(data, dict) or missing:
        raise CatalogError(f"{path}: missing keys {missing}; Mapterhorn needs {list(METADATA_KEYS)}")
    return data


def load_source(catalog: Path, name: str) -> Source:
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
    recipe, recipe_file = load_recipe(folder)
    return Source(name, folder, files, metadata, recipe, recipe_file)
