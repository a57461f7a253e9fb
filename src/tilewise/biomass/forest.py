"""Forest biomass from FIA plots (docs/biomass-model.md §5).

Per plot: short tons per acre = Σ over live trees DRYBIO_x × TPA_UNADJ / 2000 (DRYBIO in oven-dry
pounds per tree, TPA_UNADJ in trees per acre). Only the latest inventory year of each plot location
counts. Per parcel: the inverse-distance-weighted mean of the plots within a radius, times forest acres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from tilewise.shared.geometry import to_crs

LB_PER_SHORT_TON = 2000.0
PLOT_KEYS = ["STATECD", "UNITCD", "COUNTYCD", "PLOT"]


def plot_densities(plots: pd.DataFrame, trees: pd.DataFrame) -> pd.DataFrame:
    """One row per plot location (latest INVYR): LAT, LON and the aboveground and merchantable-bole
    densities in short tons per acre over live trees (STATUSCD 1). Plots without live trees are kept
    with 0 and flagged `live_trees = 0`."""
    keys = [k for k in PLOT_KEYS if k in plots.columns] or ["LAT", "LON"]
    latest = plots.sort_values("INVYR").groupby(keys, as_index=False).tail(1)
    live = trees[trees["STATUSCD"] == 1]
    per_tree = pd.DataFrame(
        {
            "PLT_CN": live["PLT_CN"],
            "ag": live["DRYBIO_AG"].fillna(0) * live["TPA_UNADJ"].fillna(0) / LB_PER_SHORT_TON,
            "bole": live["DRYBIO_BOLE"].fillna(0) * live["TPA_UNADJ"].fillna(0) / LB_PER_SHORT_TON,
            "n": 1,
        }
    )
    sums = per_tree.groupby("PLT_CN").sum()
    out = (
        latest[["CN", "LAT", "LON", "INVYR"]]
        .merge(sums, left_on="CN", right_index=True, how="left")
        .fillna({"ag": 0.0, "bole": 0.0, "n": 0})
    )
    return out.rename(
        columns={"ag": "aboveground_short_tons_per_acre", "bole": "bole_short_tons_per_acre", "n": "live_trees"}
    ).reset_index(drop=True)


@dataclass(frozen=True)
class ForestEstimate:
    aboveground_short_tons_per_acre: np.ndarray
    bole_short_tons_per_acre: np.ndarray
    plots_within_radius: np.ndarray
    nearest_plot_km: np.ndarray
    method: np.ndarray  # "idw" or "regional_mean"


def idw_densities(
    points_xy_m: np.ndarray,
    plots_xy_m: np.ndarray,
    plot_ag: np.ndarray,
    plot_bole: np.ndarray,
    radius_km: float,
    power: float,
    regional_ag: float,
    regional_bole: float,
    min_distance_km: float = 0.1,
) -> ForestEstimate:
    """Inverse-distance-weighted plot densities around each point (all coordinates in metres of one
    local projection); points with no plot within the radius get the regional means."""
    n = len(points_xy_m)
    ag, bole = np.full(n, regional_ag), np.full(n, regional_bole)
    count, nearest = np.zeros(n, np.int64), np.full(n, np.nan)
    method = np.full(n, "regional_mean", dtype=object)
    if len(plots_xy_m) and n:
        tree = shapely.STRtree(shapely.points(plots_xy_m))
        pi, pj = tree.query(shapely.points(points_xy_m), predicate="dwithin", distance=radius_km * 1000)
        if len(pi):
            d_km = np.hypot(*(points_xy_m[pi] - plots_xy_m[pj]).T) / 1000
            w = 1.0 / np.maximum(d_km, min_distance_km) ** power
            wsum = np.bincount(pi, w, n)
            has = wsum > 0
            ag[has] = (np.bincount(pi, w * plot_ag[pj], n) / np.where(has, wsum, 1))[has]
            bole[has] = (np.bincount(pi, w * plot_bole[pj], n) / np.where(has, wsum, 1))[has]
            count = np.bincount(pi, minlength=n)
            method[has] = "idw"
            order = np.lexsort((d_km, pi))
            first = np.unique(pi[order], return_index=True)[1]
            nearest[pi[order][first]] = d_km[order][first]
    return ForestEstimate(ag, bole, count, nearest, method)


def forest_columns(
    centroids_xy_m: np.ndarray,
    local_crs,
    fia_plots: pd.DataFrame,
    forest_acres: np.ndarray,
    radius_km: float,
    power: float,
) -> dict[str, np.ndarray]:
    """Per parcel (centroids in metres of `local_crs`): forest densities from the FIA plots and the
    standing biomass of its forest acres."""
    # forest density comes from forested plots (with live trees); plots without are not forest
    plots = fia_plots[fia_plots["live_trees"] > 0]
    if plots.empty:
        raise ValueError("the FIA tables hold no plot with live trees: no forest density can be estimated")
    xy = shapely.get_coordinates(to_crs(shapely.points(plots[["LON", "LAT"]].to_numpy()), 4326, local_crs))
    ag, bole = plots["aboveground_short_tons_per_acre"].to_numpy(), plots["bole_short_tons_per_acre"].to_numpy()
    est = idw_densities(centroids_xy_m, xy, ag, bole, radius_km, power, float(ag.mean()), float(bole.mean()))
    return {
        "forest_aboveground_short_tons_per_acre": est.aboveground_short_tons_per_acre,
        "forest_aboveground_short_tons": est.aboveground_short_tons_per_acre * forest_acres,
        "forest_bole_short_tons": est.bole_short_tons_per_acre * forest_acres,
        "forest_residue_short_tons": (est.aboveground_short_tons_per_acre - est.bole_short_tons_per_acre)
        * forest_acres,
        "forest_method": est.method,
        "fia_plots_within_radius_count": est.plots_within_radius,
        "nearest_fia_plot_km": est.nearest_plot_km,
    }
