"""Generate the demo state (no network): three counties in central Illinois' real Sentinel-2 grid,
parcels, Sentinel-2 L2A tiles 16TCK and 16TDK (60 m to stay small), an ESA WorldCover tile
(N39W090, coarsened to 1/1200°), a USDA CDL raster (EPSG:5070, 30 m), FIADB PLOT/COND/TREE tables
and the state's NASS yields (a Quick Stats export).

Land cover is one synthetic field shared by every product, so the products agree with each other
the way real ones do (forest is dark in red and bright in NIR, has FIA trees, and is not a crop).
Other small states (a `StateSpec`: a FIPS code and county boxes anywhere in the same grids) are made
with the same pieces: `counties_and_parcels` and `fia` per state, and the rasters over any box
(`sentinel2`, `worldcover`, `cdl`), so that neighbouring test states share their tiles like real ones.

    python -m tilewise_demo.state [resources/demo_state]
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from tilewise.biomass.grids import s2_footprint, worldcover_tile_box
from tilewise.biomass.quickstats import COLUMNS as QUICKSTATS_COLUMNS
from tilewise.shared.geometry import to_crs
from tilewise_demo.layout import (
    CDL,
    CDL_YEAR,
    COUNTIES,
    NASS_YIELDS,
    S2_DATE,
    S2_TILES,
    STATE_FIPS,
    WORLDCOVER,
    s2_file,
)
from tilewise_demo.rasters import write_band

S2_RES_M = 60
WC_RES_DEG = 1 / 1200
CDL_RES_M = 30
PARCEL_SIDE_DEG = 0.006  # a parcel grid cell: about 510 m × 670 m (≈ 84 acres)
FIA_PLOTS_PER_SQ_DEG = 1203.1  # 400 plots over the demo state's box and 0.05° around it
Box = tuple[float, float, float, float]  # west, south, east, north (lon/lat)


@dataclass(frozen=True)
class StateSpec:
    fips: str
    counties: dict[str, tuple[str, float, float, float, float]]  # GEOID: (name, west, south, east, north)
    parcel_side_deg: float = PARCEL_SIDE_DEG
    seed: int = 7

    @property
    def box(self) -> Box:
        c = list(self.counties.values())
        return min(v[1] for v in c), min(v[2] for v in c), max(v[3] for v in c), max(v[4] for v in c)


DEMO = StateSpec(STATE_FIPS, COUNTIES)


def landcover(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The shared synthetic truth: WorldCover classes as a smooth function of position."""
    f = np.sin(lon * 37.0) * np.cos(lat * 41.0) + 0.6 * np.sin((lon + lat) * 97.0)
    out = np.full(lon.shape, 40, np.uint8)  # cropland
    out[f > 0.9] = 10  # tree cover
    out[(f > 0.6) & (f <= 0.9)] = 30  # grassland
    out[f < -1.2] = 80  # water
    out[(f >= -1.2) & (f < -1.05)] = 50  # built-up
    return out


