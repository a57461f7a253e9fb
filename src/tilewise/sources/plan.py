"""What the source pipeline will do, decided once at parse time: the sources, their settings and chunks.

Kept out of the Snakefile so it is cheap (each file list is read once; only a source's ledger folder
is listed) and unit-testable without Snakemake. Settings come from the validated config alone:
config/config.yaml holds every default.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tilewise.shared.errors import CatalogError
from tilewise.sources import chunks as chunking
from tilewise.sources.catalog import FileEntry, Source, load_source

DOWNLOAD_TUNING = ("ahead_mb", "piece_mb")
# From this many files the merge takes two cores: its coverage union then cleans two halves at once
# (tilewise.sources.coverage_union). A smaller source's merge keeps one, so the coverage map runs
# beside it instead of after it.
MERGE_TWO_THREADS_FROM = 1000


@dataclass(frozen=True)
class SourceSettings:
    """The config keys that may differ per source (`per_source:` overrides applied)."""

    files_per_chunk: int | str
    allow_incomplete: bool
    download: dict  # the `download:` section, for shared.download.DownloadSettings.from_config

    @classmethod
    def from_config(cls, config, name: str) -> SourceSettings:
        override = config["per_source"].get(name, {})
        return cls(
            files_per_chunk=override.get("files_per_chunk", config["files_per_chunk"]),
            allow_incomplete=override.get("allow_incomplete", config["allow_incomplete"]),
            download={**config["download"], **override.get("download", {})},
        )

    def job_download(self) -> dict:
        """The download settings a chunk's params record (a change reruns it), without `download_tuning`."""
        return {k: v for k, v in self.download.items() if k not in DOWNLOAD_TUNING}

    def download_tuning(self) -> dict:
        """How far downloads run ahead and whether files come in pieces: they change no output, so a
        chunk reads them from the config, not from its params."""
        return {k: v for k, v in self.download.items() if k in DOWNLOAD_TUNING}


def source_names(config: dict) -> list[str]:
    value = config["source"]
    return [value] if isinstance(value, str) else list(value)


def catalog_folder(config: dict, repository: Path) -> Path:
    """The catalog named by `catalog:`, or the repository's own catalog/ (the demo source's)."""
    return Path(config["catalog"] or repository / "catalog").resolve()


@dataclass(frozen=True)
class SourcePlan:
    source: Source
    settings: SourceSettings
    chunks: dict[str, list[FileEntry]]
    chunk_count: int  # K: files go to chunk hash mod K (empty chunks are not in `chunks`)

    def chunk_ids(self) -> list[str]:
        return list(self.chunks)

    def local_inputs(self, chunk: str, produced: frozenset[str] = frozenset()) -> list[str]:
        """The chunk's local files that exist or that a rule makes (`produced`, the demo's): Snakemake
        reruns the chunk when one changes or appears; one that does not exist is that file's
        recorded failure, not a stop of the whole run."""
        paths = (e.local_path(self.source.folder) for e in self.chunks[chunk])
        return sorted(str(p) for p in paths if p is not None and (p.is_file() or str(p) in produced))

    def job_files(self, chunk: str, versions: dict[str, list[str]] | None = None) -> list[list]:
        """What the chunk job gets of each file, by name: no line number and no list order, so that a
        line inserted, removed or moved elsewhere in the list does not rerun it (failures.csv looks
        lines up at merge time). A file a refresh found changed has the version it found as a 4th
        item (`versions`: tilewise.sources.remote_state); an unreadable remote state ("*") marks all."""
        versions = versions or {}
        rows = []
        for e in sorted(self.chunks[chunk], key=lambda e: e.name):
            version = versions.get(e.name, versions.get("*"))
            rows.append([e.url, e.name, e.group] + ([version] if version else []))
        return rows

    def merge_threads(self) -> int:
        return 2 if len(self.source.files) >= MERGE_TWO_THREADS_FROM else 1

    def job_recipe(self, chunk: str) -> dict:
        names = [n for e in self.chunks[chunk] for n in (e.name, e.group)]
        return self.source.recipe.for_downloads(names).as_dict()

    def job_inputs(self, chunk: str, versions: dict[str, list[str]] | None = None) -> str:
        """inputs_digest of the chunk job's files and recipe as this plan gives them."""
        return inputs_digest(self.job_files(chunk, versions), self.job_recipe(chunk))


def inputs_digest(files: list[list], recipe: dict) -> str:
    """What a chunk's outputs are made from, in one word: its files (URL, name, archive set, the version a
    refresh found) and its recipe, the params of its job. The ledger keeps it, so that planning sees a
    changed recipe or version even when Snakemake's own record of the params (.snakemake/) is gone."""
    text = json.dumps([files, recipe], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def plan_sources(
    config: dict, catalog: Path, check_values: bool = True, ledgers: str | None = None, record: str | None = None
) -> dict[str, SourcePlan]:
    """`check_values`: check CRSs and COG options too (the main process; jobs trust its check).
    `ledgers`: the folder of a source's chunk ledgers, `record`: the file of its chunk count (both with
    `{source}`), from which a source keeps the count it was prepared with (tilewise.sources.chunks);
    None: plan as for a first run."""
    plans = {}
    if source_names(config):
        check_per_source(config, catalog)
    for name in source_names(config):
        settings = SourceSettings.from_config(config, name)
        source = load_source(catalog, name, check_values)
        kept = chunking.read_record(Path(record.format(source=name))) if record else None
        if kept is None and ledgers:
            kept = chunking.kept_chunk_count(Path(ledgers.format(source=name)), len(source.files))
        k = chunking.chunk_count(len(source.files), settings.files_per_chunk, kept)
        members = chunking.assign_chunks(source.files, settings.files_per_chunk, kept)
        plans[name] = SourcePlan(source, settings, members, k)
    return plans


def check_per_source(config: dict, catalog: Path) -> None:
    """Every `per_source:` entry names a source of the catalog. One that does not (misspelled, another
    case, a trailing space) would be ignored without a word and its source run with the global settings:
    a global `allow_incomplete: true` would ship the tarball its entry said must be complete."""
    known = sorted(p.name for p in catalog.iterdir() if p.is_dir()) if catalog.is_dir() else []
    for name in config["per_source"]:
        if name in known:
            continue
        close = difflib.get_close_matches(name.strip(), known, n=1) or [k for k in known if k.lower() == name.lower()]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CatalogError(
            f"config per_source: {name!r} names no source of the catalog {catalog} ({hint}its sources: "
            f"{', '.join(known[:20])}{' …' if len(known) > 20 else ''}); its settings would apply to nothing: "
            "correct the name, or remove the entry"
        )


def record_chunk_counts(plans: dict[str, SourcePlan], record: str) -> None:
    """A run that starts jobs records each source's chunk count (Snakemake's `onstart`; see plan_sources)."""
    for name, plan in plans.items():
        chunking.write_record(Path(record.format(source=name)), plan.chunk_count)
