"""FIA as the FIA computes it: hand-calculated PLOT, COND and TREE tables (tests/data/fia_example/README.md)."""

import re

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from tilewise.biomass.fiadb import FIADataError, read_table
from tilewise.biomass.forest import (
    forest_columns,
    plot_densities,
    refuse_plots_outside_the_state,
    state_plot_densities,
)
from tilewise.biomass.quality import weighted_sd
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs

from conftest import REPO

EXAMPLE = REPO / "tests" / "data" / "fia_example"
UTM16 = CRS.from_epsg(32616)


def tables():
    return tuple(read_table(EXAMPLE / f"{t}.csv", t) for t in ("PLOT", "COND", "TREE"))


def densities(*args, **kwargs):
    rows, stats, excluded = plot_densities(*args, **kwargs)
    return rows.set_index("PLOT"), stats, excluded


def test_a_missing_tpa_is_an_error_naming_table_and_rows():
    with pytest.raises(FIADataError, match=r"TREE: .*TREE CN 500101 \(PLT_CN 5001\): TPA_UNADJ missing"):
        state_plot_densities(*(EXAMPLE / f"{t}.csv" for t in ("PLOT", "COND", "TREE")), "error", "20")


def test_hand_example_per_forested_acre():
    by, stats, excluded = densities(*tables(), missing="exclude_plot")
    ag = by["aboveground_dry_short_tons_per_acre"]
    # 101: latest visit (2019); dead tree out; sapling on the microplot: (800·6.018046 + 10·74.965282)/2000
    assert by.loc[101, "CN"] == "1001" and ag[101] == pytest.approx(2.78204481)
    # 102: half forested; the tree on the nonforest condition is out; ÷ 0.5 forest share: not halved
    assert ag[102] == pytest.approx(6.018046) and by.loc[102, "forest_prop_fraction"] == 0.5
    # 103: the latest visit is forest without a live tree: a forest plot of density 0, not dropped
    assert by.loc[103, "is_forest_plot"] and ag[103] == 0.0 and by.loc[103, "CN"] == "3001"
    # 104: PLOT_STATUS_CD 2: a nonforest plot, no forest density
    assert not by.loc[104, "is_forest_plot"] and np.isnan(ag[104])
    # 106: a quarter nonsampled (COND_STATUS_CD 5): 1200·6.018046/0.75 + 20·74.965282/1.0 (microplot all forest)
    assert ag[106] == pytest.approx(5.56408962)
    # 108: the 2022 visit was not sampled: the 2017 one counts
    assert by.loc[108, "CN"] == "8000" and ag[108] == pytest.approx(1.5045115)
    assert 105 not in by.index and 107 not in by.index
    bole = by["bole_wood_dry_short_tons_per_acre"]
    assert bole[101] == pytest.approx(1.5045115) and bole[102] == pytest.approx(4.2126322)
    assert bole[106] == pytest.approx(3.6108276) and bole[108] == pytest.approx(0.9027069)
    assert stats == {
        "locations": 8,
        "nonsampled_locations": 1,
        "older_visit_used": 1,
        "phase3_off_subpanel_visits_ignored": 0,
        "dead_or_cut_trees_ignored": 2,
        "live_trees_on_nonforest_conditions_ignored": 1,
        "forest_plots": 5,
        "forest_plots_zero_biomass": 1,
        "nonforest_plots": 1,
        "excluded_missing_values": 1,
    }
    assert excluded.to_dict("records") == [{"CN": "5001", "problem": "TREE CN 500101 (PLT_CN 5001): TPA_UNADJ missing"}]


def test_expected_values_file_agrees():
    by, _, _ = densities(*tables(), missing="exclude_plot")
    expected = pd.read_csv(EXAMPLE / "expected_plot_densities.csv")
    for e in expected.dropna(subset=["ag_dry_short_tons_per_acre_exact"]).itertuples():
        assert by.loc[e.PLOT, "aboveground_dry_short_tons_per_acre"] == pytest.approx(
            e.ag_dry_short_tons_per_acre_exact
        )


