"""State outputs: all parcels, the county summary, the biomass map, and the DONE record; and a national
run's summary and map."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_bounds, rowcol

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tilewise.biomass import county_files as county_files_io  # noqa: E402
from tilewise.biomass import outcomes, state_index  # noqa: E402
from tilewise.biomass.tiles import ABSENT, CLIP, CONVERT, IN_PLACE, read_manifest  # noqa: E402

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
    fig = biomass_figure(parcels, state_index.read_county_shapes(index_dir), state)
    fig.savefig(map_png, metadata={"Software": None})
    plt.close(fig)
    return summary


def stock_and_flow_panels(frame: pd.DataFrame) -> list[tuple]:
    """(values, colour map, title, unit) of the two map panels, per acre of parcel: a stock and a flow
    are never added into one number."""
    area = frame["parcel_area_acres"].where(frame["parcel_area_acres"] > 0)
    flow = frame["crop_production_dry_short_tons_per_year"] + frame["crop_residue_dry_short_tons_per_year"]
    return [
        (
            frame["forest_aboveground_dry_short_tons"] / area,
            "Greens",
            "forest aboveground biomass, standing stock",
            "dry short tons per acre",
        ),
        (flow / area, "YlOrBr", "crop production + residue, annual flow", "dry short tons per acre per year"),
    ]


MAP_WIDTH_PX = 1400  # per panel, twice what the figure shows: a state's parcels drawn as an image


def parcel_image(geoms, values: np.ndarray, width_px: int = MAP_WIDTH_PX) -> tuple[np.ndarray, tuple]:
    """`values` painted on a grid over the parcels (NaN where none is): a parcel larger than a cell as
    its polygon, the smaller ones (most of a state's, at a state's width) as the area-weighted mean of
    those whose centroid falls in a cell. Drawing a million polygons one by one took minutes and GBs."""
    xmin, ymin, xmax, ymax = geoms.total_bounds
    if not np.isfinite([xmin, ymin, xmax, ymax]).all():  # no parcel: an empty panel
        return np.full((1, 1), np.nan), (0.0, 1.0, 0.0, 1.0)
    height_px = max(1, min(4 * width_px, round(width_px * (ymax - ymin) / max(xmax - xmin, 1e-12))))
    transform = from_bounds(xmin, ymin, xmax, ymax, width_px, height_px)
    values = np.asarray(values, np.float64)
    areas = shapely.area(geoms.values)
    large = (areas >= abs(transform.a * transform.e)) & np.isfinite(values)
    image = np.full((height_px, width_px), np.nan)
    if large.any():
        # GeoJSON mappings made by GEOS (exact: they read back equal): rasterio asks each shapely
        # polygon for its __geo_interface__ one by one, 2/3 of the image's time
        mappings = map(json.loads, shapely.to_geojson(geoms.values[large]))
        shapes = zip(mappings, values[large], strict=True)
        image = rasterize(shapes, (height_px, width_px), fill=np.nan, transform=transform, dtype="float64")
    small = ~large & np.isfinite(values) & (areas > 0)
    if small.any():
        centroids = shapely.centroid(geoms.values[small])
        rows, cols = rowcol(transform, shapely.get_x(centroids), shapely.get_y(centroids))
        cells = np.clip(np.asarray(rows), 0, height_px - 1) * width_px + np.clip(np.asarray(cols), 0, width_px - 1)
        weight = np.bincount(cells, areas[small], height_px * width_px)
        total = np.bincount(cells, areas[small] * values[small], height_px * width_px)
        mean = np.divide(total, weight, out=np.full_like(total, np.nan), where=weight > 0).reshape(image.shape)
        image = np.where(np.isnan(image), mean, image)  # a cell a large parcel covers shows that parcel
    return image, (xmin, xmax, ymin, ymax)


def biomass_figure(parcels: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame, state: str):
    """Two panels, never one sum: the forest stock and the crop flow, each per acre of parcel."""
    panels = stock_and_flow_panels(parcels)
    outlines = outlines.to_crs(parcels.crs)
    geographic = bool(parcels.crs and parcels.crs.is_geographic)
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), dpi=100)
    for ax, (values, cmap, title, unit) in zip(axes, panels, strict=True):
        image, extent = parcel_image(parcels.geometry, values.to_numpy(float))
        drawn = ax.imshow(image, extent=extent, cmap=cmap, interpolation="nearest", origin="upper")
        fig.colorbar(drawn, ax=ax, label=unit, shrink=0.7)
        outlines.boundary.plot(ax=ax, color="black", linewidth=0.8)
        if geographic:  # as geopandas draws lon/lat: a degree of longitude is shorter than one of latitude
            ax.set_aspect(1 / np.cos(np.radians((extent[2] + extent[3]) / 2)))
        ax.set_title(f"{state}: {title}")
        ax.set_xlabel("longitude" if geographic else "x")
        ax.set_ylabel("latitude" if geographic else "y")
    fig.suptitle(f"{len(parcels):,} parcels; county outlines in black; a stock and a flow are not added")
    fig.tight_layout()
    return fig


def done_record(state: str, county_files: list[Path], manifests: list[Path], tiles: list[Path]) -> dict:
    """Written only once every county succeeded (the rule's inputs say so): what was reclaimed.
    `manifests[i]` describes the tile `tiles[i]` (a converted COG, or nothing on disk if read in place or
    absent: not published by its server)."""
    records = [read_manifest(m) for m in manifests]
    converted = [(r, t) for r, t in zip(records, tiles, strict=True) if r["read"] in (CLIP, CONVERT)]
    return {
        "state": state,
        "counties": sorted(county_files_io.county_of(p) for p in county_files),
        "tiles": sorted(f"{t.parent.name}/{t.stem}" for t in tiles),
        "tiles_read_in_place": sorted(
            f"{t.parent.name}/{t.stem}" for r, t in zip(records, tiles, strict=True) if r["read"] == IN_PLACE
        ),
        "tiles_absent": sorted(
            f"{t.parent.name}/{t.stem}" for r, t in zip(records, tiles, strict=True) if r["read"] == ABSENT
        ),
        "converted_tile_bytes_reclaimed": sum(r["bytes"] for r, t in converted if not t.exists()),
        "converted_tile_bytes_peak": max((r["tile_bytes_on_disk_after"].get(state, 0) for r in records), default=0),
        "converted_tiles_still_on_disk": sorted(str(t) for _, t in converted if t.exists()),
    }


# --- a national run ---

# national summary column -> the parcel result column it sums: stocks and flows stay apart
NATIONAL_STOCKS = {
    "forest_aboveground_dry_short_tons": "forest_aboveground_dry_short_tons",
    "forest_bole_wood_dry_short_tons": "forest_bole_wood_dry_short_tons",
}
NATIONAL_FLOWS = {
    "crop_production_dry_short_tons_per_year": "crop_production_dry_short_tons_per_year",
    "crop_residue_dry_short_tons_per_year": "crop_residue_dry_short_tons_per_year",
    "crop_residue_removable_dry_short_tons_per_year": "crop_residue_removable_dry_short_tons_per_year",
}
AREA_COLUMN = "parcel_area_acres"


def county_totals(staged: str, state: str, counties: list[str]) -> pd.DataFrame:
    """Per succeeded county: acres and the stock and flow totals, from its staged parcel results."""
    wanted = [AREA_COLUMN, *NATIONAL_STOCKS.values(), *NATIONAL_FLOWS.values()]
    rows = []
    for fips in counties:
        parcels, _, _ = county_files_io.staged_paths(Path(staged.format(state=state, county=fips)))
        sums = pd.read_parquet(parcels, columns=wanted).sum()
        rows.append({"county_fips": fips, **{c: float(sums[c]) for c in wanted}})
    # numbers also with no row (every county of the state failed): object columns made the national map's
    # values categories, and its colour bar legend failed
    return pd.DataFrame(rows, columns=["county_fips", *wanted]).astype(dict.fromkeys(wanted, float))


def national_summary(
    states: list[str], index_dirs: list[Path], ended: list[Path], staged: str, out_csv: Path, out_png: Path
) -> pd.DataFrame:
    """One row per state, largest first; the map of biomass density per county of every state.
    `staged` is the path of a county's staging folder with {state} and {county}."""
    rows, shapes = [], []
    for state, index_dir, ended_path in zip(states, index_dirs, ended, strict=True):
        end = outcomes.read_state_ended(ended_path)
        counties = pd.DataFrame(state_index.read_counties(index_dir))
        totals = county_totals(staged, state, end["counties_ok"])
        parcels = counties.set_index("county_fips")["parcels"].astype(int)
        row = {
            "state": state,
            "counties_count": len(counties),
            "counties_done_count": len(end["counties_ok"]),
            "counties_failed_count": len(end["counties_failed"]),
            "parcels_count": int(parcels.sum()),
            "parcels_done_count": int(parcels.reindex(end["counties_ok"]).sum()),
            "parcel_area_done_acres": float(totals[AREA_COLUMN].sum()),
        }
        for name, column in (NATIONAL_STOCKS | NATIONAL_FLOWS).items():
            row[name] = float(totals[column].sum())
        row["converted_tile_bytes_peak"] = end["converted_tile_bytes_peak"]
        row["tiles_kept_count"] = len(end["tiles_kept"])
        row["state_seconds"] = round(end["ended_unix"] - end["started_unix"], 3)
        rows.append(row)
        shape = state_index.read_county_shapes(index_dir).to_crs(4326)
        shape = shape.merge(totals, on="county_fips", how="left").assign(state=state)
        shape["failed"] = shape["county_fips"].isin(list(end["counties_failed"]))
        shapes.append(shape)
    summary = pd.DataFrame(rows).sort_values(["parcels_count", "state"], ascending=[False, True])
    summary.to_csv(out_csv, index=False)
    _national_map(gpd.GeoDataFrame(pd.concat(shapes, ignore_index=True), crs=4326), out_png)
    return summary


def _national_map(counties: gpd.GeoDataFrame, png: Path) -> None:
    """Two panels, as the state map: the forest stock and the crop flow per acre of parcel, per county."""
    panels = stock_and_flow_panels(counties)
    failed = counties[counties["failed"]]
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), dpi=100)
    for ax, (values, cmap, title, unit) in zip(axes, panels, strict=True):
        counties.assign(value=values).plot(
            column="value",
            ax=ax,
            cmap=cmap,
            legend=True,
            linewidth=0.2,
            edgecolor="grey",
            missing_kwds={"color": "lightgrey"},
            legend_kwds={"label": unit, "shrink": 0.7},
        )
        if len(failed):
            failed.plot(ax=ax, facecolor="none", edgecolor="red", hatch="///", linewidth=0.5)
        counties.dissolve("state").boundary.plot(ax=ax, color="black", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    states = counties["state"].nunique()
    fig.suptitle(
        f"Per county, {states} state(s); {len(failed)} failed county(ies) hatched; a stock and a flow are not added"
    )
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)
