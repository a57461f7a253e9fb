"""Standing forest biomass from FIA plots, as the FIA computes it (docs/biomass-model.md §5).

Per plot location (STATECD, UNITCD, COUNTYCD, PLOT) the latest *sampled* visit (PLOT_STATUS_CD 1 or 2).
Per forest plot, oven-dry short tons per *forested* acre:

    D = Σ over live trees (STATUSCD 1) on accessible forest conditions (COND_STATUS_CD 1)
        DRYBIO × TPA_UNADJ / P_part / 2000

P_part is the plot's sampled forest share of the part the tree was tallied on (microplot for saplings
under 5.0 in, macroplot at or above MACRO_BREAKPOINT_DIA, else subplot: SUBPPROP_UNADJ, MICRPROP_UNADJ,
MACRPROP_UNADJ summed over its forest conditions; CONDPROP_UNADJ where those are absent). A forest plot
without live trees is a forest plot of density 0. Per parcel: an inverse-distance-weighted ratio of the
plots within a radius, each plot weighted by its forest share too (FIA's ratio of means).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from tilewise.biomass.fiadb import FIADataError, read_table
from tilewise.biomass.quality import effective_count, weighted_sd
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs

LB_PER_SHORT_TON = 2000.0
PLOT_KEYS = ["STATECD", "UNITCD", "COUNTYCD", "PLOT"]
SAPLING_MAX_DIA_IN = 5.0  # saplings (1.0–4.9 in) are tallied on the microplot (FIADB93 TREE.TPA_UNADJ)
PHASE3_OFF_SUBPANEL_INVYR = 9999
ROOT_COLLAR = 2  # DIAHTCD: diameter at the root collar, i.e. a woodland species (no DRYBIO_BOLE by definition)
MISSING_POLICIES = ("error", "exclude_plot")
PLOT_REACH_KM = 10.0  # FIA perturbs public plot coordinates by up to about 1 mile: room for that, coasts, state lines
SHOWN = 20  # offending rows named in an error message
PLOT_COLUMNS = [
    *PLOT_KEYS,
    "CN",
    "INVYR",
    "LAT",
    "LON",
    "PLOT_STATUS_CD",
    "is_forest_plot",
    "forest_prop_fraction",
    "live_trees_count",
    "aboveground_dry_short_tons_per_acre",
    "bole_wood_dry_short_tons_per_acre",
]


def _fail(table: str, what: str, rows: list[str]) -> None:
    more = f" … and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    raise FIADataError(f"{table}: {what}: {'; '.join(rows[:SHOWN])}{more}")


def latest_sampled_visits(plots: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per plot location its latest visit with PLOT_STATUS_CD 1 or 2, and how many locations had none
    or used an older visit because the latest was not sampled. INVYR 9999 marks western Phase 3 plots
    "off subpanel", for Phase 3 analyses only (FIADB93 §2.1.2): left out, counted."""
    off_subpanel = plots["INVYR"] == PHASE3_OFF_SUBPANEL_INVYR
    plots = plots[~off_subpanel]
    dupes = plots[plots.duplicated([*PLOT_KEYS, "INVYR"], keep=False)]
    if len(dupes):
        _fail("PLOT", "the same plot location and INVYR more than once (CN)", dupes["CN"].tolist())
    keyless = plots[plots[[*PLOT_KEYS, "INVYR"]].isna().any(axis=1)]
    if len(keyless):
        _fail("PLOT", "STATECD, UNITCD, COUNTYCD, PLOT or INVYR missing (CN)", keyless["CN"].tolist())
    ordered = plots.sort_values("INVYR")
    latest = ordered.groupby(PLOT_KEYS).tail(1)
    chosen = ordered[ordered["PLOT_STATUS_CD"].isin([1, 2])].groupby(PLOT_KEYS).tail(1)
    # a visit of unknown status newer than the one chosen might have been the one to use
    unknown = ordered[~ordered["PLOT_STATUS_CD"].isin([1, 2, 3])]
    since = unknown.merge(chosen[[*PLOT_KEYS, "INVYR"]], on=PLOT_KEYS, how="left", suffixes=("", "_chosen"))
    undecided = since[~(since["INVYR"] < since["INVYR_chosen"])]
    if len(undecided):
        _fail("PLOT", "PLOT_STATUS_CD not 1, 2 or 3 on a plot's latest visits (CN)", undecided["CN"].tolist())
    older = ~chosen["CN"].isin(latest["CN"])
    return chosen, {
        "locations": len(latest),
        "nonsampled_locations": len(latest) - len(chosen),
        "older_visit_used": int(older.sum()),
        "phase3_off_subpanel_visits_ignored": int(off_subpanel.sum()),
    }


