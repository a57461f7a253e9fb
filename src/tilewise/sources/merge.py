"""Merge the chunk ledgers of a source: the store, bounds.csv, coverage.gpkg (one CRS), failures.csv, skipped.csv.

The merge is the only writer of `source-store/{source}/`. Chunks stage their COGs in
`work/{source}/staging/{chunk}/`; the merge first checks every name against every other chunk's
(a collision stops it before anything in the store changes, with a fix that works), then moves the
staged COGs into the store and deletes every store file no current ledger names: what a URL that
left the list produced leaves with it, found by provenance, and a name now made by another URL
holds that URL's pixels.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import shapely
import yaml
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

from tilewise.shared import reproject
from tilewise.shared.errors import TilewiseError
from tilewise.shared.web_mercator import crs_from_text, epsg_places_alike, footprint_points
from tilewise.sources import bounds_csv as bounds_file
from tilewise.sources import coverage_gpkg as coverage_file
from tilewise.sources import coverage_union, ledger, mosaic, names, store_index
from tilewise.sources import failures_csv as failures_file
from tilewise.sources import skipped_csv as skipped_file
from tilewise.sources.catalog import archive_group, line_numbers
from tilewise.sources.ledger import Ledger
from tilewise.sources.names import collision_key, safe_name
from tilewise.sources.recipe import Recipe, glob_match

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Made:
    """One COG with its provenance: the chunk, the URL and the download it came from."""

    ledger: Path
    chunk: str
    url: str
    file: str
    out: dict

    @property
    def name(self) -> str:
        return self.out["filename"]


def outputs_of(ledgers: list[tuple[Path, Ledger]]) -> list[Made]:
    made = [
        Made(path, led.chunk, rec["url"], rec["file"], out)
        for path, led in ledgers
        for rec in led.files
        for out in rec.get("outputs", [])
    ]
    return sorted(made, key=lambda m: m.name)


def _recipe_of(ledgers: list[tuple[Path, Ledger]]) -> Recipe:
    """The source's recipe as the chunks ran it (each chunk sees only its own prefix_names_from)."""
    if not ledgers:
        return Recipe()
    recipe = Recipe.from_dict(ledgers[0][1].recipe)
    prefixes = sorted({p for _, led in ledgers for p in led.recipe.get("prefix_names_from", [])})
    return replace(recipe, prefix_names_from=tuple(prefixes))


def check_names(made: list[Made], lines: dict[str, int], recipe_file: Path, recipe: Recipe, store: Path) -> None:
    """Refuse names that collide (also in case only): say who makes them and how to keep both."""
    by_key: dict[str, list[Made]] = defaultdict(list)
    for m in made:
        by_key[collision_key(m.name)].append(m)
    clashes = [group for group in by_key.values() if len(group) > 1]
    if not clashes:
        return
    listing = []
    for group in clashes[:20]:
        listing.append(f"  {group[0].name}:")
        listing += [f"    {m.out['raster']} in {m.file} (line {lines.get(m.url, '?')}, chunk {m.chunk})" for m in group]
    more = f"\n  … and {len(clashes) - 20} more" if len(clashes) > 20 else ""
    raise TilewiseError(
        f"{len(clashes)} output name(s) of the source are made by more than one raster (names that differ only "
        f"in case count as one):\n"
        + "\n".join(listing)
        + more
        + f"\nNothing in {store}/ was changed. "
        + _fixes(clashes, made, recipe_file, recipe)
    )


def _fixes(clashes: list[list[Made]], made: list[Made], recipe_file: Path, recipe: Recipe) -> str:
    downloads = sorted({archive_group(m.file) for group in clashes for m in group})
    clashing = {collision_key(group[0].name) for group in clashes}
    others = {collision_key(m.name) for m in made} - clashing
    prefixed = [collision_key(_prefixed(m)) for group in clashes for m in group]
    if len(set(prefixed)) == len(prefixed) and not others & set(prefixed):
        how = "To keep them all, name the rasters of these downloads after them ({download stem}_{folders}_{name})"
        key, value = "prefix_names_from", downloads
    else:
        how = (
            f"Even named after their downloads they would collide: keep one download ({downloads[0]}), drop the others"
        )
        key, value = "exclude", downloads[1:]
    fixed = replace(recipe, **{key: tuple(sorted(set(getattr(recipe, key)) | set(value)))})
    if recipe_file.name == "source.yaml":
        where, text = f"set in {recipe_file}:", yaml.safe_dump({key: list(getattr(fixed, key))})
    else:
        entry = recipe_file.parent if recipe_file.is_file() else recipe_file
        origin = f"the recipe comes from {recipe_file}" if recipe_file.is_file() else "the source has no recipe"
        where, text = f"{origin}; write it as {entry / 'source.yaml'}:", yaml.safe_dump(fixed.non_defaults())
    return f"{how}; {where}\n" + "".join(f"    {line}\n" for line in text.splitlines()) + "then rerun."


