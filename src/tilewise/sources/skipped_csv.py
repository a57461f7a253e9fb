"""The report of skipped rasters `reports/{source}/skipped.csv`: the one module that writes and reads it.

One row per raster inside a download that did not become an output (`kind` "skipped": a preview
image, a colour photo, a raster beyond Web Mercator's latitudes) or became one with a warning
(`kind` "warning": several bands, one 8-bit band, a kept original that had to be converted):
`source,file,url,line,raster,kind,reason` (`raster` is its path inside the download). The rows
come from the chunk ledgers, so they survive reruns. A header only when there is nothing to say.
"""

from __future__ import annotations

from pathlib import Path

from tilewise.sources import report_csv

FIELDS = ("source", "file", "url", "line", "raster", "kind", "reason")


def write(rows: list[dict], path: Path) -> None:
    report_csv.write(rows, path, FIELDS, order=lambda r: (*report_csv.by_line(r), r["raster"]))


def read(path: Path) -> list[dict]:
    return report_csv.read(path)
