"""A one-county mini state (fips 99) with small synthetic rasters, run through the real workflow, and
independent reference computations (shapely/numpy only): the harness of the biomass input tests.

Uniform, hand-checkable land: every raster is constant unless a script paints it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml
from rasterio.transform import from_origin

from tilewise.biomass.grids import s2_footprint
from tilewise.shared.geometry import to_crs
from tilewise_demo import state as demo
from tilewise_demo.rasters import write_band

REPO = Path(__file__).resolve().parents[2]

_TILED = {"tiled": True, "blockxsize": 256, "blockysize": 256}
COUNTY = ("99001", "Alder", -88.30, 40.00, -88.27, 40.02)  # inside S2 tile 16TCK only, WorldCover N39W090


def s2_grid(tile: str, box_lonlat, res: float, margin_m: float = 1200):
    """(epsg, transform, shape) of a cut of `tile` around the lon/lat box, on the tile's 60 m grid."""
    epsg, (fx0, fy0, fx1, fy1) = s2_footprint(tile)
    x0, y0, x1, y1 = to_crs(shapely.box(*box_lonlat), 4326, epsg, densify=0.001).bounds
    w = fx0 + max(0, math.floor((x0 - margin_m - fx0) / 60)) * 60
    n = fy1 - max(0, math.floor((fy1 - y1 - margin_m) / 60)) * 60
    e = min(fx1, w + math.ceil((x1 + margin_m - w) / 60) * 60)
    s = max(fy0, n - math.ceil((n - y0 + margin_m) / 60) * 60)
    shape = (int(round((n - s) / res)), int(round((e - w) / res)))
    return epsg, from_origin(w, n, res, res), shape


def dn(refl) -> np.ndarray:
    return np.clip(np.round(np.asarray(refl) * 10000 + 1000), 1, 65535).astype(np.uint16)


