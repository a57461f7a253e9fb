"""Benchmark: a whole generated state through the biomass workflow, against floors measured in the same run.

The state covers 8 Sentinel-2 tiles (16T{C,D,E,F}{K,L}: central Illinois and Indiana's real MGRS
grid; `--small` a corner of one of them) with a grid of counties and parcels; its rasters are
generated here, by strips (bounded memory): the 8 tiles' B02 B03 B04 B08 at 10 m × scale
(10,980² px at scale 1) and SCL at 20 m × scale, the WorldCover 3° tiles at 1/12,000° × scale, a
CDL at 30 m × scale. It runs the workflow stage by stage (`snakemake --cores C` on the index, then
the tiles, then the rest) and prints

- wall time per stage, peak disk of the working folder (sampled) against the state's converted
  tiles + outputs, and the peak RSS of the largest process of each stage;
- tile conversion throughput against its floor: the same COG copies (same windows, options) in a
  bare pool of C processes, without verification;
- county processing in parcels per second against its floor: exactextract's own `exact_extract`
  over the same parcels and converted rasters with as many statistics (CDL and WorldCover: unique,
  frac, count; each Sentinel-2 band and SCL: mean, stdev, count), C processes, rasters decoded
  whole, no tilewise code.

Not a test. `--small` is the suite's quick check (tests/test_bench.py).

    .venv/bin/python bench/biomass_state.py [--scale 1] [--parcels 1000000] [--counties 100] [--cores 2]
    .venv/bin/python bench/biomass_state.py --small
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
import shapely
import yaml
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.windows import Window
from source_pipeline import DiskSampler, disk_bytes

from tilewise.biomass.grids import s2_footprint, worldcover_tile_box
from tilewise.shared.cog import full_width_nbits, tile_cog_options
from tilewise.shared.geometry import to_crs
from tilewise_demo.layout import CDL_YEAR, S2_DATE
from tilewise_demo.state import StateSpec, county_layer, crop_code, fia, landcover, parcel_layer

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]
TILES = ("16TCK", "16TDK", "16TEK", "16TFK", "16TCL", "16TDL", "16TEL", "16TFL")
BOX = (-89.30, 39.66, -84.56, 41.52)  # lon/lat: inside the union of the 8 tiles
SMALL_BOX = (-89.0, 39.85, -88.6, 40.15)  # --small: inside 16TCK alone, so the check converts one tile's bands
ROWS_PER_STRIP = 512
CODEC = "DEFLATE"  # config/config.yaml biomass.tile_codec
REFLECT = {10: (0.02, 0.04, 0.03, 0.35), 30: (0.04, 0.08, 0.06, 0.30), 40: (0.05, 0.09, 0.07, 0.40),
           50: (0.12, 0.13, 0.14, 0.20), 80: (0.03, 0.05, 0.03, 0.01)}  # fmt: skip


# --- the generated state ---


def write_striped(path: Path, crs, transform, shape, dtype, values, nodata=None, block=512) -> None:
    """A tiled DEFLATE GeoTIFF written ROWS_PER_STRIP rows at a time: values(lon, lat, rows) -> array.
    Written under a temporary name and renamed: a file of an interrupted generation is never reused."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    geographic = rasterio.crs.CRS.from_user_input(crs).is_geographic
    to_lonlat = None if geographic else Transformer.from_crs(crs, 4326, always_xy=True)
    cols = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    profile = dict(width=shape[1], height=shape[0], count=1, dtype=dtype, crs=crs,
                   transform=transform, nodata=nodata, tiled=True, blockxsize=block, blockysize=block,
                   compress="deflate", bigtiff="IF_SAFER")  # fmt: skip
    with rasterio.open(part, "w", driver="GTiff", **profile) as ds:
        for r0 in range(0, shape[0], ROWS_PER_STRIP):
            rows = np.arange(r0, min(r0 + ROWS_PER_STRIP, shape[0]))
            x, y = np.meshgrid(cols, transform.f + transform.e * (rows + 0.5))
            lon, lat = (x, y) if geographic else to_lonlat.transform(x, y)
            ds.write(values(lon, lat, rows).astype(dtype), 1, window=Window(0, r0, shape[1], len(rows)))
    os.replace(part, path)


