"""Writing and reading the per-source CSV reports (failures.csv, skipped.csv, refresh.csv): atomic,
with a header, every value masked of a URL's secrets (`url_secrets.masked`: a password, a token)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

from tilewise.shared.url_secrets import masked


def write(rows: list[dict], path: Path, fields: tuple[str, ...], order: Callable[[dict], object]) -> None:
    """Write `rows` sorted by `order` under a temporary name, then rename: never a partial report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(
            {k: masked(v) if isinstance(v, str) else v for k, v in row.items()} for row in sorted(rows, key=order)
        )
    os.replace(tmp, path)


def by_line(row: dict) -> tuple:
    """File-list order (`line` is looked up when the source is merged); a URL no longer listed last."""
    return (row["line"] == "", row["line"] or 0, row["url"])


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