def _prefixed(m: Made) -> str:
    """The name `prefix_names_from` would give this output."""
    folders = list(Path(m.out["raster"]).parent.parts)
    return safe_name("_".join([names.stem(archive_group(m.file)), *folders, m.name]))


def _where_now(m: Made, staging: Path, store: Path) -> Path:
    staged = staging / m.chunk / m.out["staged"]
    return staged if staged.is_file() else store / m.name


def place_in_store(made: list[Made], staging: Path, store: Path) -> None:
    """Move staged COGs into the store; a COG neither staged nor in the store as its ledger says
    was deleted or changed: remove that chunk's ledger (the next run prepares it again) and stop."""
    moves, lost = [], defaultdict(list)
    for m in made:
        staged = staging / m.chunk / m.out["staged"]
        found = _where_now(m, staging, store)
        try:
            size = found.stat().st_size
        except FileNotFoundError:
            lost[m.ledger].append(f"{store / m.name}: missing")
            continue
        if size != m.out["bytes"]:
            lost[m.ledger].append(f"{found}: {size:,} bytes, its ledger says {m.out['bytes']:,}")
        elif found == staged:
            moves.append((staged, store / m.name))
    if lost:
        listing = "\n".join(f"  {why}" for whys in lost.values() for why in whys[:5])
        raise ledger.discard(
            lost, f"COGs do not match their ledgers (deleted or changed after their chunk made them):\n{listing}"
        )
    store.mkdir(parents=True, exist_ok=True)
    for staged, final in moves:
        staged.replace(final)


def prune(
    store: Path, staging: Path, keep: set[str], keep_bounds: str, ledgers: list[Path], remote: Path | None = None
) -> list[str]:
    """Delete store files no current ledger names (COGs of URLs that left the list, of an older
    recipe, of a name now made by another URL), and the ledgers, remote states (in `remote`) and
    staging of chunks that are no longer planned (should such a chunk come back, it is prepared
    again, not trusted, and starts with no version a refresh found)."""
    chunks = {p.stem for p in ledgers}
    for folder in {p.parent for p in ledgers}:
        for old in folder.glob("*.json"):
            if old not in ledgers:
                old.unlink()
    for old in remote.glob("*.json") if remote is not None and remote.is_dir() else []:
        if old.stem not in chunks:
            old.unlink()
    removed = []
    for path in sorted(store.iterdir()) if store.is_dir() else []:
        if (
            path.is_file()
            and path.name not in keep
            and path.name != keep_bounds
            and path.name.endswith((".tif", ".tmp"))
        ):
            path.unlink()
            removed.append(path.name)
    for folder in staging.iterdir() if staging.is_dir() else []:
        if folder.name not in chunks:
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def check_ledgers_match_the_list(ledgers: list[tuple[Path, Ledger]], listed: set[str]) -> None:
    """Every URL of the file list is recorded by exactly one ledger, and no ledger records another.
    Anything else means ledgers made under another chunk plan (the list edited during the run, a
    chunk count changed, Snakemake's records in .snakemake/ lost): merged, a file would leave the
    store or ship twice, silently. Ledgers that record a file twice or one no longer listed are
    removed, so the next run prepares their chunks again; a listed file in no ledger is refused."""
    first: dict[str, Path] = {}
    wrong: dict[str, set[Path]] = defaultdict(set)  # URL → the ledgers to remove for it
    for path, led in ledgers:
        for rec in led.files:
            url = rec["url"]
            if first.setdefault(url, path) != path:
                wrong[url] |= {first[url], path}
            elif url not in listed:
                wrong[url].add(path)
    unrecorded = sorted(listed - first.keys())
    if not wrong and not unrecorded:
        return
    lines = [f"  {url}: in chunks {', '.join(sorted(p.stem for p in paths))}" for url, paths in wrong.items()]
    lines += [f"  {url}: in no chunk" for url in unrecorded]
    why = "the chunk ledgers do not match file_list.txt:\n" + "\n".join(lines[:10])
    why += f"\n  … and {len(lines) - 10:,} more" if len(lines) > 10 else ""
    if unrecorded:
        why += (
            "\nA file in no chunk: if the list was edited during this run, run again; else the ledgers were made "
            "under another chunk plan that Snakemake did not rerun (its records in .snakemake/ lost?): "
            "rerun with --forcerun prepare_chunk"
        )
    if wrong:
        raise ledger.discard({p for paths in wrong.values() for p in paths}, why)
    raise TilewiseError(why)


