"""Merge the chunk ledgers of a source: bounds.csv, coverage.gpkg (one CRS), failures.csv."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer

from tilewise.errors import TilewiseError

log = logging.getLogger(__name__)
FAILURE_FIELDS = ("source", "file", "url", "line", "step", "error", "ledger")
BOUNDS_FIELDS = ("filename", "left", "bottom", "right", "top", "width", "height")  # Mapterhorn's bounds.csv


def read_ledgers(paths: list[Path]) -> list[tuple[Path, dict]]:
    return [(Path(p), json.loads(Path(p).read_text())) for p in paths]


def outputs_of(ledgers: list[tuple[Path, dict]]) -> list[dict]:
    """Every COG of the source, sorted by file name; a name made by two URLs is an error."""
    outputs, makers = [], {}
    for _, ledger in ledgers:
        for rec in ledger["files"]:
            for out in rec.get("outputs", []):
                if out["filename"] in makers:
                    raise TilewiseError(
                        f"{out['filename']} is made by two files of the source: {makers[out['filename']]} and "
                        f"{rec['url']}; file names must be unique — exclude one (recipe `exclude:`) or fix the list"
                    )
                makers[out["filename"]] = rec["url"]
                outputs.append(out)
    return sorted(outputs, key=lambda o: o["filename"])


def failures_of(ledgers: list[tuple[Path, dict]]) -> list[dict]:
    rows = []
    for path, ledger in ledgers:
        for rec in ledger["files"]:
            if rec["status"] == "failed":
                rows.append(
                    {
                        "source": ledger["source"],
                        "file": rec["file"],
                        "url": rec["url"],
                        "line": rec["line"],
                        "step": rec["step"],
                        "error": rec["error"],
                        "ledger": str(path),
                    }
                )
    return sorted(rows, key=lambda r: r["line"])


def coverage_crs(outputs: list[dict], wanted: str | None) -> CRS:
    if wanted:
        return CRS.from_user_input(wanted)
    crss = Counter(o["crs"] for o in outputs)
    if len(crss) == 1:
        return CRS.from_user_input(next(iter(crss)))
    return CRS.from_epsg(3857)  # mixed CRSs: the one bounds.csv uses


def _to_crs(geom: shapely.Geometry, src: str, dst: CRS) -> shapely.Geometry:
    src_crs = CRS.from_user_input(src)
    if src_crs == dst or geom.is_empty:
        return geom
    # densify first so straight edges stay faithful after a curved projection
    xmin, ymin, xmax, ymax = geom.bounds
    geom = shapely.segmentize(geom, max(xmax - xmin, ymax - ymin) / 64 or 1)
    t = Transformer.from_crs(src_crs, dst, always_xy=True)
    return shapely.make_valid(shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))))


def union_coverage(outputs: list[dict], crs: CRS) -> shapely.Geometry:
    geoms = [_to_crs(shapely.from_wkb(bytes.fromhex(o["coverage_wkb"])), o["crs"], crs) for o in outputs]
    merged = shapely.make_valid(shapely.union_all(geoms)) if geoms else shapely.MultiPolygon()
    polys = [g for g in shapely.get_parts(merged) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    return shapely.MultiPolygon([p for g in polys for p in shapely.get_parts(g)])


def write_bounds(outputs: list[dict], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    rows = (",".join(str(o[field]) for field in BOUNDS_FIELDS) for o in outputs)
    tmp.write_text("\n".join([",".join(BOUNDS_FIELDS), *rows]) + "\n")
    os.replace(tmp, path)


def write_failures(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FAILURE_FIELDS)
        w.writeheader()
        w.writerows(rows)


def prune_orphans(store: Path, keep: set[str]) -> list[str]:
    """COGs left in the store by URLs that were removed from the list (or by an older recipe)."""
    orphans = sorted(p.name for p in store.glob("*.tif") if p.name not in keep)
    for name in orphans:
        (store / name).unlink()
    return orphans


def merge_source(
    ledger_paths: list[Path],
    store: Path,
    bounds_csv: Path,
    coverage_gpkg: Path,
    failures_csv: Path,
    wanted_crs: str | None,
) -> dict:
    ledgers = read_ledgers(ledger_paths)
    outputs = outputs_of(ledgers)
    failures = failures_of(ledgers)
    crs = coverage_crs(outputs, wanted_crs)
    for path in (bounds_csv, coverage_gpkg, failures_csv):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_bounds(outputs, bounds_csv)
    write_failures(failures, failures_csv)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # GEOS unions without holding the GIL, so it runs while pyogrio is imported: about half a
        # second each for a small source (pyogrio imports pandas and geopandas when they are installed)
        union = pool.submit(union_coverage, outputs, crs)
        from tilewise.gpkg import write_coverage

        write_coverage(union.result(), crs, coverage_gpkg)
    orphans = prune_orphans(store, {o["filename"] for o in outputs})
    summary = {
        "cogs": len(outputs),
        "failed_files": len(failures),
        "coverage_crs": crs.to_string(),
        "orphans_removed": orphans,
    }
    log.info("merged %d ledgers: %s", len(ledgers), summary)
    return summary
