"""The state's county summary and map: stocks and flows apart, disagreement and quality by hand."""

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shapely

from tilewise.biomass.state import SUMMED, biomass_figure, county_summary, parcel_image


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
    per_acre = [np.array([1.0, 3.0, 5.0]) / [10.0, 30.0, 20.0], np.array([2.0, 6.0, 10.0]) / [10.0, 30.0, 20.0]]
    for ax, want in zip(panels, per_acre, strict=True):  # the parcels as an image, the county boundaries on top
        assert len(ax.images) == 1 and len(ax.collections[-1].get_paths()) == 2
        image = ax.images[0].get_array()
        width = image.shape[1]
        for i, value in enumerate(want):  # the middle of parcel i (a 1° box) holds its value per acre
            assert image[image.shape[0] // 2, int((i + 0.5) * width / 3)] == pytest.approx(value)
    labels = [ax.get_ylabel() for ax in fig.axes if not ax.get_title()]  # the colour bars say their unit
    assert labels == ["dry short tons per acre", "dry short tons per acre per year"]
    plt.close(fig)


def test_parcels_smaller_than_a_map_cell_are_painted_as_their_area_weighted_mean():
    # 4 tiny parcels in one cell of a 2-cell-wide image, and one large parcel filling the other cell
    tiny = [shapely.box(x, y, x + 0.1, y + 0.1) for x, y in [(0.1, 0.1), (0.5, 0.5), (0.2, 0.7), (0.7, 0.2)]]
    geoms = gpd.GeoSeries([*tiny, shapely.box(1, 0, 2, 1)], crs=4326)
    values = np.array([1.0, 2.0, 3.0, 4.0, 7.0])
    image, extent = parcel_image(geoms, values, width_px=2)
    assert image.shape == (1, 2) and extent == pytest.approx((0.1, 2.0, 0.0, 1.0))
    assert image[0, 0] == pytest.approx(2.5)  # equal areas: the plain mean of 1, 2, 3, 4
    assert image[0, 1] == pytest.approx(7.0)
    nan_value = parcel_image(gpd.GeoSeries([shapely.box(0, 0, 1, 1)]), np.array([np.nan]), width_px=4)[0]
    assert np.isnan(nan_value).all()  # no value, nothing painted
    assert np.isnan(parcel_image(gpd.GeoSeries([], crs=4326), np.array([]))[0]).all()  # no parcel: an empty panel