def test_condprop_for_every_tree_where_part_shares_are_absent():
    plots, conds, trees = tables()
    by, _, _ = densities(plots, conds.drop(columns=["MICRPROP_UNADJ"]), trees, missing="exclude_plot")
    # 106 without MICRPROP_UNADJ: the sapling is divided by CONDPROP 0.75 too: (7221.6552 + 1499.30564)/0.75/2000
    assert by.loc[106, "aboveground_dry_short_tons_per_acre"] == pytest.approx(5.813973893)
    by, _, _ = densities(*tables(), missing="exclude_plot", exact_parts=False)
    assert by.loc[106, "aboveground_dry_short_tons_per_acre"] == pytest.approx(5.813973893)


def without_plot_105():
    plots, conds, trees = tables()
    return plots, conds, trees[trees["PLT_CN"] != "5001"].copy()


def test_missing_drybio_is_an_error_and_a_sapling_or_woodland_bole_is_not():
    plots, conds, trees = without_plot_105()
    bad = trees.copy()
    bad.loc[bad["CN"] == "100101", "DRYBIO_AG"] = np.nan
    with pytest.raises(FIADataError, match=r"TREE CN 100101 \(PLT_CN 1001\): DRYBIO_AG missing"):
        plot_densities(plots, conds, bad, missing="error")
    bad = trees.copy()
    bad.loc[bad["CN"] == "100101", "DRYBIO_BOLE"] = np.nan  # DIA 12 on a timber species: must have a bole
    with pytest.raises(FIADataError, match="DRYBIO_BOLE missing at DIA ≥ 5.0 on a timber species"):
        plot_densities(plots, conds, bad, missing="error")
    # a woodland species (diameter at the root collar) has no DRYBIO_BOLE by definition (FIADB93 §3.1.93)
    bad["DIAHTCD"] = np.where(bad["CN"] == "100101", 2, 1)
    by, _, _ = densities(plots, conds, bad, missing="error")
    assert by.loc[101, "bole_wood_dry_short_tons_per_acre"] == 0.0  # the only bole tree, now woodland
    assert by.loc[101, "aboveground_dry_short_tons_per_acre"] == pytest.approx(2.78204481)  # unchanged
    # with exclude_plot the plot is left out whole and counted, never a silent 0
    bad.loc[bad["CN"] == "100102", "TPA_UNADJ"] = np.nan
    by, stats, excluded = densities(plots, conds, bad, missing="exclude_plot")
    assert 101 not in by.index and stats["excluded_missing_values"] == 1 and excluded["CN"].tolist() == ["1001"]


def test_inconsistent_tables_fail_naming_the_rows():
    plots, conds, trees = without_plot_105()
    orphan = trees.copy()
    orphan.loc[orphan["CN"] == "100101", "CONDID"] = 9
    with pytest.raises(FIADataError, match=r"TREE: CONDID without a COND row \(TREE CN\): 100101"):
        plot_densities(plots, conds, orphan, missing="error")
    no_cond = conds[conds["PLT_CN"] != "2001"]
    with pytest.raises(FIADataError, match=r"COND: no condition rows for the sampled PLOT CN: 2001"):
        plot_densities(plots, no_cond, trees, missing="error")
    odd = conds.copy()
    odd.loc[odd["PLT_CN"] == "1001", "COND_STATUS_CD"] = 2  # PLOT says forest, COND says none
    with pytest.raises(FIADataError, match=r"PLOT_STATUS_CD 1 but COND gives no accessible forest proportion.*1001"):
        plot_densities(plots, odd, trees, missing="error")
    unknown = plots.copy()
    unknown.loc[unknown["CN"] == "1000", "PLOT_STATUS_CD"] = np.nan  # older than the visit used: no matter
    by, _, _ = densities(unknown, conds, trees, missing="error")
    assert by.loc[101, "CN"] == "1001"
    unknown.loc[unknown["CN"] == "8001", "PLOT_STATUS_CD"] = np.nan  # newer than 108's 2017 visit: undecidable
    with pytest.raises(FIADataError, match=r"PLOT_STATUS_CD not 1, 2 or 3 on a plot's latest visits \(CN\): 8001"):
        plot_densities(unknown, conds, trees, missing="error")
    phase3 = pd.concat([plots, plots[plots["CN"] == "1001"].assign(CN="1002", INVYR=9999)])
    by, stats, _ = densities(phase3, conds, trees, missing="error")
    assert by.loc[101, "CN"] == "1001" and stats["phase3_off_subpanel_visits_ignored"] == 1
    twice = pd.concat([plots, plots.iloc[:1]])
    with pytest.raises(FIADataError, match=r"the same plot location and INVYR more than once \(CN\): 1000; 1000"):
        plot_densities(twice, conds, trees, missing="error")


