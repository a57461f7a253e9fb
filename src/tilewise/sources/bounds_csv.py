"""Mapterhorn's `bounds.csv`: the one module that writes and reads it.

Header `filename,left,bottom,right,top,width,height`; bounds in EPSG:3857, size in pixels; rows
sorted by file name. Mapterhorn's downstream stage reads it, so the layout is an interface.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

FIELDS = ("filename", "left", "bottom", "right", "top", "width", "height")


def write(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    lines = (",".join(str(row[field]) for field in FIELDS) for row in sorted(rows, key=lambda r: r["filename"]))
    tmp.write_text("\n".join([",".join(FIELDS), *lines]) + "\n")
    os.replace(tmp, path)


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
