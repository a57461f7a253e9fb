"""Mapterhorn's `bounds.csv`: the one module that writes and reads it.

Header `filename,left,bottom,right,top,width,height`; bounds in EPSG:3857, size in pixels; rows
sorted by file name. Mapterhorn's downstream stage reads it with `line.strip().split(',')`, so the
layout is an interface and fields are never quoted: a file name must be safe by the one rule of
`tilewise.sources.names` (no comma, quote, line break, leading blank), which the store's names are;
a row that would break the file is refused here rather than written.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from tilewise.sources.names import is_safe

FIELDS = ("filename", "left", "bottom", "right", "top", "width", "height")


def write(rows: list[dict], path: Path) -> None:
    unsafe = [row["filename"] for row in rows if not is_safe(row["filename"])]
    if unsafe:
        raise ValueError(f"{path}: file names that would break the CSV: {unsafe[:5]!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text(rows))
    os.replace(tmp, path)


def text(rows: list[dict]) -> str:
    """The file's exact content for `rows` (the tarball compares the file with its ledgers' rows)."""
    lines = (",".join(str(row[field]) for field in FIELDS) for row in sorted(rows, key=lambda r: r["filename"]))
    return "\n".join([",".join(FIELDS), *lines]) + "\n"


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