def unused_patterns(ledgers: list[tuple[Path, Ledger]]) -> list[str]:
    """Recipe `exclude` patterns that dropped nothing in the whole source: a typo would otherwise ship
    the very file it meant to drop (Mapterhorn's `rm` without -f would stop the recipe)."""
    recipe = _recipe_of(ledgers)
    dropped = {Path(n).name for _, led in ledgers for rec in led.files for n in rec.get("excluded", [])}
    return [p for p in recipe.exclude if not any(glob_match(n, p) for n in dropped)]


def failures_of(ledgers: list[tuple[Path, Ledger]], lines: dict[str, int]) -> list[dict]:
    return [
        {
            "source": led.source,
            "file": rec["file"],
            "url": rec["url"],
            "line": lines.get(rec["url"], ""),
            "step": rec["step"],
            "error": rec["error"],
            "ledger": str(path),
        }
        for path, led in ledgers
        for rec in led.failures()
    ]


def skipped_of(ledgers: list[tuple[Path, Ledger]], lines: dict[str, int]) -> list[dict]:
    return [
        {"source": led.source, "file": rec["file"], "url": rec["url"], "line": lines.get(rec["url"], ""), **note}
        for _, led in ledgers
        for rec, note in led.skipped()
    ]


def coverage_crs(outputs: list[dict], wanted: str | None) -> CRS:
    if wanted:
        return CRS.from_user_input(wanted)  # the recipe check made sure it has an EPSG code
    crss = Counter(o["crs"] for o in outputs)
    if len(crss) == 1:
        return epsg_crs(CRS.from_user_input(next(iter(crss))), _footprint(outputs))
    return CRS.from_epsg(3857)  # mixed CRSs: the one bounds.csv uses


def epsg_crs(crs: CRS, footprint: tuple[float, float, float, float] | None = None) -> CRS:
    """`crs` as a CRS with an EPSG code: Mapterhorn's coverage bundle (planetiler's GeoPackage reader) reads a
    layer's CRS as `EPSG:{srs_id}`. A compound CRS gives its horizontal part (what Mapterhorn's se and
    nlahn5lowresfilled fix by hand with ogr2ogr -a_srs); a CRS without a code, Web Mercator. The code must
    put `footprint` (bounds in `crs`; without one, the code's area of use) where `crs` does: a code that
    only resembles the CRS (rasterio's guess for a datum-less CRS) would label the coverage with a datum
    shift it does not have, so such a CRS gets Web Mercator too."""
    if crs.is_compound:
        crs = crs.sub_crs_list[0]
    epsg = crs.to_epsg()
    if epsg is not None and footprint is None:
        footprint = _area_of_use(crs, epsg)
    if (
        epsg is not None
        and footprint is not None
        and epsg_places_alike(crs.to_wkt(), epsg, *footprint_points(footprint))
    ):
        return CRS.from_epsg(epsg)
    return CRS.from_epsg(3857)


def _footprint(outputs: list[dict]) -> tuple[float, float, float, float] | None:
    """The bounds, in its own CRS, of the first output's coverage (None without one)."""
    for o in outputs:
        if o.get("coverage_wkb"):
            geom = shapely.from_wkb(bytes.fromhex(o["coverage_wkb"]))
            if not geom.is_empty:
                return geom.bounds
    return None


