"""Benchmark: one generated county of 50,000 parcels on preprocessed (converted) tiles.

Prints parcels per second and the compressed bytes read per median parcel, the two figures of
issue 3's targets (≥ 5,000 parcels/s on 2 cores, ≤ 64 KB per median parcel). Not a test.

    .venv/bin/python bench/biomass_county.py [--parcels 50000] [--workers 2] [--km 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from rasterio.transform import from_origin

from tilewise.biomass import crop_tables, crops
from tilewise.biomass.county import CountyInputs, S2Tile, process_county
from tilewise.biomass.forest import state_plot_densities
from tilewise.biomass.grids import s2_footprint
from tilewise.biomass.tiles import write_cog
from tilewise.shared.geometry import to_crs
from tilewise_demo.layout import CDL_YEAR, NASS_YIELDS, STATE_FIPS
from tilewise_demo.rasters import write_band
from tilewise_demo.state import crop_code, fia, landcover, yields

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.config import defaults

TILE = "16TCK"
SIDE_KM = 40  # the county: 40 km × 40 km in the middle of the tile (1,600 km², like a large Illinois county)


def lonlat(crs, transform, shape):
    from pyproj import Transformer

    x, y = np.meshgrid(
        transform.c + transform.a * (np.arange(shape[1]) + 0.5), transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    )
    return Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)


def make_inputs(work: Path, n_parcels: int, side_km: float = SIDE_KM) -> tuple[CountyInputs, dict]:
    side_m = round(side_km * 1000 / 10) * 10  # whole Sentinel-2 pixels
    epsg, (xmin, ymin, xmax, ymax) = s2_footprint(TILE)
    x0, y0 = xmin + 30_000, ymin + 30_000  # county SW corner in UTM
    rng = np.random.default_rng(0)
    timings = {}
    t = time.perf_counter()
    # Sentinel-2 bands at 10 m, the full county window (4,096² px) plus a margin
    px = 10
    n = (side_m + 2_000) // px
    transform = from_origin(x0 - 1000, y0 + side_m + 1000, px, px)
    lon, lat = lonlat(epsg, transform, (n, n))
    cls = landcover(lon, lat)
    reflect = {
        10: (0.02, 0.04, 0.03, 0.35),
        30: (0.04, 0.08, 0.06, 0.30),
        40: (0.05, 0.09, 0.07, 0.40),
        50: (0.12, 0.13, 0.14, 0.20),
        80: (0.03, 0.05, 0.03, 0.01),
    }
    originals = {}
    for b, band in enumerate(("B02", "B03", "B04", "B08")):
        refl = np.zeros((n, n), np.float32)
        for c, v in reflect.items():
            refl[cls == c] = v[b]
        dn = np.clip((refl + rng.normal(0, 0.01, (n, n))) * 10000 + 1000, 1, 65535).astype(np.uint16)
        originals[band] = work / f"orig_{band}.tif"
        write_band(originals[band], dn, epsg, transform)
    scl = np.where(cls == 80, 6, 4).astype(np.uint8)
    originals["SCL"] = work / "orig_SCL.tif"
    write_band(originals["SCL"], scl, epsg, transform)
    # WorldCover at its real 1/12000° and CDL at 30 m over the county
    box = to_crs(shapely.box(x0 - 1000, y0 - 1000, x0 + side_m + 1000, y0 + side_m + 1000), epsg, 4326, 1000)
    w, s, e, nn = box.bounds
    d = 1 / 12000
    wt = from_origin(np.floor(w / d) * d, np.ceil(nn / d) * d, d, d)
    shape = (int((nn - s) / d) + 2, int((e - w) / d) + 2)
    wl, wla = lonlat(4326, wt, shape)
    originals["WC"] = work / "orig_wc.tif"
    write_band(originals["WC"], landcover(wl, wla), "EPSG:4326", wt, nodata=0)
    cbox = to_crs(box, 4326, 5070, None).bounds
    ct = from_origin(np.floor(cbox[0] / 30) * 30, np.ceil(cbox[3] / 30) * 30, 30, 30)
    cshape = (int((cbox[3] - cbox[1]) / 30) + 2, int((cbox[2] - cbox[0]) / 30) + 2)
    cl, cla = lonlat(5070, ct, cshape)
    wc = landcover(cl, cla)
    codes = np.select([wc == 10, wc == 30, wc == 80], [141, 176, 111], default=0).astype(np.uint8)
    originals["CDL"] = work / "orig_cdl.tif"
    write_band(
        originals["CDL"], np.where(wc == 40, crop_code(cl, cla), codes).astype(np.uint8), "EPSG:5070", ct, nodata=0
    )
    timings["generate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    converted = {}
    for key, path in originals.items():
        converted[key] = work / f"{key}.tif"
        write_cog(str(path), converted[key], None, "DEFLATE")
    timings["convert_and_verify_s"] = time.perf_counter() - t

    # parcels: a survey grid of cells split into strips, in lon/lat like county parcel layers
    side = np.sqrt(side_m**2 / n_parcels * 2)  # cells are split in two strips on average
    steps = np.arange(0, side_m - side / 2, side)
    polys = []
    for x in x0 + steps:
        for y in y0 + steps:
            k = rng.integers(1, 4)
            edges = np.sort(np.concatenate([[0, 1], rng.uniform(0.2, 0.8, k - 1)]))
            polys += [
                shapely.box(x + a * side, y, x + b * side, y + side) for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
    polys = polys[:n_parcels]
    geoms = to_crs(np.array(polys), epsg, 4326)
    parcels = gpd.GeoDataFrame({"parcel_id": [f"P{i:07d}" for i in range(len(polys))]}, geometry=geoms, crs=4326)
    (work / "fia").mkdir(exist_ok=True)
    (work / NASS_YIELDS).parent.mkdir(exist_ok=True)
    fia(work)
    yields(work)
    biomass = defaults()["biomass"]
    fia_tables = [work / "fia" / f"{t}.csv" for t in ("PLOT", "COND", "TREE")]
    plots, _, _ = state_plot_densities(*fia_tables, biomass["fia_missing"], STATE_FIPS)
    files = [str(work / NASS_YIELDS), str(crop_tables.NATIONAL_YIELDS)]
    year_yields = crops.Yields(CDL_YEAR, crops.yields_table(*files, STATE_FIPS, CDL_YEAR), files)
    bands = ("B02", "B03", "B04", "B08", "SCL")
    s2 = S2Tile(TILE, "20240815", dict.fromkeys(bands, -1000.0), {b: converted[b] for b in bands})
    inputs = CountyInputs(
        parcels,
        [converted["WC"]],
        [converted["CDL"]],
        [s2],
        plots,
        year_yields,
        biomass["fia_radius_km"],
        biomass["idw_power"],
    )
    return inputs, timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--km", type=float, default=SIDE_KM, help="the county's side (the suite's check: a small one)")
    ap.add_argument("--keep", type=Path, help="keep the generated inputs in this folder")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tilewise-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        inputs, timings = make_inputs(work, args.parcels, args.km)
        t = time.perf_counter()
        result, crops, stats = process_county(inputs, workers=args.workers)
        wall = time.perf_counter() - t
        per_parcel = result["read_bytes"].to_numpy()
        print(f"parcels                     {len(result):,}")
        print(f"workers (processes)         {args.workers}")
        print(f"county processing wall      {wall:.2f} s")
        print(f"parcels per second          {len(result) / wall:,.0f}   (target ≥ 5,000 on 2 cores)")
        print(f"bytes read, median parcel   {np.median(per_parcel) / 1024:.1f} KB   (target ≤ 64 KB)")
        print(
            f"bytes read, county          {stats['read_bytes'] / 1e6:.1f} MB of {stats['tile_bytes'] / 1e6:.1f} MB "
            f"in the converted tiles"
        )
        print(f"crop detail rows            {len(crops):,}")
        for k, v in timings.items():
            print(f"{k:<28}{v:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
