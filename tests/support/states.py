"""Small generated states for national runs: neighbours in central Illinois' real Sentinel-2 grid that
share their Sentinel-2 tiles, their WorldCover tile and one "national" CDL raster, like real states."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from tilewise_demo.state import CDL_YEAR, StateSpec, cdl, counties_and_parcels, county_layer, fia, sentinel2, worldcover

# three states of different sizes (parcels: north > east > south); north spans tiles 16TCK and 16TDK
STATES = {
    "north": StateSpec(
        "91", {"91001": ("Ash", -88.45, 40.05, -88.25, 40.20), "91003": ("Box", -88.25, 40.05, -88.05, 40.20)}, 0.012, 1
    ),
    "east": StateSpec("92", {"92001": ("Elm", -88.05, 40.05, -87.85, 40.15)}, 0.012, 2),
    "south": StateSpec("93", {"93001": ("Oak", -88.45, 39.90, -88.30, 40.00)}, 0.012, 3),
}
NATIONAL_CDL = "cdl/2023_30m_cdls_national.tif"
WORLDCOVER = "worldcover/ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"


def region(specs: dict[str, StateSpec]) -> tuple[float, float, float, float]:
    boxes = [s.box for s in specs.values()]
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def generate_states(folder: Path, specs: dict[str, StateSpec] = STATES) -> dict:
    """Write the shared rasters, one national county file and each state's parcels and FIA tables under
    `folder`; return the `states:` section of a config naming them (absolute paths)."""
    box = region(specs)
    shared = folder / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(sentinel2(shared, ("16TCK", "16TDK"), box)).to_csv(shared / "sentinel2_catalog.csv", index=False)
    worldcover(shared, box)
    cdl(shared, (box[0] - 0.05, box[1] - 0.05, box[2] + 0.05, box[3] + 0.05), NATIONAL_CDL)
    # one county file for the whole country, like Census TIGER's
    counties = gpd.GeoDataFrame(pd.concat([county_layer(s) for s in specs.values()], ignore_index=True), crs=4269)
    counties.to_file(shared / "us_counties.gpkg", layer="counties", driver="GPKG")
    states = {}
    for name, spec in specs.items():
        own = folder / name
        (own / "fia").mkdir(parents=True, exist_ok=True)
        counties_and_parcels(own, spec)
        fia(own, spec)
        states[name] = {
            "fips": spec.fips,
            "counties": str(shared / "us_counties.gpkg"),
            "parcels": str(own / "parcels.parquet"),
            "sentinel2_catalog": str(shared / "sentinel2_catalog.csv"),
            "sentinel2_date": None,
            "worldcover": str(shared / WORLDCOVER),
            "cdl": [str(shared / NATIONAL_CDL)],
            "cdl_year": CDL_YEAR,
            "nass_yields": None,  # the national table
            "fia_plot": str(own / "fia" / "PLOT.csv"),
            "fia_cond": str(own / "fia" / "COND.csv"),
            "fia_tree": str(own / "fia" / "TREE.csv"),
        }
    return states
