"""What changed between two tarballs of a source, `tar-store/{source}.changes.csv`: the one module
that writes and reads it.

One row per output file of either tarball, sorted by name:
`filename,change,md5_before,md5_after,left,bottom,right,top,width,height,left_before,…,height_before`.
`change` is `added`, `changed`, `removed` or `unchanged` (by the COG's md5); `left…height` is the
file's bounds row as in bounds.csv now (empty for a removed file), `*_before` its row in the tarball
before (empty for an added one), so a downstream stage can recompute the areas of both and an
uploader send only what changed. The file describes the tarball beside it against the tarball built
before it; the first tarball of a source lists every file as added.

The published state, `work/{source}/published.json`, keeps the md5 of the last tarball built and
the changes file its build wrote, in one file replaced at once (Snakemake deletes a job's outputs
before it runs, so the state cannot be the output itself). A new tarball is compared with the
files of that state's changes; a tarball whose md5 is the kept one (the same tarball built again:
its file deleted or moved away, `--forcerun`, a rerun after a kill once the state was written) gets
the kept changes file again, never one that compares it with itself.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from tilewise.shared.file_md5 import file_md5
from tilewise.sources import bounds_csv, report_csv

BOUNDS = bounds_csv.FIELDS[1:]
BEFORE = tuple(f"{k}_before" for k in BOUNDS)
FIELDS = ("filename", "change", "md5_before", "md5_after", *BOUNDS, *BEFORE)
CHANGES = ("added", "changed", "removed", "unchanged")


def files(text: str) -> dict[str, dict]:
    """The files of the tarball a changes file's text describes: name → {md5, bounds row}."""
    return {
        row["filename"]: {"md5": row["md5_after"], **{k: row[k] for k in BOUNDS}}
        for row in csv.DictReader(io.StringIO(text, newline=""))
        if row["change"] != "removed"
    }


def published(path: Path) -> dict[str, dict]:
    """The files of the tarball a changes file describes: name → {md5, bounds row}; {} without one."""
    if not path.is_file():
        return {}
    return files(path.read_bytes().decode())


def compare(before: dict[str, dict], after: dict[str, dict]) -> list[dict]:
    """`before`, `after`: name → {md5, left, …, height} (bounds values as bounds.csv writes them)."""
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        change = "added" if old is None else "removed" if new is None else "unchanged"
        if old is not None and new is not None and old["md5"] != new["md5"]:
            change = "changed"
        row = {"filename": name, "change": change, "md5_before": old["md5"] if old else ""}
        row["md5_after"] = new["md5"] if new else ""
        row |= {k: str(new[k]) if new else "" for k in BOUNDS}
        row |= {f"{k}_before": str(old[k]) if old else "" for k in BOUNDS}
        rows.append(row)
    return rows


def text(rows: list[dict]) -> str:
    """The changes file's text: a header, then `rows` sorted by file name."""
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, FIELDS, lineterminator="\r\n")  # as csv writes files (report_csv)
    w.writeheader()
    w.writerows(sorted(rows, key=lambda r: r["filename"]))
    return out.getvalue()


def write_text(content: str, path: Path) -> None:
    """Write a changes file under a temporary name, then rename: never a partial one."""
    _replace(path, content)


def load_state(state: Path, legacy: Path | None = None, record_md5_text: str | None = None) -> tuple[str | None, str]:
    """The published state: the md5 of the last tarball built (None when unknown) and the text of
    the changes file its build wrote ("" before the first). A work folder of an earlier version kept
    only that changes file (`legacy`, published.changes.csv); the tarball record's md5 text
    (`record_md5_text`) then says which tarball it describes."""
    try:
        kept = json.loads(state.read_bytes())
        return kept["tar_md5"], kept["changes"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if legacy is not None and legacy.is_file():
        digest = record_md5_text.split(" ", 1)[0] if record_md5_text else None
        return digest, legacy.read_bytes().decode()
    return None, ""


def recover_state(state: Path, legacy: Path, tar: Path, md5_file: Path, changes: Path) -> bool:
    """At planning: a published state lost with its work folder (deleted to free space or to start
    clean) is taken back from the tarball in place, its md5 file and its changes file, which describes
    it; Snakemake removes all three before it builds the tarball again, and without them the next
    changes file called every file `added` and dropped the `removed` ones. Only a tarball whose bytes
    give its md5 file's digest is trusted (read once, only when the state is lost). True if recovered."""
    if state.exists() or legacy.exists() or not (tar.is_file() and md5_file.is_file() and changes.is_file()):
        return False
    digest = md5_file.read_text(errors="replace").split(" ", 1)[0]
    if file_md5(tar) != digest:
        return False
    save_state(state, digest, changes.read_bytes().decode(errors="replace"))
    return True


def save_state(state: Path, digest: str, content: str) -> None:
    """Keep the tarball's md5 and its changes file's text together: one file, replaced at once."""
    _replace(state, json.dumps({"tar_md5": digest, "changes": content}))


def _replace(path: Path, content: str) -> None:
    """Written whole, then renamed: a kill leaves the old file or the new one. No fsync, as for every
    file here: right after a tarball's build, a sync waits for the tarball's own bytes to reach the
    disk (0.2–0.4 s on this machine for a 290 MB tarball)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        f.write(content)
    os.replace(tmp, path)


def read(path: Path) -> list[dict]:
    return report_csv.read(path)
