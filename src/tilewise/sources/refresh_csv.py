"""The refresh report `reports/{source}/refresh.csv`: the one module that writes and reads it.

Written by a run with `refresh=True`, one row per file whose server was asked:
`source,file,url,chunk,result,no_validator,before,now` (`result`: unchanged, changed, gone,
unchecked, or unknown when the server gave neither a validator nor a length; `before` and `now`:
the validators of the download its outputs came from and of the HEAD answer, or its error).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tilewise.sources import report_csv
from tilewise.sources.refresh import Refresh

FIELDS = ("source", "file", "url", "chunk", "result", "no_validator", "before", "now")


def write(source: str, refresh: Refresh, path: Path) -> None:
    rows = [{**asdict(f), "source": source} for f in refresh.findings]
    report_csv.write(
        [{k: row[k] for k in FIELDS} for row in rows], path, FIELDS, order=lambda r: (r["chunk"], r["file"])
    )


def read(path: Path) -> list[dict]:
    return report_csv.read(path)
