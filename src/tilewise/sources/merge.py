"""Merge the chunk ledgers of a source: bounds.csv, coverage.gpkg (one CRS), failures.csv, skipped.csv."""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import shapely
from pyproj import CRS

from tilewise.shared.errors import TilewiseError
from tilewise.sources import bounds_csv as bounds_file
from tilewise.sources import coverage_reproject, ledger
from tilewise.sources import failures_csv as failures_file
from tilewise.sources import skipped_csv as skipped_file
from tilewise.sources.ledger import Ledger

log = logging.getLogger(__name__)


def outputs_of(ledgers: list[tuple[Path, Ledger]]) -> list[dict]:
    """Every COG of the source, sorted by file name; a name made by two URLs is an error."""
    outputs, makers = [], {}
    for _, led in ledgers:
        for rec in led.files:
            for out in rec.get("outputs", []):
                if out["filename"] in makers:
                    raise TilewiseError(
                        f"{out['filename']} is made by two files of the source: {makers[out['filename']]} and "
                        f"{rec['url']}; file names must be unique — exclude one (recipe `exclude:`) or fix the list"
                    )
                makers[out["filename"]] = rec["url"]
                outputs.append(out)
    return sorted(outputs, key=lambda o: o["filename"])


def failures_of(ledgers: list[tuple[Path, Ledger]]) -> list[dict]:
    return [
        {
            "source": led.source,
            "file": rec["file"],
            "url": rec["url"],
            "line": rec["line"],
            "step": rec["step"],
            "error": rec["error"],
            "ledger": str(path),
        }
        for path, led in ledgers
        for rec in led.failures()
    ]


def skipped_of(ledgers: list[tuple[Path, Ledger]]) -> list[dict]:
    return [
        {"source": led.source, "file": rec["file"], "url": rec["url"], "line": rec["line"], **note}
        for _, led in ledgers
        for rec, note in led.skipped()
    ]


def coverage_crs(outputs: list[dict], wanted: str | None) -> CRS:
    if wanted:
        return CRS.from_user_input(wanted)
    crss = Counter(o["crs"] for o in outputs)
    if len(crss) == 1:
        return CRS.from_user_input(next(iter(crss)))
    return CRS.from_epsg(3857)  # mixed CRSs: the one bounds.csv uses


def _to_crs(geom: shapely.Geometry, src: str, dst: CRS) -> shapely.Geometry:
    return coverage_reproject.reproject(geom, CRS.from_user_input(src), dst)


def union_coverage(outputs: list[dict], crs: CRS) -> shapely.Geometry:
    geoms = [_to_crs(shapely.from_wkb(bytes.fromhex(o["coverage_wkb"])), o["crs"], crs) for o in outputs]
    merged = shapely.make_valid(shapely.union_all(geoms)) if geoms else shapely.MultiPolygon()
    polys = [g for g in shapely.get_parts(merged) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    return shapely.MultiPolygon([p for g in polys for p in shapely.get_parts(g)])


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
    skipped_csv: Path,
    wanted_crs: str | None,
) -> dict:
    ledgers = ledger.read_all(ledger_paths)
    outputs = outputs_of(ledgers)
    failures = failures_of(ledgers)
    crs = coverage_crs(outputs, wanted_crs)
    coverage_gpkg.parent.mkdir(parents=True, exist_ok=True)
    bounds_file.write(outputs, bounds_csv)
    failures_file.write(failures, failures_csv)
    skipped = skipped_of(ledgers)
    skipped_file.write(skipped, skipped_csv)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # GEOS unions without holding the GIL, so it runs while pyogrio is imported: about half a
        # second each for a small source (pyogrio imports pandas and geopandas when they are installed)
        union = pool.submit(union_coverage, outputs, crs)
        from tilewise.sources import coverage_gpkg as coverage_file

        coverage_file.write(union.result(), crs, coverage_gpkg)
    orphans = prune_orphans(store, {o["filename"] for o in outputs})
    summary = {
        "cogs": len(outputs),
        "failed_files": len(failures),
        "skipped_rasters": sum(1 for r in skipped if r["kind"] == "skipped"),
        "coverage_crs": crs.to_string(),
        "orphans_removed": orphans,
    }
    log.info("merged %d ledgers: %s", len(ledgers), summary)
    return summary
