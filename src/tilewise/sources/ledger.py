"""The chunk ledger (`work/{source}/chunks/{chunk}.json`): the one module that writes and reads it.

A ledger is the record of one chunk job: for every file of the chunk (its URL and download name)
either its outputs, its failure (step, error) or its exclusion by the recipe, and, when there are
any, the rasters inside it that were skipped or converted with a warning (`skipped`). Each output carries
its name, bounds row, CRS, coverage polygon (WKB hex), the raster it came from inside the download,
where the chunk staged it, and its size in bytes and md5: the provenance and the checksums the
merge, the tarball and the next run's planning check the store against. prepare writes it; merge,
the coverage map and the tarball read it. Readers check the format version, so a ledger of another
version is redone rather than misread; `damage` spots a truncated or foreign ledger cheaply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tilewise.shared.errors import TilewiseError

VERSION = 2
_HEAD = f'{{\n "version": {VERSION},'.encode()
_TAIL = b'\n "complete": true\n}\n'  # the last bytes of every ledger: a cut-off one lacks them
STATUSES = ("ok", "failed", "excluded")
OUTPUT_KEYS = ("filename", "bytes", "md5", "staged", "raster", "crs", "coverage_wkb")


class LedgerError(TilewiseError):
    """A ledger that cannot be used (unreadable, truncated, or of another format version)."""


@dataclass(frozen=True)
class Ledger:
    source: str
    chunk: str
    recipe: dict
    # per file: url, file (download name), status ("ok" | "failed" | "excluded"), and
    # outputs (ok), step and error (failed), excluded (names the recipe dropped), [skipped]
    files: list[dict]
    inputs: str | None = None  # tilewise.sources.plan.inputs_digest of the job's params (None: not known)

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
    if ledger.inputs is not None:
        data["inputs"] = ledger.inputs
    data["complete"] = True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read(path: Path) -> Ledger:
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{path}: unreadable chunk ledger ({exc}); its chunk must be prepared again") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        found = data.get("version") if isinstance(data, dict) else None
        raise LedgerError(
            f"{path}: chunk ledger format version {found!r}, this tilewise writes {VERSION}; "
            "its chunk must be prepared again"
        )
    try:
        ledger = Ledger(data["source"], data["chunk"], data["recipe"], data["files"], data.get("inputs"))
        for rec in ledger.files:
            if rec["status"] not in STATUSES or not isinstance(rec["url"], str) or not isinstance(rec["file"], str):
                raise ValueError(f"file record {rec!r}")
            for out in rec.get("outputs", []):
                missing = [k for k in OUTPUT_KEYS if k not in out]
                if missing:
                    raise ValueError(f"output of {rec['url']} lacks {missing}")
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"{path}: damaged chunk ledger ({exc}); its chunk must be prepared again") from exc
    return ledger


def read_all(paths: list[Path]) -> list[tuple[Path, Ledger]]:
    """Every ledger; one that cannot be read is removed, so that the next run prepares its chunk again
    (Snakemake reruns a job whose output is missing), and the error says so."""
    ledgers = []
    for path in paths:
        try:
            ledgers.append((Path(path), read(path)))
        except LedgerError as exc:
            Path(path).unlink(missing_ok=True)
            raise LedgerError(
                f"{exc}. It was removed: run the same command again to prepare that chunk again."
            ) from None
    return ledgers


def discard(paths, why: str) -> TilewiseError:
    """Remove ledgers that no longer describe the store; the error to raise says what to do."""
    paths = sorted({Path(p) for p in paths})
    for path in paths:
        path.unlink(missing_ok=True)
    return TilewiseError(
        f"{why}\nThe ledgers of their chunks were removed ({', '.join(str(p) for p in paths)}): "
        "run the same command again to prepare those chunks again."
    )


def damage(path: Path) -> str | None:
    """Why an existing ledger cannot be used, from its first and last bytes (cheap enough to ask at
    planning for every chunk), or None when it looks whole. `read` still checks everything."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_HEAD))
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - len(_TAIL)))
            tail = f.read()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if head != _HEAD:
        return f"not a chunk ledger of format version {VERSION}"
    if tail != _TAIL:
        return "truncated"
    return None
