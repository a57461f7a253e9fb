"""Generate the demo state (no network): three counties in central Illinois' real Sentinel-2 grid,
parcels, Sentinel-2 L2A tiles 16TCK and 16TDK (60 m to stay small), an ESA WorldCover tile
(N39W090, coarsened to 1/1200°), a USDA CDL raster (EPSG:5070, 30 m), FIADB PLOT/COND/TREE tables
and the state's NASS yields (a Quick Stats export).

Land cover is one synthetic field shared by every product, so the products agree with each other
the way real ones do (forest is dark in red and bright in NIR, has FIA trees, and is not a crop).

    python -m tilewise_demo.state [resources/demo_state]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from tilewise.biomass.grids import s2_footprint
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


def sentinel2(out: Path) -> list[dict]:
    rows = []
    reflect = {  # (blue, green, red, nir) surface reflectance per class
        10: (0.02, 0.04, 0.03, 0.35),
        30: (0.04, 0.08, 0.06, 0.30),
        40: (0.05, 0.09, 0.07, 0.40),
        50: (0.12, 0.13, 0.14, 0.20),
        80: (0.03, 0.05, 0.03, 0.01),
    }
    for tile in S2_TILES:
        epsg, (xmin, ymin, xmax, ymax) = s2_footprint(tile)
        n = int((xmax - xmin) / S2_RES_M)
        transform = from_origin(xmin, ymax, S2_RES_M, S2_RES_M)
        lon, lat = _grid_lonlat(epsg, transform, (n, n))
        cls = landcover(lon, lat)
        noise = np.random.default_rng(int(tile[:2])).normal(0, 0.005, (n, n))
        cloud = (np.sin(lon * 211) * np.sin(lat * 173)) > 0.97  # a few clouds
        for b, band in enumerate(("B02", "B03", "B04", "B08")):
            refl = np.zeros((n, n))
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


def worldcover(out: Path) -> None:
    n = int(3 / WC_RES_DEG)
    transform = from_origin(-90.0, 42.0, WC_RES_DEG, WC_RES_DEG)
    lon, lat = _grid_lonlat(4326, transform, (n, n))
    cls = landcover(lon, lat)
    write_band(
        out / WORLDCOVER,
        cls,
        "EPSG:4326",
        transform,
        nodata=0,
        tiled=True,
        blockxsize=1024,
        blockysize=1024,
    )


def cdl(out: Path) -> None:
    box = to_crs(shapely.box(-88.7, 39.95, -87.65, 40.3), 4326, 5070)
    xmin, ymin, xmax, ymax = (np.floor(v / CDL_RES_M) * CDL_RES_M for v in box.bounds)
    w, h = int((xmax - xmin) / CDL_RES_M), int((ymax - ymin) / CDL_RES_M)
    transform = from_origin(xmin, ymax, CDL_RES_M, CDL_RES_M)
    lon, lat = _grid_lonlat(5070, transform, (h, w))
    wc = landcover(lon, lat)
    codes = np.select([wc == 10, wc == 30, wc == 50, wc == 80], [141, 176, 122, 111], default=0).astype(np.uint8)
    codes = np.where(wc == 40, crop_code(lon, lat), codes)
    write_band(out / CDL, codes, "EPSG:5070", transform, nodata=0)


def counties_and_parcels(out: Path) -> None:
    counties = gpd.GeoDataFrame(
        {
            "GEOID": list(COUNTIES),
            "STATEFP": STATE_FIPS,
            "COUNTYFP": [g[2:] for g in COUNTIES],
            "NAME": [v[0] for v in COUNTIES.values()],
        },
        geometry=[shapely.box(*v[1:]) for v in COUNTIES.values()],
        crs="EPSG:4269",
    )
    counties.to_file(out / "counties.gpkg", layer="counties", driver="GPKG")
    rng = np.random.default_rng(7)
    west, south, east, north = -88.60, 40.00, -87.75, 40.25
    lons = np.arange(west, east - 1e-9, PARCEL_SIDE_DEG)
    lats = np.arange(south, north - 1e-9, PARCEL_SIDE_DEG)
    polys = []
    for x in lons:
        for y in lats:
            # split each grid cell into 1–3 strips, like farm parcels along a survey grid
            parts = rng.integers(1, 4)
            edges = np.sort(np.concatenate([[0, 1], rng.uniform(0.2, 0.8, parts - 1)]))
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                polys.append(shapely.box(x + a * PARCEL_SIDE_DEG, y, x + b * PARCEL_SIDE_DEG, y + PARCEL_SIDE_DEG))
    parcels = gpd.GeoDataFrame({"parcel_id": [f"P{i:06d}" for i in range(len(polys))]}, geometry=polys, crs="EPSG:4326")
    parcels.to_parquet(out / "parcels.parquet")


def fia(out: Path) -> None:
    """FIADB PLOT, COND and TREE tables: forest plots (some partly forested, with a yard tree on the
    nonforest part; some harvested: no live tree at the last visit), nonforest plots, and plots whose
    last visit was not sampled."""
    rng = np.random.default_rng(11)
    n = 400  # FIA's grid: about one plot per 6,000 acres
    lon = rng.uniform(-88.65, -87.7, n)
    lat = rng.uniform(39.95, 40.3, n)
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
                    "STATECD": 99,
                    "UNITCD": 1,
                    "COUNTYCD": 1 + 2 * (i % 3),
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