def s2_values(lon, lat, r, band: str, tile: str):
    cls = landcover(lon, lat)
    if band == "SCL":
        return np.where(cls == 80, 6, np.where(cls == 50, 5, 4))
    b = ("B02", "B03", "B04", "B08").index(band)
    refl = np.zeros(lon.shape)
    for c, v in REFLECT.items():
        refl[cls == c] = v[b]
    noise = np.random.default_rng((int(tile[:2]), b, int(r[0]))).normal(0, 0.005, lon.shape)
    return np.clip(np.round((refl + noise) * 10000 + 1000), 1, 65535)


def _s2_band(args) -> None:
    path, tile, band, res = args
    epsg, (xmin, ymin, xmax, ymax) = s2_footprint(tile)
    shape = (int(round((ymax - ymin) / res)), int(round((xmax - xmin) / res)))
    dtype = "uint16" if band != "SCL" else "uint8"
    values = functools.partial(s2_values, band=band, tile=tile)
    write_striped(path, f"EPSG:{epsg}", from_origin(xmin, ymax, res, res), shape, dtype, values)


def sentinel2(out: Path, scale: int, cores: int) -> list[dict]:
    """The 8 tiles' bands, a band per process (about a minute each at scale 1)."""
    rows, jobs = [], []
    for tile in TILES:
        for band, res in [(b, 10 * scale) for b in ("B02", "B03", "B04", "B08")] + [("SCL", 20 * scale)]:
            path = out / "sentinel2" / f"T{tile}_{S2_DATE}_{band}.tif"
            jobs.append((path, tile, band, res))
            rows.append(
                {"tile": tile, "date": S2_DATE, "band": band, "href": str(path), "processing_baseline": "05.10"}
            )
    with mp.get_context("fork").Pool(cores) as pool:
        pool.map(_s2_band, jobs, chunksize=1)
    return rows


def worldcover(out: Path, scale: int, box: tuple) -> str:
    d = scale / 12000
    template = str(out / "worldcover" / "ESA_WorldCover_10m_2021_v200_{tile}_Map.tif")
    for lat in range(int(math.floor(box[1] / 3) * 3), int(box[3]) + 1, 3):
        for lon in range(int(math.floor(box[0] / 3) * 3), int(box[2]) + 1, 3):
            tile = f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"
            part = shapely.clip_by_rect(worldcover_tile_box(tile), *np.add(box, (-0.02, -0.02, 0.02, 0.02)))
            if part.is_empty:
                continue
            w, s, e, n = part.bounds
            shape = (int(round((n - s) / d)), int(round((e - w) / d)))
            write_striped(Path(template.format(tile=tile)), "EPSG:4326", from_origin(w, n, d, d), shape, "uint8",
                          lambda lon, lat, r: landcover(lon, lat), nodata=0, block=1024)  # fmt: skip
    return template