def _part_shares(forest_conds: pd.DataFrame, exact_parts: bool) -> pd.DataFrame:
    """Per PLT_CN the forest share of the whole plot (CONDPROP_UNADJ) and of each plot part."""
    by_plot = forest_conds.groupby("PLT_CN")
    shares = pd.DataFrame({"CONDPROP_UNADJ": by_plot["CONDPROP_UNADJ"].sum()})  # columns in this order
    for part, column in (("SUBP", "SUBPPROP_UNADJ"), ("MICR", "MICRPROP_UNADJ"), ("MACR", "MACRPROP_UNADJ")):
        shares[part] = shares["CONDPROP_UNADJ"]
        if exact_parts and column in forest_conds:
            complete = by_plot[column].count() == by_plot.size()  # every forest condition has the share
            shares.loc[complete, part] = by_plot[column].sum()[complete]
    return shares


def plot_densities(
    plots: pd.DataFrame, conds: pd.DataFrame, trees: pd.DataFrame, missing: str, exact_parts: bool = True
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """One row per sampled plot location (`PLOT_COLUMNS`; densities NaN for nonforest plots), the counts
    of what was left out and why, and the plots excluded for missing values (CN, problem).

    `missing`: a live forest tree without TPA_UNADJ, DRYBIO_AG or DIA, or without DRYBIO_BOLE at DIA ≥ 5.0
    on a timber species, is an error naming the rows (`error`) or drops its whole plot, counted
    (`exclude_plot`): dropping single trees would bias the plot low."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}")
    plots, conds, trees = (t.astype({c: str for c in ("CN", "PLT_CN") if c in t}) for t in (plots, conds, trees))
    chosen, stats = latest_sampled_visits(plots)
    _refuse_repeats(plots, conds, trees)
    _refuse_rows_of_no_plot(plots, conds, trees)
    conds = conds[conds["PLT_CN"].isin(chosen["CN"])]
    _refuse_shares_past_the_plot(conds)
    without = chosen.loc[~chosen["CN"].isin(conds["PLT_CN"]), "CN"]
    if len(without):
        _fail("COND", "no condition rows for the sampled PLOT CN", without.tolist())
    bad = conds[conds["COND_STATUS_CD"].isna() | ((conds["COND_STATUS_CD"] == 1) & conds["CONDPROP_UNADJ"].isna())]
    if len(bad):
        _fail("COND", "COND_STATUS_CD or CONDPROP_UNADJ missing (PLT_CN, CONDID)", _pairs(bad))
    forest_conds = conds[conds["COND_STATUS_CD"] == 1]
    shares = _part_shares(forest_conds, exact_parts).reindex(chosen["CN"]).fillna(0.0)
    share = shares["CONDPROP_UNADJ"].to_numpy()
    status = chosen["PLOT_STATUS_CD"].to_numpy()
    for code, wrong, what in ((1, share <= 0, "no accessible forest proportion"), (2, share > 0, "a forest condition")):
        odd = chosen.loc[(status == code) & wrong, "CN"]
        if len(odd):
            _fail("PLOT/COND", f"PLOT_STATUS_CD {code} but COND gives {what} (PLOT CN)", odd.tolist())
    is_forest = status == 1

    trees = trees[trees["PLT_CN"].isin(chosen.loc[is_forest, "CN"])]
    if trees["STATUSCD"].isna().any():
        _fail("TREE", "STATUSCD missing (TREE CN)", trees.loc[trees["STATUSCD"].isna(), "CN"].tolist())
    live = trees[trees["STATUSCD"] == 1].merge(
        conds[["PLT_CN", "CONDID", "COND_STATUS_CD"]], on=["PLT_CN", "CONDID"], how="left"
    )
    orphans = live[live["COND_STATUS_CD"].isna()]
    if len(orphans):
        _fail("TREE", "CONDID without a COND row (TREE CN)", orphans["CN"].tolist())
    stats["dead_or_cut_trees_ignored"] = int((trees["STATUSCD"] != 1).sum())
    stats["live_trees_on_nonforest_conditions_ignored"] = int((live["COND_STATUS_CD"] != 1).sum())
    live = live[live["COND_STATUS_CD"] == 1]

    problems = _missing_values(live)
    excluded = pd.DataFrame({"CN": live.loc[problems.index, "PLT_CN"], "problem": problems})
    if len(excluded) and missing == "error":
        _fail("TREE", "values the biomass needs are missing", problems.tolist())
    excluded = excluded.groupby("CN", as_index=False)["problem"].agg("; ".join)
    live = live[~live["PLT_CN"].isin(excluded["CN"])]

    densities = _tree_sums(live, chosen, shares)
    out = chosen[[*PLOT_KEYS, "CN", "INVYR", "LAT", "LON", "PLOT_STATUS_CD"]].assign(
        is_forest_plot=is_forest,
        forest_prop_fraction=np.where(is_forest, share, 0.0),
    )
    out = out.merge(densities, left_on="CN", right_index=True, how="left")
    out["live_trees_count"] = out["live_trees_count"].fillna(0).astype(np.int64)
    for column in ("aboveground_dry_short_tons_per_acre", "bole_wood_dry_short_tons_per_acre"):
        out[column] = np.where(out["is_forest_plot"], out[column].fillna(0.0), np.nan)
    out = out[~out["CN"].isin(excluded["CN"])]
    unplaced = out.loc[out["is_forest_plot"] & (out["LAT"].isna() | out["LON"].isna()), "CN"]
    if len(unplaced):
        _fail("PLOT", "LAT or LON missing on a forest plot (CN)", unplaced.tolist())
    forest = out[out["is_forest_plot"]]
    stats |= {
        "forest_plots": len(forest),
        "forest_plots_zero_biomass": int((forest["live_trees_count"] == 0).sum()),
        "nonforest_plots": int((~out["is_forest_plot"]).sum()),
        "excluded_missing_values": len(excluded),
    }
    out = out.astype({c: np.int64 for c in (*PLOT_KEYS, "INVYR", "PLOT_STATUS_CD")}).sort_values(PLOT_KEYS)
    return out[PLOT_COLUMNS].reset_index(drop=True), stats, excluded


PROPORTIONS = ("CONDPROP_UNADJ", "SUBPPROP_UNADJ", "MICRPROP_UNADJ", "MACRPROP_UNADJ")
PROPORTION_SUM_TOLERANCE = 0.01  # FIADB stores the proportions rounded: their sum may pass 1 by a hair


def _refuse_repeats(plots: pd.DataFrame, conds: pd.DataFrame, trees: pd.DataFrame) -> None:
    """FIADB's keys are unique: PLOT.CN, COND (PLT_CN, CONDID), TREE.CN. A row given twice (two downloads
    concatenated, an append run twice) counted a tree twice, or a condition's share twice."""
    for table, frame, keys in (("PLOT", plots, ["CN"]), ("COND", conds, ["PLT_CN", "CONDID"]), ("TREE", trees, ["CN"])):
        repeated = frame[frame.duplicated(keys, keep=False)].drop_duplicates(keys)
        if len(repeated):
            rows = repeated[keys].to_numpy()
            named = [", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) for row in rows]
            _fail(
                table,
                f"the same {' and '.join(keys)} more than once ({', '.join(keys)}); give each row once, from one "
                "FIA DataMart download",
                named,
            )


def _refuse_rows_of_no_plot(plots: pd.DataFrame, conds: pd.DataFrame, trees: pd.DataFrame) -> None:
    """COND.PLT_CN and TREE.PLT_CN are PLOT.CN (FIADB's keys). A row naming no plot (sequence numbers a
    spreadsheet rewrote as 1.23E+14 or 1001.0, a table of another download) left its plot's trees out:
    a forest of density 0, no error."""
    for table, frame in (("COND", conds), ("TREE", trees)):
        orphans = frame.loc[~frame["PLT_CN"].isin(plots["CN"]), "PLT_CN"].drop_duplicates()
        if len(orphans):
            _fail(
                table,
                "PLT_CN not a CN of the PLOT table (give PLOT, COND and TREE of one FIA DataMart download, "
                "sequence numbers as text: a spreadsheet rewrites them as 1.23E+14) (PLT_CN)",
                orphans.tolist(),
            )


def _refuse_shares_past_the_plot(conds: pd.DataFrame) -> None:
    """A plot's conditions share it: their proportions (of the plot, of each of its parts) add up to at
    most 1. More made its forest share more than the plot (weight and regional ratio off, no error)."""
    for column in (c for c in PROPORTIONS if c in conds):
        total = conds.groupby("PLT_CN")[column].sum()
        past = total[total > 1 + PROPORTION_SUM_TOLERANCE]
        if len(past):
            _fail(
                "COND",
                f"{column} of a plot's conditions adds up to more than 1 (PLT_CN: sum); is a condition given twice or "
                "from another table?",
                [f"{cn}: {v:g}" for cn, v in past.items()],
            )


def state_plot_densities(plot_csv, cond_csv, tree_csv, missing: str, state_fips: str):
    """plot_densities of a state's FIADB PLOT, COND and TREE tables (CSV files or SQLite); every plot
    must be of the state (STATECD is its FIPS code): another state's tables give its forests' densities."""
    tables = (read_table(plot_csv, "PLOT"), read_table(cond_csv, "COND"), read_table(tree_csv, "TREE"))
    codes = tables[0]["STATECD"].dropna().astype(int)
    others = sorted(set(codes) - {int(state_fips)})
    if others:
        raise TilewiseError(
            f"{plot_csv}: the FIADB PLOT table holds plots of STATECD {', '.join(map(str, others))}, not only of "
            f"this state ({int(state_fips)}); download the state's own tables from the FIA DataMart "
            "(config: states.<state>.fia_plot, fia_cond, fia_tree)"
        )
    try:
        return plot_densities(*tables, missing=missing)
    except FIADataError as exc:  # the rows are named by table: say which files those are
        raise FIADataError(f"FIADB PLOT {plot_csv}, COND {cond_csv}, TREE {tree_csv}: {exc}") from exc


def refuse_plots_outside_the_state(plots: pd.DataFrame, counties: gpd.GeoDataFrame, plot_csv) -> None:
    """Forest plots (`PLOT_COLUMNS`) of a county in `counties` (STATECD + COUNTYCD) farther than
    PLOT_REACH_KM from every county there: LAT and LON swapped, a sign or a decimal point lost, another
    state's coordinates. Such a plot was within no parcel's radius: the parcels around it fell back to the
    state's ratio, no error. A plot of a county the layer leaves out (a layer of some counties) is not judged."""
    forest = plots[plots["is_forest_plot"]]
    fips = forest["STATECD"].map("{:02d}".format) + forest["COUNTYCD"].map("{:03d}".format)
    forest = forest[fips.isin(counties["county_fips"]).to_numpy()]
    state = counties.to_crs(4326).union_all()
    centre = state.representative_point()
    laea = CRS.from_proj4(f"+proj=laea +lat_0={centre.y:.6f} +lon_0={centre.x:.6f} +datum=WGS84 +units=m +no_defs")
    lon = (forest["LON"].to_numpy() + 180) % 360 - 180  # 180.03 (continuous across ±180°) is −179.97
    far = ~forest["LAT"].between(-90, 90).to_numpy()  # off the globe
    points = to_crs(shapely.points(np.column_stack([lon, forest["LAT"]])[~far]), 4326, laea)
    far[~far] = ~shapely.dwithin(points, to_crs(state, 4326, laea), PLOT_REACH_KM * 1000)
    if far.any():
        rows = forest[far]
        _fail(
            f"{plot_csv}: PLOT",
            f"forest plot farther than {PLOT_REACH_KM:g} km from every county of the state (LAT and LON swapped, a "
            "sign or decimal point lost, another state's plot?); give the FIA DataMart's LAT and LON (CN: LAT, LON)",
            [f"{cn}: {lat:g}, {lon:g}" for cn, lat, lon in zip(rows["CN"], rows["LAT"], rows["LON"], strict=True)],
        )


def _pairs(conds: pd.DataFrame) -> list[str]:
    return [f"{p}, {c:g}" for p, c in zip(conds["PLT_CN"], conds["CONDID"], strict=True)]


def _missing_values(live: pd.DataFrame) -> pd.Series:
    """Per live forest tree with a value missing: 'TREE CN x (PLT_CN y): what'."""
    woodland = live["DIAHTCD"] == ROOT_COLLAR if "DIAHTCD" in live else pd.Series(False, index=live.index)
    checks = {
        "TPA_UNADJ missing": live["TPA_UNADJ"].isna(),
        "DRYBIO_AG missing": live["DRYBIO_AG"].isna(),
        "DIA missing": live["DIA"].isna(),
        "DRYBIO_BOLE missing at DIA ≥ 5.0 on a timber species": live["DRYBIO_BOLE"].isna()
        & (live["DIA"] >= SAPLING_MAX_DIA_IN)
        & ~woodland,
    }
    what = pd.Series("", index=live.index, dtype=object)
    for text, hit in checks.items():
        what[hit] = what[hit] + (what[hit] != "").map({True: ", ", False: ""}) + text
    hit = what != ""
    return "TREE CN " + live.loc[hit, "CN"] + " (PLT_CN " + live.loc[hit, "PLT_CN"] + "): " + what[hit]


def _tree_sums(live: pd.DataFrame, chosen: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Per PLT_CN: live trees, aboveground and bole-wood short tons per forested acre."""
    macro = chosen.set_index("CN").get("MACRO_BREAKPOINT_DIA", pd.Series(dtype=float))
    breakpoint = live["PLT_CN"].map(macro).astype(float)  # float also with no live tree (text dtype, no comparison)
    part = np.select(  # column of `shares`: subplot, microplot for saplings, macroplot past the breakpoint
        [live["DIA"] < SAPLING_MAX_DIA_IN, breakpoint.notna() & (live["DIA"] >= breakpoint)], [2, 3], default=1
    )
    share = shares.to_numpy()[shares.index.get_indexer(live["PLT_CN"]), part]
    empty = live[share <= 0]
    if len(empty):
        _fail("TREE/COND", "tree on a plot part whose forest share is 0 (TREE CN)", empty["CN"].tolist())
    per_acre = live["TPA_UNADJ"].to_numpy() / share / LB_PER_SHORT_TON
    sums = pd.DataFrame(
        {
            "PLT_CN": live["PLT_CN"].to_numpy(),
            "live_trees_count": 1,
            "aboveground_dry_short_tons_per_acre": live["DRYBIO_AG"].to_numpy() * per_acre,
            "bole_wood_dry_short_tons_per_acre": live["DRYBIO_BOLE"].fillna(0.0).to_numpy() * per_acre,
        }
    )
    return sums.groupby("PLT_CN").sum()


def forest_columns(
    centroids_xy_m: np.ndarray,
    local_crs,
    fia_plots: pd.DataFrame,
    forest_acres: np.ndarray,
    radius_km: float,
    power: float,
    min_distance_km: float = 0.1,
) -> dict[str, np.ndarray]:
    """Per parcel (centroids in metres of `local_crs`): the forest density from the FIA plots within
    `radius_km` (else the state's ratio), its spread, the plots it rests on, and the standing stock of
    the parcel's forest acres."""
    plots = fia_plots[fia_plots["is_forest_plot"]]
    if plots.empty:
        raise FIADataError("PLOT/COND: the FIA tables hold no sampled forest plot: no forest density can be estimated")
    n = len(centroids_xy_m)
    xy = shapely.get_coordinates(to_crs(shapely.points(plots[["LON", "LAT"]].to_numpy()), 4326, local_crs))
    share = plots["forest_prop_fraction"].to_numpy()
    ag, bole = (
        plots["aboveground_dry_short_tons_per_acre"].to_numpy(),
        plots["bole_wood_dry_short_tons_per_acre"].to_numpy(),
    )
    year = plots["INVYR"].to_numpy()

    # the state's ratio of means: the fallback where no plot is within the radius
    col = {
        "density": np.full(n, _ratio(ag, share)),
        "bole": np.full(n, _ratio(bole, share)),
        "sd": np.full(n, weighted_sd(ag, share)),
        "used": np.full(n, len(plots)),
        "effective": np.full(n, effective_count(share)),
        "distance": np.full(n, np.nan),
        "first": np.full(n, year.min()),
        "last": np.full(n, year.max()),
        "within": np.zeros(n, np.int64),
        "method": np.full(n, "regional_ratio", dtype=object),
    }
    points = shapely.points(centroids_xy_m)
    tree = shapely.STRtree(shapely.points(xy))
    pi, pj = tree.query(points, predicate="dwithin", distance=radius_km * 1000)
    near_i, near_j = tree.query_nearest(points, all_matches=False)
    nearest = np.full(n, np.nan)
    nearest[near_i] = np.hypot(*(centroids_xy_m[near_i] - xy[near_j]).T) / 1000
    if len(pi):
        d_km = np.hypot(*(centroids_xy_m[pi] - xy[pj]).T) / 1000
        v = share[pj] / np.maximum(d_km, min_distance_km) ** power  # distance weight × forest share
        v1, v2 = np.bincount(pi, v, n), np.bincount(pi, v * v, n)
        has = v1 > 0
        safe = np.where(has, v1, 1.0)
        mean = np.bincount(pi, v * ag[pj], n) / safe
        spread = np.bincount(pi, v * (ag[pj] - mean[pi]) ** 2, n)
        count = np.bincount(pi, minlength=n)
        first, last = np.full(n, np.iinfo(np.int64).max), np.full(n, np.iinfo(np.int64).min)
        np.minimum.at(first, pi, year[pj])
        np.maximum.at(last, pi, year[pj])
        local = {
            "density": mean,
            "bole": np.bincount(pi, v * bole[pj], n) / safe,
            "sd": _sd_from_sums(spread, v1, v2, count),
            "used": count,
            "effective": v1 * v1 / np.where(has, v2, 1.0),
            "distance": np.bincount(pi, v * d_km, n) / safe,
            "first": first,
            "last": last,
            "within": count,
            "method": np.full(n, "idw", dtype=object),
        }
        for key, values in local.items():
            col[key] = np.where(has, values, col[key])
    return {
        "forest_aboveground_density_dry_short_tons_per_acre": col["density"],
        "forest_aboveground_density_sd_dry_short_tons_per_acre": col["sd"],
        "forest_aboveground_dry_short_tons": col["density"] * forest_acres,
        "forest_bole_wood_dry_short_tons": col["bole"] * forest_acres,
        "forest_method": col["method"],
        "fia_plots_within_radius_count": col["within"],
        "fia_plots_used_count": col["used"],
        "fia_plots_effective_count": col["effective"],
        "fia_nearest_plot_km": nearest,
        "fia_plot_distance_weighted_mean_km": col["distance"],
        "fia_plot_first_year": col["first"],
        "fia_plot_last_year": col["last"],
    }


def _ratio(density: np.ndarray, share: np.ndarray) -> float:
    """Σ P·D / Σ P: biomass of all plot acres over their forest acres."""
    return float((share * density).sum() / share.sum())


def _sd_from_sums(spread, v1, v2, count) -> np.ndarray:
    """The unbiased weighted SD for reliability weights (see quality.weighted_sd) from its sums."""
    den = v1 * v1 - v2
    ok = (count >= 2) & (den > 1e-12 * v1 * v1)
    return np.where(ok, np.sqrt(np.where(ok, v1 / np.where(ok, den, 1.0) * spread, 0.0)), np.nan)