def crop_code(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """CDL codes on cropland: corn/soy rotation by field, some winter wheat and alfalfa."""
    field = (np.floor(lon / 0.01) + np.floor(lat / 0.01)).astype(np.int64) % 10
    return np.choose(np.clip(field, 0, 9), [1, 5, 1, 5, 1, 5, 24, 36, 1, 5]).astype(np.uint8)


def _grid_lonlat(crs, transform, shape) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of every pixel centre."""
    cols = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    rows = transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    x, y = np.meshgrid(cols, rows)
    return Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)


def _inside(grid_box: Box, box: Box | None, step: float, margin: float) -> Box:
    """`grid_box` cut to `box` plus `margin`, on the grid of `step` counted from its west/north edge."""
    if box is None:
        return grid_box
    west, south, east, north = grid_box
    w = west + max(0, math.floor((box[0] - margin - west) / step)) * step
    n = north - max(0, math.floor((north - box[3] - margin) / step)) * step
    e = min(east, w + math.ceil((box[2] + margin - w) / step) * step)
    s = max(south, n - math.ceil((n - box[1] + margin) / step) * step)
    return w, s, e, n


def sentinel2(out: Path, tiles=S2_TILES, box: Box | None = None) -> list[dict]:
    """The bands of `tiles`, whole or cut to the part around the lon/lat `box`; catalog rows."""
    rows = []
    reflect = {  # (blue, green, red, nir) surface reflectance per class
        10: (0.02, 0.04, 0.03, 0.35),
        30: (0.04, 0.08, 0.06, 0.30),
        40: (0.05, 0.09, 0.07, 0.40),
        50: (0.12, 0.13, 0.14, 0.20),
        80: (0.03, 0.05, 0.03, 0.01),
    }
    for tile in tiles:
        epsg, footprint = s2_footprint(tile)
        local = None if box is None else to_crs(shapely.box(*box), 4326, epsg, densify=0.01).bounds
        xmin, ymin, xmax, ymax = _inside(footprint, local, S2_RES_M, 2000)
        shape = (int(round((ymax - ymin) / S2_RES_M)), int(round((xmax - xmin) / S2_RES_M)))
        transform = from_origin(xmin, ymax, S2_RES_M, S2_RES_M)
        lon, lat = _grid_lonlat(epsg, transform, shape)
        cls = landcover(lon, lat)
        noise = np.random.default_rng(int(tile[:2])).normal(0, 0.005, shape)
        cloud = (np.sin(lon * 211) * np.sin(lat * 173)) > 0.97  # a few clouds
        for b, band in enumerate(("B02", "B03", "B04", "B08")):
            refl = np.zeros(shape)
            for c, values in reflect.items():
                refl[cls == c] = values[b]
            refl = np.where(cloud, 0.6, refl + noise)
            dn = np.clip(np.round(refl * 10000 + 1000), 1, 65535).astype(np.uint16)  # baseline ≥ 04.00: +1000
            path = out / s2_file(tile, band)
            write_band(path, dn, epsg, transform)
            rows.append(
                {
                    "tile": tile,
                    "date": S2_DATE,
                    "band": band,
                    "href": str(path.relative_to(out)),
                    "processing_baseline": "05.10",
                }
            )
        scl = np.where(cls == 80, 6, np.where(cls == 50, 5, 4)).astype(np.uint8)
        scl[cloud] = 9
        path = out / s2_file(tile, "SCL")
        write_band(path, scl, epsg, transform)
        rows.append(
            {
                "tile": tile,
                "date": S2_DATE,
                "band": "SCL",
                "href": str(path.relative_to(out)),
                "processing_baseline": "05.10",
            }
        )
    return rows


def worldcover(out: Path, box: Box | None = None, name: str = WORLDCOVER) -> None:
    """The WorldCover tile `name` (its 3° square, or the part around `box`)."""
    tile = Path(name).stem.split("_")[-2]
    west, south, east, north = _inside(worldcover_tile_box(tile).bounds, box, WC_RES_DEG, 0.02)
    shape = (int(round((north - south) / WC_RES_DEG)), int(round((east - west) / WC_RES_DEG)))
    transform = from_origin(west, north, WC_RES_DEG, WC_RES_DEG)
    lon, lat = _grid_lonlat(4326, transform, shape)
    cls = landcover(lon, lat)
    write_band(
        out / name,
        cls,
        "EPSG:4326",
        transform,
        nodata=0,
        tiled=True,
        blockxsize=1024,
        blockysize=1024,
    )


def cdl(out: Path, box: Box = (-88.7, 39.95, -87.65, 40.3), name: str = CDL) -> None:
    """A CDL-like raster (EPSG:5070, 30 m) over the lon/lat `box`: one covering several states clips per state."""
    box = to_crs(shapely.box(*box), 4326, 5070)
    xmin, ymin, xmax, ymax = (np.floor(v / CDL_RES_M) * CDL_RES_M for v in box.bounds)
    w, h = int((xmax - xmin) / CDL_RES_M), int((ymax - ymin) / CDL_RES_M)
    transform = from_origin(xmin, ymax, CDL_RES_M, CDL_RES_M)
    lon, lat = _grid_lonlat(5070, transform, (h, w))
    wc = landcover(lon, lat)
    codes = np.select([wc == 10, wc == 30, wc == 50, wc == 80], [141, 176, 122, 111], default=0).astype(np.uint8)
    codes = np.where(wc == 40, crop_code(lon, lat), codes)
    write_band(out / name, codes, "EPSG:5070", transform, nodata=0)


def county_layer(spec: StateSpec) -> gpd.GeoDataFrame:
    """The state's counties with the Census TIGER columns the index reads."""
    return gpd.GeoDataFrame(
        {
            "GEOID": list(spec.counties),
            "STATEFP": spec.fips,
            "COUNTYFP": [g[2:] for g in spec.counties],
            "NAME": [v[0] for v in spec.counties.values()],
        },
        geometry=[shapely.box(*v[1:]) for v in spec.counties.values()],
        crs="EPSG:4269",
    )


def parcel_layer(spec: StateSpec) -> gpd.GeoDataFrame:
    """A survey grid over the counties' box, each cell split into 1–3 strips like farm parcels."""
    rng = np.random.default_rng(spec.seed)
    west, south, east, north = spec.box
    side = spec.parcel_side_deg
    polys = []
    for x in np.arange(west, east - 1e-9, side):
        for y in np.arange(south, north - 1e-9, side):
            parts = rng.integers(1, 4)
            edges = np.sort(np.concatenate([[0, 1], rng.uniform(0.2, 0.8, parts - 1)]))
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                polys.append(shapely.box(x + a * side, y, x + b * side, y + side))
    return gpd.GeoDataFrame({"parcel_id": [f"P{i:06d}" for i in range(len(polys))]}, geometry=polys, crs="EPSG:4326")


def counties_and_parcels(out: Path, spec: StateSpec = DEMO) -> None:
    county_layer(spec).to_file(out / "counties.gpkg", layer="counties", driver="GPKG")
    parcel_layer(spec).to_parquet(out / "parcels.parquet")


def fia(out: Path, spec: StateSpec = DEMO) -> None:
    """FIADB PLOT, COND and TREE tables: forest plots (some partly forested, with a yard tree on the
    nonforest part; some harvested: no live tree at the last visit), nonforest plots, and plots whose
    last visit was not sampled."""
    rng = np.random.default_rng(11)
    west, south, east, north = spec.box
    n = round(FIA_PLOTS_PER_SQ_DEG * (east - west + 0.1) * (north - south + 0.1))
    lon = rng.uniform(west - 0.05, east + 0.05, n)
    lat = rng.uniform(south - 0.05, north + 0.05, n)
    county_codes = [int(g[2:]) for g in spec.counties]
    forested = landcover(lon, lat) == 10
    plots, conds, trees = [], [], []
    for i in range(n):
        for invyr in (2016, 2021):  # remeasured plots: only the latest sampled visit counts
            cn = 10_000_000 + i * 10 + (invyr - 2016) // 5
            nonsampled = invyr == 2021 and i % 37 == 0  # denied access, hazardous: PLOT_STATUS_CD 3
            status = 3 if nonsampled else (1 if forested[i] else 2)
            plots.append(
                {
                    "CN": cn,
                    "STATECD": int(spec.fips),
                    "UNITCD": 1,
                    "COUNTYCD": county_codes[i % len(county_codes)],
                    "PLOT": i + 1,
                    "INVYR": invyr,
                    "PLOT_STATUS_CD": status,
                    "DESIGNCD": 1,
                    "LAT": round(lat[i], 5),
                    "LON": round(lon[i], 5),
                    "MACRO_BREAKPOINT_DIA": None,
                }
            )
            partial = forested[i] and i % 5 == 0  # 60 % forest, 40 % a field
            shares = [(1, 5 if nonsampled else (1 if forested[i] else 2), 0.6 if partial else 1.0)]
            if partial and not nonsampled:
                shares.append((2, 2, 0.4))
            for condid, cond_status, share in shares:
                conds.append(
                    {
                        "CN": cn * 10 + condid,
                        "PLT_CN": cn,
                        "CONDID": condid,
                        "COND_STATUS_CD": cond_status,
                        "CONDPROP_UNADJ": share,
                        "SUBPPROP_UNADJ": share,
                        "MICRPROP_UNADJ": share,
                        "MACRPROP_UNADJ": None,
                        "PROP_BASIS": "SUBP",
                    }
                )
            if status != 1:
                continue
            harvested = invyr == 2021 and i % 23 == 0
            for t in range(int(rng.integers(4, 12))):
                sapling = t == 0
                dia = rng.uniform(1, 4.9) if sapling else rng.uniform(5, 24) * (1.05 if invyr == 2021 else 1.0)
                # oven-dry pounds from Jenkins et al. (2003) mixed hardwood: ln(kg) = −2.4800 + 2.4835 ln(dbh cm)
                ag = 2.20462 * np.exp(-2.4800 + 2.4835 * np.log(2.54 * dia))
                trees.append(
                    {
                        "CN": cn * 100 + t,
                        "PLT_CN": cn,
                        "INVYR": invyr,
                        "CONDID": 2 if partial and t == 1 else 1,  # a yard tree on the field: not forest
                        "STATUSCD": 2 if harvested or t % 7 == 6 else 1,
                        "DIA": round(dia, 1),
                        "DIAHTCD": 1,
                        "TPA_UNADJ": 74.965282 if sapling else 6.018046,
                        "DRYBIO_AG": round(ag, 2),
                        "DRYBIO_BOLE": None if sapling else round(0.62 * ag, 2),
                        "DRYBIO_STUMP": None if sapling else round(0.03 * ag, 2),
                        "DRYBIO_BRANCH": round(0.35 * ag, 2),
                    }
                )
    pd.DataFrame(plots).to_csv(out / "fia" / "PLOT.csv", index=False)
    pd.DataFrame(conds).to_csv(out / "fia" / "COND.csv", index=False)
    pd.DataFrame(trees).to_csv(out / "fia" / "TREE.csv", index=False)


def yields(out: Path) -> None:
    """The demo state's yields as a NASS Quick Stats export. The values are made up for the demo (it is
    not a real state): corn and soybeans come from here, winter wheat is withheld ("(D)") so the
    national table's value is used, and a forecast row shows what the reader leaves out."""
    rows = [
        ("YEAR", "CORN", "CORN, GRAIN - YIELD, MEASURED IN BU / ACRE", "205.0"),
        ("YEAR - AUG FORECAST", "CORN", "CORN, GRAIN - YIELD, MEASURED IN BU / ACRE", "190.0"),
        ("YEAR", "SOYBEANS", "SOYBEANS - YIELD, MEASURED IN BU / ACRE", "63.0"),
        ("YEAR", "WHEAT", "WHEAT, WINTER - YIELD, MEASURED IN BU / ACRE", "(D)"),
    ]
    table = pd.DataFrame(
        [
            {
                **dict.fromkeys(QUICKSTATS_COLUMNS, ""),
                "Program": "SURVEY",
                "Year": str(CDL_YEAR),
                "Period": period,
                "Geo Level": "STATE",
                "State": "DEMO",
                "State ANSI": STATE_FIPS,
                "watershed_code": "00000000",
                "Commodity": commodity,
                "Data Item": item,
                "Domain": "TOTAL",
                "Domain Category": "NOT SPECIFIED",
                "Value": value,
            }
            for period, commodity, item, value in rows
        ]
    )
    table.to_csv(out / NASS_YIELDS, index=False, quoting=csv.QUOTE_ALL)


def generate(out: Path) -> None:
    """Write every demo input under `out` (idempotent: an existing complete set is kept)."""
    marker = out / "COMPLETE"
    if marker.exists():
        return
    (out / "fia").mkdir(parents=True, exist_ok=True)
    (out / NASS_YIELDS).parent.mkdir(exist_ok=True)
    counties_and_parcels(out)
    pd.DataFrame(sentinel2(out)).to_csv(out / "sentinel2_catalog.csv", index=False)
    worldcover(out)
    cdl(out)
    fia(out)
    yields(out)
    marker.write_text("generated by tilewise_demo.state\n")


if __name__ == "__main__":
    generate(Path(sys.argv[1] if len(sys.argv) > 1 else "resources/demo_state"))