def test_fiadb_reader_names_the_file_column_and_line(tmp_path):
    (tmp_path / "COND.csv").write_text("PLT_CN,CONDID,COND_STATUS_CD\n1,1,1\n")
    with pytest.raises(TilewiseError, match=r"COND\.csv: the FIADB COND table lacks columns \['CONDPROP_UNADJ'\]"):
        read_table(tmp_path / "COND.csv", "COND")
    (tmp_path / "PLOT.csv").write_text(
        (EXAMPLE / "PLOT.csv").read_text().replace("1001,20,1,27,101,2019", "1001,20,1,27,101,twenty")
    )
    with pytest.raises(TilewiseError, match=r"PLOT\.csv: column INVYR is not a number on lines \[3\]"):
        read_table(tmp_path / "PLOT.csv", "PLOT")
    plots = read_table(EXAMPLE / "PLOT.csv", "PLOT")
    assert plots["CN"].tolist()[:2] == ["1000", "1001"]  # sequence numbers stay text


def fia_plots(*plots):
    """FIA plot rows at (x km, y km) of UTM 16N around (400 km, 4400 km): (x, y, density, share, year)."""
    xy = np.array([[400_000 + x * 1000, 4_400_000 + y * 1000] for x, y, *_ in plots])
    lonlat = shapely.get_coordinates(to_crs(shapely.points(xy), UTM16, 4326))
    return pd.DataFrame(
        {
            "LON": lonlat[:, 0],
            "LAT": lonlat[:, 1],
            "is_forest_plot": True,
            "aboveground_dry_short_tons_per_acre": [p[2] for p in plots],
            "bole_wood_dry_short_tons_per_acre": [p[2] / 2 for p in plots],
            "forest_prop_fraction": [p[3] for p in plots],
            "INVYR": [p[4] for p in plots],
        }
    )


def test_inverse_distance_ratio_estimator_by_hand():
    plots = fia_plots((1, 0, 40.0, 1.0, 2019), (0, 2, 10.0, 0.5, 2021), (50, 0, 99.0, 1.0, 2015))
    points = np.array([[400_000.0, 4_400_000.0], [300_000.0, 4_400_000.0]])
    got = forest_columns(points, UTM16, plots, np.array([2.0, 3.0]), radius_km=15, power=2)
    # weights 1/1² × share 1.0 = 1 and 1/2² × share 0.5 = 0.125: (40 + 0.125 × 10) / 1.125
    v = np.array([1.0, 0.125])
    density = (40 + 0.125 * 10) / 1.125
    assert got["forest_aboveground_density_dry_short_tons_per_acre"][0] == pytest.approx(density, rel=1e-6)
    assert got["forest_aboveground_dry_short_tons"][0] == pytest.approx(2 * density, rel=1e-6)
    assert got["forest_bole_wood_dry_short_tons"][0] == pytest.approx(2 * density / 2, rel=1e-6)
    assert got["forest_aboveground_density_sd_dry_short_tons_per_acre"][0] == pytest.approx(
        weighted_sd([40.0, 10.0], v), rel=1e-5
    )
    assert got["fia_plots_effective_count"][0] == pytest.approx(1.125**2 / (1 + 0.125**2), rel=1e-6)
    assert got["fia_plot_distance_weighted_mean_km"][0] == pytest.approx((1 * 1 + 0.125 * 2) / 1.125, rel=1e-4)
    assert got["fia_nearest_plot_km"][0] == pytest.approx(1.0, rel=1e-4)
    assert (got["fia_plots_within_radius_count"][0], got["fia_plots_used_count"][0]) == (2, 2)
    assert (got["fia_plot_first_year"][0], got["fia_plot_last_year"][0], got["forest_method"][0]) == (2019, 2021, "idw")
    # nothing within 15 km of the second point: the state's ratio Σ P·D / Σ P over all forest plots
    regional = (40 + 0.5 * 10 + 99) / 2.5
    assert got["forest_method"][1] == "regional_ratio" and got["fia_plots_within_radius_count"][1] == 0
    assert got["forest_aboveground_density_dry_short_tons_per_acre"][1] == pytest.approx(regional)
    assert got["fia_plots_used_count"][1] == 3 and np.isnan(got["fia_plot_distance_weighted_mean_km"][1])
    assert got["fia_nearest_plot_km"][1] == pytest.approx(100.0, rel=1e-3)
    assert (got["fia_plot_first_year"][1], got["fia_plot_last_year"][1]) == (2015, 2021)


