"""State outputs: all parcels, the county summary, the biomass map, and the DONE record."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SUMMED = [
    "parcel_area_acres",
    "forest_area_acres",
    "crop_area_acres",
    "forest_aboveground_short_tons",
    "forest_bole_short_tons",
    "crop_yield_short_tons",
    "crop_harvestable_residue_short_tons",
]


def summarize_state(
    county_files: list[Path],
    stats_files: list[Path],
    counties_csv: Path,
    out_parquet: Path,
    out_gpkg: Path,
    summary_csv: Path,
    map_png: Path,
    state: str,
) -> pd.DataFrame:
    parcels = pd.concat([gpd.read_parquet(p) for p in county_files], ignore_index=True)
    parcels = gpd.GeoDataFrame(parcels, geometry="geometry", crs=gpd.read_parquet(county_files[0]).crs)
    parcels.to_parquet(out_parquet)
    parcels.to_file(out_gpkg, layer="parcels", driver="GPKG")
    stats = pd.DataFrame(
        [{"county_fips": Path(p).name.split(".")[0], **json.loads(Path(p).read_text())} for p in stats_files]
    )
    sums = parcels.groupby("county_fips")[SUMMED].sum().reset_index()
    names = pd.read_csv(counties_csv, dtype={"county_fips": str})[["county_fips", "name"]]
    summary = names.merge(sums, on="county_fips").merge(stats, on="county_fips")
    summary = summary[
        ["county_fips", "name", "parcels_count", *SUMMED, "processing_seconds", "read_bytes", "tile_bytes"]
    ]
    summary.to_csv(summary_csv, index=False)
    _map(parcels, state, map_png)
    return summary


def _map(parcels: gpd.GeoDataFrame, state: str, png: Path) -> None:
    density = (
        parcels["forest_aboveground_short_tons"]
        + parcels["crop_yield_short_tons"]
        + parcels["crop_harvestable_residue_short_tons"]
    ) / parcels["parcel_area_acres"].where(parcels["parcel_area_acres"] > 0)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=100)
    parcels.assign(density=density).plot(
        column="density",
        ax=ax,
        cmap="YlGn",
        legend=True,
        linewidth=0,
        legend_kwds={"label": "forest aboveground + crop yield + harvestable residue (short tons per acre)"},
    )
    ax.set_title(f"{state}: parcel biomass density, {len(parcels):,} parcels")
    ax.set_xlabel("longitude" if parcels.crs and parcels.crs.is_geographic else "x")
    ax.set_ylabel("latitude" if parcels.crs and parcels.crs.is_geographic else "y")
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)


def done_record(state: str, county_files: list[Path], manifests: list[Path], tile_paths: list[Path]) -> dict:
    """Written only once every county succeeded (the rule's inputs say so): what was reclaimed."""
    records = {Path(m): json.loads(Path(m).read_text()) for m in manifests}
    remaining = [str(t) for t in tile_paths if Path(t).exists()]
    reclaimed = sum(r["bytes"] for m, r in records.items() if not Path(str(m)[: -len(".json")] + ".tif").exists())
    return {
        "state": state,
        "counties": sorted(Path(p).name.split(".")[0] for p in county_files),
        "tiles": sorted(Path(m).parent.name + "/" + Path(m).stem for m in manifests),
        "converted_tile_bytes_reclaimed": reclaimed,
        "converted_tile_bytes_peak": max((r["state_tile_bytes_after"] for r in records.values()), default=0),
        "converted_tiles_still_on_disk": remaining,
    }
