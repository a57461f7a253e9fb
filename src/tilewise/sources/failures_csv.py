"""The failure report `reports/{source}/failures.csv`: the one module that writes and reads it.

One row per file that failed: `source,file,url,line,step,error,ledger` (`line`: the URL's line in
file_list.txt when the source was last merged; the ledger is the chunk to rerun once the cause is
fixed). A header only when nothing failed.
"""

from __future__ import annotations

from pathlib import Path

from tilewise.sources import report_csv

FIELDS = ("source", "file", "url", "line", "step", "error", "ledger")


def write(rows: list[dict], path: Path) -> None:
    report_csv.write(rows, path, FIELDS, order=report_csv.by_line)


def read(path: Path) -> list[dict]:
    return report_csv.read(path)
