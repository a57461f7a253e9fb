"""The failure report `reports/{source}/failures.csv`: the one module that writes and reads it.

One row per file that failed: `source,file,url,line,step,error,ledger` (the ledger is the chunk to
rerun once the cause is fixed). A header only when nothing failed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

FIELDS = ("source", "file", "url", "line", "step", "error", "ledger")


def write(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: int(r["line"])))
    os.replace(tmp, path)


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
