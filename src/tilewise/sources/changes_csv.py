"""What changed between two tarballs of a source, `tar-store/{source}.changes.csv`: the one module
that writes and reads it.

One row per output file of either tarball, sorted by name:
`filename,change,md5_before,md5_after,left,bottom,right,top,width,height,left_before,…,height_before`.
`change` is `added`, `changed`, `removed` or `unchanged` (by the COG's md5); `left…height` is the
file's bounds row as in bounds.csv now (empty for a removed file), `*_before` its row in the tarball
before (empty for an added one), so a downstream stage can recompute the areas of both and an
uploader send only what changed. The file describes the tarball beside it against the tarball built
before it; the first tarball of a source lists every file as added. A copy is kept in
`work/{source}/published.changes.csv` (the published state the next tarball is compared with:
Snakemake deletes a job's outputs before it runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tilewise.sources import bounds_csv, report_csv

BOUNDS = bounds_csv.FIELDS[1:]
BEFORE = tuple(f"{k}_before" for k in BOUNDS)
FIELDS = ("filename", "change", "md5_before", "md5_after", *BOUNDS, *BEFORE)
CHANGES = ("added", "changed", "removed", "unchanged")


def published(path: Path) -> dict[str, dict]:
    """The files of the tarball a changes file describes: name → {md5, bounds row}; {} without one."""
    if not path.is_file():
        return {}
    return {
        row["filename"]: {"md5": row["md5_after"], **{k: row[k] for k in BOUNDS}}
        for row in read(path)
        if row["change"] != "removed"
    }


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


def write(rows: list[dict], path: Path, copy: Path) -> None:
    """Write the changes file, then its copy (the state the next tarball is compared with)."""
    report_csv.write(rows, path, FIELDS, order=lambda r: r["filename"])
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_name(copy.name + ".tmp")
    shutil.copyfile(path, tmp)
    tmp.replace(copy)


def read(path: Path) -> list[dict]:
    return report_csv.read(path)