def cdl(out: Path, scale: int, box: tuple) -> Path:
    res = 30 * scale
    xmin, ymin, xmax, ymax = to_crs(shapely.box(*np.add(box, (-0.05, -0.05, 0.05, 0.05))), 4326, 5070, 0.01).bounds
    xmin, ymax = math.floor(xmin / res) * res, math.ceil(ymax / res) * res
    shape = (int((ymax - ymin) // res) + 1, int((xmax - xmin) // res) + 1)

    def values(lon, lat, r):
        wc = landcover(lon, lat)
        codes = np.select([wc == 10, wc == 30, wc == 50, wc == 80], [141, 176, 122, 111], default=0)
        return np.where(wc == 40, crop_code(lon, lat), codes)

    path = out / "cdl" / f"{CDL_YEAR}_30m_cdls_bench.tif"
    write_striped(path, "EPSG:5070", from_origin(xmin, ymax, res, res), shape, "uint8", values, nodata=0)
    return path


def state_spec(n_counties: int, n_parcels: int, box: tuple) -> StateSpec:
    west, south, east, north = box
    nx = max(1, round(math.sqrt(n_counties * (east - west) / (north - south))))
    ny = max(1, round(n_counties / nx))
    xs, ys = np.linspace(west, east, nx + 1), np.linspace(south, north, ny + 1)
    counties = {
        f"95{2 * (i * ny + j) + 1:03d}": (f"C{i}_{j}", xs[i], ys[j], xs[i + 1], ys[j + 1])
        for i in range(nx)
        for j in range(ny)
    }
    side = math.sqrt((east - west) * (north - south) * 2 / n_parcels)  # two parcels a grid cell on average
    return StateSpec("95", counties, side, 1)


def generate(data: Path, args) -> tuple[dict, StateSpec]:
    """The state's inputs; a --keep folder that holds a finished generation of the same size is reused."""
    spec = state_spec(args.counties, args.parcels, args.box)
    done, size = (
        data / "generated.json",
        {"scale": args.scale, "parcels": args.parcels, "counties": args.counties, "box": list(args.box)},
    )
    if done.exists() and json.loads(done.read_text())["size"] == size:
        return json.loads(done.read_text())["state"], spec
    (data / "fia").mkdir(parents=True, exist_ok=True)
    county_layer(spec).to_file(data / "counties.gpkg", layer="counties", driver="GPKG")
    if not (data / "parcels.parquet").exists():  # minutes for a million parcels: an interrupted run keeps them
        parcel_layer(spec).to_parquet(data / "parcels.parquet.part")
        os.replace(data / "parcels.parquet.part", data / "parcels.parquet")
    fia(data, spec)
    pd.DataFrame(sentinel2(data, args.scale, args.cores)).to_csv(data / "sentinel2_catalog.csv", index=False)
    state = {
        "fips": spec.fips,
        "counties": str(data / "counties.gpkg"),
        "parcels": str(data / "parcels.parquet"),
        "sentinel2_catalog": str(data / "sentinel2_catalog.csv"),
        "sentinel2_date": None,
        "worldcover": worldcover(data, args.scale, args.box),
        "cdl": [str(cdl(data, args.scale, args.box))],
        "cdl_year": CDL_YEAR,
        "nass_yields": None,  # the national table
        "fia_plot": str(data / "fia" / "PLOT.csv"),
        "fia_cond": str(data / "fia" / "COND.csv"),
        "fia_tree": str(data / "fia" / "TREE.csv"),
    }
    done.write_text(json.dumps({"size": size, "state": state}))
    return state, spec


# --- measuring ---


PEAK_RSS = (  # runs a command; writes the peak RSS (KiB) of its largest process to argv[1]
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(r)"
)


def stage(work: Path, cores: int, *args: str) -> tuple[float, int]:
    """One snakemake run: its wall seconds and the peak RSS (bytes) of its largest process."""
    rss = work / ".peak_rss"
    cmd = [sys.executable, "-c", PEAK_RSS, str(rss), *snakemake_cmd(REPO, work, *args, cores=cores)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    return wall, int(rss.read_text()) * 1024


def floor_copy(job: tuple[str, str, list[int]]) -> int:
    """The conversion without verification: the same window, the same COG options."""
    src_path, dst, (col, row, width, height) = job
    with rasterio.open(src_path) as src:
        opts = {**tile_cog_options(CODEC, src.dtypes[0]), **full_width_nbits(src)}
        profile = {**src.profile, "width": width, "height": height,
                   "transform": src.window_transform(Window(col, row, width, height))}  # fmt: skip
        profile.update(driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress=CODEC)
        if (width, height) == (src.width, src.height):
            rasterio.shutil.copy(src, dst, driver="COG", **opts)
        else:
            with rasterio.io.MemoryFile() as mem:  # the window, then GDAL's COG copy of it
                with mem.open(**profile) as part:
                    part.write(src.read(1, window=Window(col, row, width, height)), 1)
                with mem.open() as part:
                    rasterio.shutil.copy(part, dst, driver="COG", **opts)
    return os.path.getsize(dst)


def floor_zonal(job: tuple[list[str], str, str, list[str]]) -> int:
    """exactextract's exact_extract over parcels (a GeoParquet in the rasters' CRS) and whole rasters."""
    paths, parcels, _, ops = job
    vec = gpd.read_parquet(parcels)
    sources = []
    for p in paths:
        with rasterio.open(p) as ds:
            left, bottom, right, top = ds.bounds
            array = ds.read(1)
            nodata = None if ds.nodata is None else array.dtype.type(ds.nodata).item()
            sources.append(NumPyRasterSource(array, left, bottom, right, top, nodata=nodata,
                                             srs_wkt=ds.crs.to_wkt(), name=Path(p).stem))  # fmt: skip
    exact_extract(sources, vec, ops, output="pandas")
    return len(vec)


def run_pool(fn, jobs, cores: int) -> float:
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(cores) as pool:
        pool.map(fn, jobs, chunksize=1)
    return time.perf_counter() - t0


def zonal_jobs(work: Path, manifests: list[dict], tiles: pd.DataFrame, parcels, floor_dir: Path) -> list:
    """Per converted raster group: the parcels it serves, in its CRS (S2: the parcels nearest its centre)."""
    path = {(m["product"], m["key"]): str(work / m["path"]) for m in manifests}  # relative to the working folder
    jobs = []
    for product in ("cdl", "worldcover"):
        for key in tiles[tiles["product"] == product]["key"]:
            p = path[(product, key)]
            with rasterio.open(p) as ds:
                local = parcels.to_crs(ds.crs)
                inside = local[local.intersects(shapely.box(*ds.bounds))]
            f = floor_dir / f"{product}_{key}.parquet"
            inside.to_parquet(f)
            jobs.append(([p], str(f), product, ["unique", "frac", "count"]))
    s2 = tiles[tiles["product"] == "sentinel2"]
    centres = {t: s2_footprint(t) for t in s2["tile"].unique()}
    epsg = {e for e, _ in centres.values()}.pop()
    local = parcels.to_crs(epsg)
    c = shapely.get_coordinates(local.centroid.values)
    names = sorted(centres)
    dist = np.column_stack(
        [np.hypot(*(c - [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]).T) for _, b in (centres[t] for t in names)]
    )
    nearest = dist.argmin(axis=1)
    for k, tile in enumerate(names):
        keys = s2[s2["tile"] == tile].sort_values("band")["key"]
        f = floor_dir / f"s2_{tile}.parquet"
        local[nearest == k].to_parquet(f)
        jobs.append(([path[("sentinel2", key)] for key in keys], str(f), "sentinel2", ["mean", "stdev", "count"]))
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="pixel size × this (1: 10,980² px per band)")
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--counties", type=int, default=100)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="a quick check: scale 60, 3,000 parcels, 4 counties, 1 tile")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (its generated inputs are reused)")
    ap.add_argument("--generate-only", action="store_true", help="write the inputs into --keep and stop")
    args = ap.parse_args()
    args.box = BOX
    if args.small:
        args.scale, args.parcels, args.counties, args.box = 60, 3000, 4, SMALL_BOX
    if args.generate_only and not args.keep:
        ap.error("--generate-only needs --keep")
    root = args.keep or Path(tempfile.mkdtemp(prefix="tilewise-state-bench-"))
    data, work, floor_dir = root / "data", root / "work", root / "floor"
    for d in (work, floor_dir):  # a kept folder's earlier run would make every stage a no-op
        shutil.rmtree(d, ignore_errors=True)
    for d in (data, work, floor_dir):
        d.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        state, spec = generate(data, args)
        generate_s = time.perf_counter() - t
        if args.generate_only:
            print(f"generated in {generate_s:.1f} s: {data}")
            return
        cfg = root / "config.yaml"
        cfg.write_text(yaml.safe_dump({"state": "bench", "states": {"bench": state}}))
        config = ["--configfile", str(cfg)]
        load = os.getloadavg()
        sampler = DiskSampler(work)
        sampler.start()
        results = work / "results" / "states" / "bench"
        rel = results.relative_to(work)  # targets are relative to the working folder
        index_s, index_rss = stage(work, args.cores, str(rel / "index"), *config)
        tiles = pd.read_csv(results / "index" / "tiles.csv", dtype=str)
        targets = [str(rel / "tiles" / p / f"{k}.json") for p, k in zip(tiles["product"], tiles["key"], strict=True)]
        # the conversion floor first, then the workflow's conversion of the same windows
        convert_s, convert_rss = stage(work, args.cores, *targets, *config)
        manifests = [json.loads((work / p).read_text()) for p in targets]
        if any(m["status"] != "ok" for m in manifests):
            sys.exit("a tile failed: " + "; ".join(m.get("error", "") for m in manifests if m["status"] != "ok"))
        converted = [m for m in manifests if m["read"] in ("clip", "convert")]
        copy_jobs = [
            (
                tiles.set_index(["product", "key"]).loc[(m["product"], m["key"]), "href"],
                str(floor_dir / f"{m['product']}_{m['key']}.tif"),
                m["window_px"],
            )
            for m in converted
        ]
        copy_jobs = [(h if Path(h).is_absolute() else str(data / h), d, w) for h, d, w in copy_jobs]
        copy_floor_s = run_pool(floor_copy, copy_jobs, args.cores)
        for _, d, _ in copy_jobs:
            Path(d).unlink()
        tile_bytes = sum(m["bytes"] for m in converted)
        parcels = gpd.read_parquet(data / "parcels.parquet")
        zonal_floor_s = run_pool(floor_zonal, zonal_jobs(work, manifests, tiles, parcels, floor_dir), args.cores)
        rest_s, rest_rss = stage(work, args.cores, *config)
        sampler.stop.set()
        sampler.join()
        runs = [json.loads(p.read_text()) for p in (results / "county_runs").glob("*.json")]
        county_s = max(r["ended_unix"] for r in runs) - min(r["started_unix"] for r in runs)
        n = sum(r["parcels_count"] for r in runs)
        outputs = disk_bytes(work)  # the tiles are deleted once their counties are done: all else stays
        report(args, spec, locals())
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def report(args, spec, v) -> None:
    mb = 1e6
    print(
        f"state                       {len(spec.counties)} counties, {v['n']:,} parcels, "
        f"{v['tiles'].loc[v['tiles']['product'] == 'sentinel2', 'tile'].nunique()} Sentinel-2 tiles"
    )
    print(f"scale                       {args.scale} (Sentinel-2 bands {10 * args.scale} m)")
    print(f"load average before         {' '.join(f'{x:.2f}' for x in v['load'])} (figures need a quiet machine)")
    print(f"generate                    {v['generate_s']:.1f} s")
    print(f"stage index                 {v['index_s']:.1f} s, peak RSS {v['index_rss'] / mb:.0f} MB")
    print(f"stage tiles                 {v['convert_s']:.1f} s, peak RSS {v['convert_rss'] / mb:.0f} MB")
    print(f"stage counties and state    {v['rest_s']:.1f} s, peak RSS {v['rest_rss'] / mb:.0f} MB")
    wf, fl = v["tile_bytes"] / v["convert_s"] / mb, v["tile_bytes"] / v["copy_floor_s"] / mb
    print(f"converted tiles             {len(v['converted'])} files, {v['tile_bytes'] / mb:.1f} MB")
    print(
        f"tile throughput             {wf:.1f} MB/s, floor {fl:.1f} MB/s "
        f"(copy without verification, {v['copy_floor_s']:.1f} s)"
    )
    print(f"ratio tiles/floor           {wf / fl:.2f}   (target ≥ 0.8)")
    wp, fp = v["n"] / v["county_s"], v["n"] / v["zonal_floor_s"]
    print(f"county processing           {v['county_s']:.1f} s (first county start to last county end)")
    print(f"parcels per second          {wp:,.0f}, floor {fp:,.0f} (exact_extract, {v['zonal_floor_s']:.1f} s)")
    print(f"ratio counties/floor        {wp / fp:.2f}   (target ≥ 0.6)")
    blocks = sum(r.get("blocks_read_again_count", 0) for r in v["runs"])
    print(f"blocks read again           {blocks}")
    peak, bound = v["sampler"].peak, v["tile_bytes"] + v["outputs"]
    print(f"peak disk (sampled)         {peak / mb:.1f} MB; converted tiles + outputs {bound / mb:.1f} MB; "
          f"within: {'yes' if peak <= bound else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
