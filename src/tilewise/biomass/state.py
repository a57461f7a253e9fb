"""State outputs: all parcels, the county summary, the biomass map, and the DONE record."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tilewise.biomass import county_files as county_files_io  # noqa: E402
from tilewise.biomass import state_index  # noqa: E402
from tilewise.biomass.tiles import read_manifest  # noqa: E402

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
    index_dir: Path,
    out_parquet: Path,
    out_gpkg: Path,
    summary_csv: Path,
    map_png: Path,
    state: str,
) -> pd.DataFrame:
    parcels = county_files_io.read_parcels(county_files)
    parcels.to_parquet(out_parquet)
    parcels.to_file(out_gpkg, layer="parcels", driver="GPKG")
    stats = county_files_io.read_stats(stats_files)
    sums = parcels.groupby("county_fips")[SUMMED].sum().reset_index()
    names = pd.DataFrame(state_index.read_counties(index_dir))[["county_fips", "name"]]
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


def done_record(state: str, county_files: list[Path], manifests: list[Path], tiles: list[Path]) -> dict:
    """Written only once every county succeeded (the rule's inputs say so): what was reclaimed.
    `manifests[i]` describes the converted tile `tiles[i]`."""
    records = [read_manifest(m) for m in manifests]
    remaining = [str(t) for t in tiles if t.exists()]
    return {
        "state": state,
        "counties": sorted(county_files_io.county_of(p) for p in county_files),
        "tiles": sorted(f"{t.parent.name}/{t.stem}" for t in tiles),
        "converted_tile_bytes_reclaimed": sum(
            r["bytes"] for r, t in zip(records, tiles, strict=True) if not t.exists()
        ),
        "converted_tile_bytes_peak": max((r["state_tile_bytes_after"] for r in records), default=0),
        "converted_tiles_still_on_disk": remaining,
    }