def test_a_single_plot_has_no_spread_and_no_forest_plot_is_an_error():
    plots = fia_plots((1, 0, 40.0, 1.0, 2019))
    got = forest_columns(np.array([[400_000.0, 4_400_000.0]]), UTM16, plots, np.array([1.0]), 15, 2)
    assert np.isnan(got["forest_aboveground_density_sd_dry_short_tons_per_acre"][0])
    with pytest.raises(FIADataError, match="no sampled forest plot"):
        forest_columns(np.array([[0.0, 0.0]]), UTM16, plots.assign(is_forest_plot=False), np.array([1.0]), 15, 2)


@pytest.mark.parametrize("fips", ["18", "99"])
def test_fia_tables_of_another_state_are_refused(fips):
    """Kansas's plots (STATECD 20) configured for another state gave that state Kansas's forest densities."""
    with pytest.raises(
        TilewiseError,
        match=rf"PLOT.csv: the FIADB PLOT table holds plots of STATECD 20, not only of this state \({int(fips)}\)",
    ):
        state_plot_densities(*(EXAMPLE / f"{t}.csv" for t in ("PLOT", "COND", "TREE")), "exclude_plot", fips)


def _forest_rows(table, plots):
    """Rows of `table` on the forest plots the example's densities use."""
    by, _, _ = densities(*without_plot_105(), missing="error")
    return table[table["PLT_CN"].isin(by.loc[by["is_forest_plot"], "CN"])]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # two downloads concatenated, an append run twice: each tree counted twice, the density doubled
        (lambda p, c, t: (p, c, pd.concat([t, _forest_rows(t, p).iloc[:1]])), r"TREE: the same CN more than once"),
        (lambda p, c, t: (p, c, pd.concat([t, t])), r"TREE: the same CN more than once"),
        # a condition twice: the plot's forest share 2.0, its weight doubled
        (
            lambda p, c, t: (p, pd.concat([c, _forest_rows(c, p).iloc[:1]]), t),
            r"COND: the same PLT_CN and CONDID more than once \(PLT_CN, CONDID\); .*: 1001, 1$",
        ),
        (lambda p, c, t: (pd.concat([p, p.iloc[:1].assign(INVYR=1990)]), c, t), r"PLOT: the same CN more than once"),
    ],
    ids=["tree-row", "tree-table-twice", "cond-row", "plot-cn"],
)
def test_fia_rows_repeated_are_refused_naming_them(edit, message):
    with pytest.raises(FIADataError, match=message):
        plot_densities(*edit(*without_plot_105()), missing="error")


def test_condition_proportions_past_the_whole_plot_are_refused():
    """CONDPROP_UNADJ of a plot's conditions adding up to 1.6 gave it a forest share of 1.6: weight and
    regional ratio off, no error."""
    plots, conds, trees = without_plot_105()
    first = _forest_rows(conds, plots).index[0]
    conds.loc[first, "CONDPROP_UNADJ"] += 0.6
    message = r"COND: CONDPROP_UNADJ of a plot's conditions adds up to more than 1 .*: 1001: 1.6$"
    with pytest.raises(FIADataError, match=message):
        plot_densities(plots, conds, trees, missing="error")


@pytest.mark.parametrize("table", ["TREE", "COND"])
@pytest.mark.parametrize(
    "edit",
    [lambda cn: cn + ".0", lambda cn: f"{float(cn):.2E}", lambda cn: str(int(cn) + 7_000_000)],
    ids=["float-text", "scientific", "another-download"],
)
@pytest.mark.parametrize("plot_cn", ["1001", "1000"], ids=["visit-used", "older-visit"])
def test_rows_whose_plt_cn_names_no_plot_are_refused_naming_them(table, edit, plot_cn):
    """TREE.PLT_CN and COND.PLT_CN are PLOT.CN (FIADB's keys). A TREE table whose sequence numbers a
    spreadsheet rewrote (1001.0, 1.00E+03) or of another download left its plots' trees out: plot 101
    a forest of density 0, no error."""
    plots, conds, trees = without_plot_105()
    frame = trees if table == "TREE" else conds
    hit = frame["PLT_CN"] == plot_cn
    frame.loc[hit, "PLT_CN"] = frame.loc[hit, "PLT_CN"].map(edit)
    message = rf"{table}: PLT_CN not a CN of the PLOT table .*: {re.escape(edit(plot_cn))}"
    with pytest.raises(FIADataError, match=message):
        plot_densities(plots, conds, trees, missing="error")


