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

# county sums; stocks (dry short tons) and flows (dry short tons per year) stay in separate columns
SUMMED = [
    "parcel_area_acres",
    "worldcover_forest_acres",
    "cdl_forest_acres",
    "forest_crop_conflict_acres",
    "forest_area_acres",
    "crop_area_acres",
    "forest_aboveground_dry_short_tons",
    "forest_bole_wood_dry_short_tons",
    "crop_production_dry_short_tons_per_year",
    "crop_residue_dry_short_tons_per_year",
    "crop_residue_removable_dry_short_tons_per_year",
    "crop_production_unestimated_acres",
    "crop_residue_unestimated_acres",
    "crop_residue_removable_unestimated_acres",
    "crop_yield_state_table_acres",
    "crop_yield_national_table_acres",
]
AREA_WEIGHTED = ["s2_clear_fraction", "s2_coverage_fraction", "worldcover_coverage_fraction", "cdl_coverage_fraction"]


def county_summary(parcels: pd.DataFrame) -> pd.DataFrame:
    """Per county: sums, how much WorldCover's forest and CDL's crops disagreed, the years of the stock
    and the flows, and the measured quality (parcel-area-weighted fractions, FIA plots per parcel)."""
    g = parcels.groupby("county_fips")
    out = g[SUMMED].sum()
    out["forest_crop_conflict_fraction"] = out["forest_crop_conflict_acres"] / out["worldcover_forest_acres"].where(
        out["worldcover_forest_acres"] > 0
    )
    out["fia_plot_first_year"] = g["fia_plot_first_year"].min()
    out["fia_plot_last_year"] = g["fia_plot_last_year"].max()
    out["crop_year"] = g["crop_year"].first()
    regional = parcels["forest_area_acres"].where(parcels["forest_method"] == "regional_ratio", 0.0)
    out["forest_regional_fallback_fraction"] = regional.groupby(parcels["county_fips"]).sum() / out[
        "forest_area_acres"
    ].where(out["forest_area_acres"] > 0)
    weights = parcels["parcel_area_acres"]
    for column in AREA_WEIGHTED:
        out[column] = (parcels[column].fillna(0.0) * weights).groupby(parcels["county_fips"]).sum() / out[
            "parcel_area_acres"
        ]
    out["fia_plots_within_radius_min_count"] = g["fia_plots_within_radius_count"].min()
    out["fia_plots_within_radius_median_count"] = g["fia_plots_within_radius_count"].median()
    return out.reset_index()


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
    names = pd.DataFrame(state_index.read_counties(index_dir))[["county_fips", "name"]]
    model = county_summary(parcels)
    summary = names.merge(model, on="county_fips").merge(stats, on="county_fips")
    reads = ["processing_seconds", "read_bytes", "tile_bytes"]
    summary = summary[["county_fips", "name", "parcels_count", *model.columns.drop("county_fips"), *reads]]
    summary.to_csv(summary_csv, index=False)
    fig = biomass_figure(parcels, state_index.read_county_outlines(index_dir), state)
    fig.savefig(map_png, metadata={"Software": None})
    plt.close(fig)
    return summary


def biomass_figure(parcels: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame, state: str):
    """Two panels, never one sum: the forest stock and the crop flow, each per acre of parcel."""
    area = parcels["parcel_area_acres"].where(parcels["parcel_area_acres"] > 0)
    panels = [
        (
            parcels["forest_aboveground_dry_short_tons"] / area,
            "Greens",
            "forest aboveground biomass, standing stock",
            "dry short tons per acre",
        ),
        (
            (parcels["crop_production_dry_short_tons_per_year"] + parcels["crop_residue_dry_short_tons_per_year"])
            / area,
            "YlOrBr",
            "crop production + residue, annual flow",
            "dry short tons per acre per year",
        ),
    ]
    outlines = outlines.to_crs(parcels.crs)
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), dpi=100)
    for ax, (values, cmap, title, unit) in zip(axes, panels, strict=True):
        parcels.assign(value=values).plot(
            column="value", ax=ax, cmap=cmap, legend=True, linewidth=0, legend_kwds={"label": unit, "shrink": 0.7}
        )
        outlines.boundary.plot(ax=ax, color="black", linewidth=0.8)
        ax.set_title(f"{state}: {title}")
        ax.set_xlabel("longitude" if parcels.crs and parcels.crs.is_geographic else "x")
        ax.set_ylabel("latitude" if parcels.crs and parcels.crs.is_geographic else "y")
    fig.suptitle(f"{len(parcels):,} parcels; county outlines in black; a stock and a flow are not added")
    fig.tight_layout()
    return fig


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
