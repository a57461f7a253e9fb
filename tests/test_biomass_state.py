"""The state's county summary and map: stocks and flows apart, disagreement and quality by hand."""

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shapely

from tilewise.biomass.state import SUMMED, biomass_figure, county_summary


def parcels():
    rows = {column: [1.0, 3.0, 5.0] for column in SUMMED}
    rows |= {
        "county_fips": ["99001", "99001", "99003"],
        "parcel_area_acres": [10.0, 30.0, 20.0],
        "worldcover_forest_acres": [4.0, 0.0, 2.0],
        "forest_crop_conflict_acres": [1.0, 0.0, 0.0],
        "forest_area_acres": [3.0, 0.0, 2.0],
        "forest_method": ["idw", "idw", "regional_ratio"],
        "fia_plot_first_year": [2016, 2018, 2019],
        "fia_plot_last_year": [2021, 2020, 2022],
        "crop_year": 2023,
        "s2_clear_fraction": [1.0, 0.5, np.nan],  # NaN: no imagery, counts as nothing seen
        "s2_coverage_fraction": 1.0,
        "worldcover_coverage_fraction": 1.0,
        "cdl_coverage_fraction": 1.0,
        "fia_plots_within_radius_count": [3, 5, 0],
    }
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(3)]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=4326)


def test_county_summary_by_hand():
    s = county_summary(parcels()).set_index("county_fips")
    assert s.loc["99001", "forest_crop_conflict_fraction"] == pytest.approx(1 / 4)
    assert s.loc["99001", "s2_clear_fraction"] == pytest.approx((10 * 1.0 + 30 * 0.5) / 40)
    assert s.loc["99003", "s2_clear_fraction"] == 0.0
    assert (s.loc["99001", "fia_plot_first_year"], s.loc["99001", "fia_plot_last_year"]) == (2016, 2021)
    assert (
        s.loc["99001", "forest_regional_fallback_fraction"] == 0
        and s.loc["99003", "forest_regional_fallback_fraction"] == 1
    )
    assert s.loc["99001", "fia_plots_within_radius_min_count"] == 3
    assert s.loc["99001", "fia_plots_within_radius_median_count"] == 4
    assert s.loc["99001", "crop_production_dry_short_tons_per_year"] == 4.0  # 1 + 3: a flow, summed apart
    assert s.loc["99001", "forest_aboveground_dry_short_tons"] == 4.0  # a stock, in its own column


def test_the_map_has_a_stock_panel_and_a_flow_panel_with_county_outlines():
    outlines = gpd.GeoDataFrame(
        {"county_fips": ["99001", "99003"]}, geometry=[shapely.box(0, 0, 2, 1), shapely.box(2, 0, 3, 1)], crs=4326
    )
    fig = biomass_figure(parcels(), outlines, "demo")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    assert "stock" in panels[0].get_title() and "flow" in panels[1].get_title()
    for ax in panels:  # the parcels, then the two county boundaries drawn on top
        assert len(ax.collections) >= 2 and len(ax.collections[-1].get_paths()) == 2
    labels = [ax.get_ylabel() for ax in fig.axes if not ax.get_title()]  # the colour bars say their unit
    assert labels == ["dry short tons per acre", "dry short tons per acre per year"]
    plt.close(fig)