def _area_of_use(crs: CRS, epsg: int) -> tuple[float, float, float, float] | None:
    """EPSG:`epsg`'s area of use, in `crs` (None when the code has none or `crs` cannot take it)."""
    area = CRS.from_epsg(epsg).area_of_use
    if area is None:
        return None
    try:
        to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        bounds = to_crs.transform_bounds(area.west, area.south, area.east, area.north)
    except ProjError:
        return None
    return bounds if all(math.isfinite(v) for v in bounds) else None


def union_coverage(outputs: list[dict], crs: CRS, workers: int = 1) -> shapely.Geometry:
    """The union of the outputs' coverage polygons in `crs`. `workers`: threads for the union."""
    by_crs = defaultdict(list)
    for i, o in enumerate(outputs):
        by_crs[o["crs"]].append(i)
    geoms = np.empty(len(outputs), dtype=object)
    for src, rows in by_crs.items():  # a CRS at a time: 20,000 polygons one by one cost a second
        decoded = shapely.from_wkb([bytes.fromhex(outputs[i]["coverage_wkb"]) for i in rows])
        geoms[rows] = reproject.reproject_all(decoded, crs_from_text(src), crs)
    merged = coverage_union.union(geoms, workers)
    polys = [g for g in shapely.get_parts(merged) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    return shapely.MultiPolygon([p for g in polys for p in shapely.get_parts(g)])


@dataclass(frozen=True)
class MergePaths:
    store: Path  # source-store/{source}
    staging: Path  # work/{source}/staging (one folder per chunk)
    store_index: Path
    bounds_csv: Path
    coverage_gpkg: Path
    failures_csv: Path
    skipped_csv: Path
    remote_state: Path  # work/{source}/remote: the chunks' remote states (tilewise.sources.remote_state)


def merge_source(
    ledger_paths: list[Path],
    paths: MergePaths,
    file_list: Path,
    recipe_file: Path,
    wanted_crs: str | None,
    threads: int = 1,
) -> dict:
    """`threads`: for the coverage union, which runs beside the rest (its answer is the same with any number)."""
    ledgers = ledger.read_all(ledger_paths)
    lines = line_numbers(file_list)
    check_ledgers_match_the_list(ledgers, set(lines))
    made = outputs_of(ledgers)
    outputs = [m.out for m in made]
    crs = coverage_crs(outputs, wanted_crs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # GEOS unions without holding the GIL: it runs while the store and the reports are written
        union = pool.submit(union_coverage, outputs, crs, threads)
        check_names(made, lines, recipe_file, _recipe_of(ledgers), paths.store)
        where = [_where_now(m, paths.staging, paths.store) for m in made]
        mosaic.check(outputs, where, ledgers[0][1].source if ledgers else "")
        for pattern in unused_patterns(ledgers):
            log.warning("%s: exclude pattern %r matched no file of the source (a typo?)", recipe_file, pattern)
        place_in_store(made, paths.staging, paths.store)
        keep = {m.name for m in made}
        removed = prune(
            paths.store, paths.staging, keep, paths.bounds_csv.name, [p for p, _ in ledgers], paths.remote_state
        )
        cogs = defaultdict(list)
        for m in made:
            cogs[m.chunk].append(paths.store / m.name)
        failures = failures_of(ledgers, lines)
        paths.coverage_gpkg.parent.mkdir(parents=True, exist_ok=True)
        bounds_file.write(outputs, paths.bounds_csv)
        failures_file.write(failures, paths.failures_csv)
        skipped = skipped_of(ledgers, lines)
        skipped_file.write(skipped, paths.skipped_csv)
        coverage_file.write(union.result(), crs, paths.coverage_gpkg)
    chunks = {
        led.chunk: {"ledger": p, "files": cogs[led.chunk], "records": led.files, "inputs": led.inputs}
        for p, led in ledgers
    }
    # last: it vouches for what is written
    store_index.write(paths.store_index, chunks, paths.coverage_gpkg, paths.bounds_csv)
    summary = {
        "cogs": len(outputs),
        "failed_files": len(failures),
        "skipped_rasters": sum(1 for r in skipped if r["kind"] == "skipped"),
        "coverage_crs": crs.to_string(),
        "removed_from_store": removed,
    }
    log.info("merged %d ledgers: %s", len(ledgers), summary)
    return summary