class Mini:
    def __init__(self, root: Path, county=COUNTY):
        self.root = Path(root)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.inp = self.root / "in"
        self.inp.mkdir(parents=True)
        self.county = county
        self.box = county[2:]
        self.catalog_rows = []
        self.cdl_files = []
        self.state = "mini"

    # ---- inputs -------------------------------------------------------------------------------------
    def counties(self, extra=None):
        fips, name, *box = self.county
        spec = demo.StateSpec("99", {fips: (name, *box)})
        gdf = demo.county_layer(spec)
        gdf.to_file(self.inp / "counties.gpkg", layer="counties", driver="GPKG")
        self.spec = spec

    def parcels(self, gdf: gpd.GeoDataFrame, name="parcels.parquet"):
        path = self.inp / name
        if name.endswith(".parquet"):
            gdf.to_parquet(path)
        else:
            gdf.to_file(path, driver="GPKG")
        self.parcels_path = name

    def s2_band(self, tile, date, band, data, transform, epsg, baseline="05.10", name=None, offset=None, **kw):
        name = name or f"s2/T{tile}_{date}_{band}.tif"
        write_band(self.inp / name, data, f"EPSG:{epsg}", transform, **_TILED, **kw)
        row = {"tile": tile, "date": date, "band": band, "href": name, "processing_baseline": baseline}
        if offset is not None:
            row["boa_add_offset"] = offset
        self.catalog_rows.append(row)

    def s2_uniform(
        self,
        tile="16TCK",
        date="20240815",
        refl=(0.05, 0.09, 0.07, 0.40),
        scl_value=4,
        res=10,
        scl_res=20,
        baseline="05.10",
    ):
        epsg, t, shape = s2_grid(tile, self.box, res)
        for band, r in zip(("B02", "B03", "B04", "B08"), refl, strict=True):
            self.s2_band(tile, date, band, np.full(shape, dn(r)), t, epsg, baseline)
        epsg, ts, sshape = s2_grid(tile, self.box, scl_res)
        self.s2_band(tile, date, "SCL", np.full(sshape, scl_value, np.uint8), ts, epsg, baseline)
        return epsg, t, shape, ts, sshape

    def worldcover(
        self,
        value=10,
        res=1 / 12000,
        painter=None,
        name="ESA_WorldCover_10m_2021_v200_N39W090_Map.tif",
        transform=None,
        shape=None,
    ):
        w, s, e, n = self.box
        m = 0.02
        if transform is None:
            west = -90 + math.floor((w - m + 90) / res) * res
            north = 42 - math.floor((42 - n - m) / res) * res
            shape = (int(math.ceil((north - (s - m)) / res)), int(math.ceil((e + m - west) / res)))
            transform = from_origin(west, north, res, res)
        data = np.full(shape, value, np.uint8)
        if painter is not None:
            data = painter(data, transform)
        write_band(self.inp / "wc" / name, data, "EPSG:4326", transform, nodata=0, **_TILED)
        self.wc_template = "in/wc/ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"
        return transform, data

    def cdl(
        self,
        value=1,
        name="2023_30m_cdls_mini.tif",
        painter=None,
        crs="EPSG:5070",
        res=30,
        nodata=0,
        transform=None,
        data=None,
    ):
        if data is None:
            b = to_crs(shapely.box(*self.box).buffer(0.02), 4326, crs, densify=0.001).bounds
            xmin, ymin, xmax, ymax = (math.floor(v / res) * res for v in b)
            xmax += res
            ymax += res
            shape = (int((ymax - ymin) / res), int((xmax - xmin) / res))
            transform = from_origin(xmin, ymax, res, res)
            data = np.full(shape, value, np.uint8)
            if painter is not None:
                data = painter(data, transform)
        write_band(self.inp / "cdl" / name, data, crs, transform, nodata=nodata, **_TILED)
        self.cdl_files.append(f"in/cdl/{name}")
        return transform, data

    def fia_and_yields(self):
        (self.inp / "fia").mkdir(exist_ok=True)
        (self.inp / "nass").mkdir(exist_ok=True)
        demo.fia(self.inp, self.spec)
        demo.yields(self.inp)

    def config(self, **state_overrides):
        pd.DataFrame(self.catalog_rows).to_csv(self.inp / "s2_catalog.csv", index=False)
        st = {
            "fips": "99",
            "counties": "in/counties.gpkg",
            "parcels": f"in/{self.parcels_path}",
            "sentinel2_catalog": "in/s2_catalog.csv",
            "sentinel2_date": None,
            "worldcover": self.wc_template,
            "cdl": self.cdl_files,
            "cdl_year": 2023,
            "nass_yields": "in/nass/quickstats_yields.csv",
            "fia_plot": "in/fia/PLOT.csv",
            "fia_cond": "in/fia/COND.csv",
            "fia_tree": "in/fia/TREE.csv",
        }
        st.update(state_overrides)
        cfg = {"state": self.state, "states": {self.state: st}}
        (self.root / "mini.yaml").write_text(yaml.safe_dump(cfg))

    def build(self, parcels, **cfg):
        """Counties, parcels, FIA, yields and config; rasters are made by the caller before."""
        self.counties()
        self.parcels(parcels)
        self.fia_and_yields()
        self.config(**cfg)

    # ---- run ----------------------------------------------------------------------------------------
    def run(self, *targets, check=True, pythonpath=()):
        """Run the state; `pythonpath`: folders put before the workflow's package (a test's hook)."""
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(self.root),
            "--workflow-profile",
            str(REPO / "profiles" / "default"),
            "--cores",
            "2",
            "--configfile",
            str(self.root / "mini.yaml"),
            "--config",
            f"state={self.state}",
            *targets,
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(REPO / "src")])}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        self.proc = proc
        if check and proc.returncode != 0:
            raise SystemExit(f"snakemake failed {proc.returncode}\n{proc.stderr[-5000:]}")
        return proc

    def result(self, county="99001") -> gpd.GeoDataFrame:
        return gpd.read_parquet(self.root / "results/states" / self.state / "counties" / f"{county}.parquet")