@pytest.mark.parametrize("trees_kept", ["none", "dead-only"])
def test_forest_plots_without_any_live_tree_in_the_state_are_density_0(trees_kept):
    """No live tree on any forest plot (a TREE table of header only, every tree dead) crashed in pandas."""
    plots, conds, trees = without_plot_105()
    trees = trees.iloc[:0] if trees_kept == "none" else trees.assign(STATUSCD=2.0)
    by, _, _ = densities(plots, conds, trees, missing="error")
    forest = by[by["is_forest_plot"]]
    assert len(forest) and (forest["aboveground_dry_short_tons_per_acre"] == 0).all()
    assert (forest["live_trees_count"] == 0).all()


def test_a_state_tables_error_names_the_three_files(tmp_path):
    trees = pd.read_csv(EXAMPLE / "TREE.csv", dtype=str)
    trees["PLT_CN"] = trees["PLT_CN"] + ".0"  # every PLT_CN rewritten: every tree was left out
    trees.to_csv(tmp_path / "TREE.csv", index=False)
    files = [EXAMPLE / "PLOT.csv", EXAMPLE / "COND.csv", tmp_path / "TREE.csv"]
    message = rf"FIADB PLOT {re.escape(str(files[0]))}, COND .*, TREE {re.escape(str(files[2]))}: TREE: PLT_CN not a CN"
    with pytest.raises(FIADataError, match=message):
        state_plot_densities(*files, missing="exclude_plot", state_fips="20")


CLAY_BOX = (-97.4, 39.2, -96.9, 39.5)  # the example's plots lie at 39.30–39.45 N, 97.0–97.1 W


def _state(box=CLAY_BOX):
    import geopandas as gpd

    return gpd.GeoDataFrame({"county_fips": ["20027"]}, geometry=[shapely.box(*box)], crs=4326)


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.assign(LAT=p["LON"], LON=p["LAT"]),  # columns swapped
        lambda p: p.assign(LON=-p["LON"]),  # the west sign lost
        lambda p: p.assign(LON=p["LON"] + 8.0),  # another state's coordinates (Illinois)
        lambda p: p.assign(LAT=p["LAT"] * 10),  # a decimal point lost
    ],
    ids=["swapped", "sign-lost", "other-state", "scaled"],
)
def test_forest_plots_far_from_their_state_are_refused_naming_them(edit):
    """A plot placed outside its state was in no parcel's radius: the parcels near it fell back to the
    state's ratio (46.7 t/ac instead of an inverse-distance 12), no error."""
    rows, _, _ = plot_densities(*without_plot_105(), missing="error")
    moved = edit(rows)
    forest_cn = rows.loc[rows["is_forest_plot"], "CN"].iloc[0]
    with pytest.raises(FIADataError, match=rf"PLOT\.csv: .*farther than 10 km from every county .*{forest_cn}"):
        refuse_plots_outside_the_state(moved, _state(), "PLOT.csv")


def test_forest_plots_fuzzed_near_or_across_the_state_line_are_used():
    rows, _, _ = plot_densities(*without_plot_105(), missing="error")
    refuse_plots_outside_the_state(rows, _state(), "PLOT.csv")
    # FIA perturbs public coordinates by up to about a mile: a plot 1.6 km past the state line stays
    east = rows["LON"].max()
    refuse_plots_outside_the_state(rows, _state((-97.4, 39.2, east - 0.018, 39.5)), "PLOT.csv")
    nonforest = rows.assign(LON=np.where(rows["is_forest_plot"], rows["LON"], 50.0))  # not used: no matter
    refuse_plots_outside_the_state(nonforest, _state(), "PLOT.csv")
    # a longitude past 180° (continuous across the antimeridian) is its place east of −180°
    assert refuse_plots_outside_the_state(rows.assign(LON=rows["LON"] + 360), _state(), "PLOT.csv") is None
    # a county layer of some counties only: the plots of the others are not judged
    elsewhere = rows.assign(COUNTYCD=29, LON=-rows["LON"])
    refuse_plots_outside_the_state(elsewhere, _state(), "PLOT.csv")
