"""The chunk ledger (`work/{source}/chunks/{chunk}.json`): the one module that writes and reads it.

A ledger is the record of one chunk job: for every file of the chunk either its outputs (COG name,
bounds row, CRS, coverage polygon as WKB hex, bytes) or its failure (step, error), and, when there
are any, the rasters inside it that were skipped or converted with a warning (`skipped`). prepare writes it;
merge, the coverage map and the tarball read it. Readers check the format version, so a ledger of
another version is redone rather than misread.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tilewise.shared.errors import TilewiseError

VERSION = 1


class LedgerError(TilewiseError):
    """A ledger that cannot be used (unreadable, truncated, or of another format version)."""


@dataclass(frozen=True)
class Ledger:
    source: str
    chunk: str
    recipe: dict
    files: list[dict]  # per file: line, url, file, status ("ok" | "failed"), outputs | step, error; [skipped]

    def outputs(self) -> list[dict]:
        return [out for rec in self.files for out in rec.get("outputs", [])]

    def failures(self) -> list[dict]:
        return [rec for rec in self.files if rec["status"] == "failed"]

    def skipped(self) -> list[tuple[dict, dict]]:
        """(file record, note) for every raster skipped or converted with a warning (the optional
        per-file `skipped` list: raster, kind "skipped" | "warning", reason)."""
        return [(rec, note) for rec in self.files for note in rec.get("skipped", [])]


def write(path: Path, ledger: Ledger) -> None:
    """Write atomically: a killed job never leaves a partial ledger under its name."""
    data = {"version": VERSION, "source": ledger.source, "chunk": ledger.chunk, "recipe": ledger.recipe}
    data["files"] = ledger.files
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read(path: Path) -> Ledger:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{path}: unreadable chunk ledger ({exc}); its chunk must be prepared again") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        found = data.get("version") if isinstance(data, dict) else None
        raise LedgerError(
            f"{path}: chunk ledger format version {found!r}, this tilewise writes {VERSION}; "
            "its chunk must be prepared again"
        )
    return Ledger(data["source"], data["chunk"], data["recipe"], data["files"])


def read_all(paths: list[Path]) -> list[tuple[Path, Ledger]]:
    return [(Path(p), read(p)) for p in paths]
