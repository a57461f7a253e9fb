"""The remote state of a chunk (`work/{source}/remote/{chunk}.json`): the one module that writes and reads it.

Per download name, the version of the file a refresh found on its server when that was not the
version the chunk's ledger was made from: `[kind, value]`, kind `etag`, `last-modified` or `length`
(what told the versions apart), `gone` (HTTP 404/410) or `new` (its last download failed); a
refresh before this rule also wrote `unchecked`. A file the server could not be asked about gets no
new entry (its chunk keeps its outputs). Files whose server still gives the version of the ledger
keep whatever entry they had, so the content changes only when a file changed. The chunk job gets
these entries as params, so a changed entry reruns exactly that chunk (Snakemake's params trigger)
and every later run, with or without a refresh, gives the job the same params again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

VERSION = 1


def read(path: Path) -> dict[str, list[str]]:
    """Download name → [kind, value]; {} when there is no file (no refresh found a change yet)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), dict):
        # a damaged record says "changed" for every file it named: the chunk runs once more, never less
        return {"*": ["unreadable", str(path)]}
    return data["files"]


def write(path: Path, entries: dict[str, list[str]]) -> bool:
    """Write atomically when the entries differ from the file's (else leave it untouched); True if written."""
    if read(path) == entries:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": VERSION, "files": dict(sorted(entries.items()))}, indent=1) + "\n")
    os.replace(tmp, path)
    return True
