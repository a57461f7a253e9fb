"""What the workflow will do, decided once at parse time: the sources, their settings and chunks.

Kept out of the Snakefile so it is cheap (each file list is read once, nothing is globbed) and
unit-testable without Snakemake.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from tilewise.catalog import FileEntry, Source, load_source
from tilewise.chunks import assign_chunks

SOURCE_KEYS = ("files_per_chunk", "allow_incomplete", "download")


def source_settings(config: dict, name: str) -> dict:
    """The config keys that may differ per source, with that source's overrides applied."""
    merged = {k: copy.deepcopy(config[k]) for k in SOURCE_KEYS}
    for key, value in (config.get("per_source") or {}).get(name, {}).items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def source_names(config: dict) -> list[str]:
    value = config["source"]
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class SourcePlan:
    source: Source
    settings: dict
    chunks: dict[str, list[FileEntry]]

    def chunk_ids(self) -> list[str]:
        return list(self.chunks)

    def local_inputs(self, chunk: str) -> list[str]:
        paths = (e.local_path(self.source.folder) for e in self.chunks[chunk])
        return sorted(str(p) for p in paths if p is not None)


def plan_sources(config: dict, catalog: Path) -> dict[str, SourcePlan]:
    plans = {}
    for name in source_names(config):
        settings = source_settings(config, name)
        source = load_source(catalog, name)
        plans[name] = SourcePlan(source, settings, assign_chunks(source.files, settings["files_per_chunk"]))
    return plans
