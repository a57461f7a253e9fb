"""Crop yields as data: Quick Stats exports, dry matter, double crops, the shipped tables (docs/biomass-model.md §4)."""

import csv
import re

import numpy as np
import pandas as pd
import pytest

from tilewise.biomass import crop_tables, crops, quickstats
from tilewise.shared.errors import TilewiseError

from conftest import REPO

CORN = "CORN, GRAIN - YIELD, MEASURED IN BU / ACRE"
SOY = "SOYBEANS - YIELD, MEASURED IN BU / ACRE"
WINTER_WHEAT = "WHEAT, WINTER - YIELD, MEASURED IN BU / ACRE"


def export(path, rows, columns=quickstats.COLUMNS):
    """A Quick Stats CSV export: every field quoted, as the site writes it."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path


def row(item, value, year=2023, level="STATE", ansi="20", period="YEAR", program="SURVEY", domain="TOTAL"):
    return {
        "Program": program,
        "Year": str(year),
        "Period": period,
        "Geo Level": level,
        "State": "KANSAS" if level == "STATE" else "US TOTAL",
        "State ANSI": ansi if level == "STATE" else "",
        "Data Item": item,
        "Domain": domain,
        "Value": value,
    }


@pytest.fixture
def kansas(tmp_path):
    return export(
        tmp_path / "ks.csv",
        [
            row(CORN, "137"),
            row(CORN, "140", period="YEAR - AUG FORECAST"),  # a forecast: left out
            row(CORN, "1,500", domain="IRRIGATION"),  # a domain breakdown: left out
            row(CORN, "99", ansi="31"),  # Nebraska in the same export: left out
            row(SOY, "(D)"),  # withheld: falls back to the national value
            row("RICE - YIELD, MEASURED IN LB / ACRE", "7,100"),
        ],
    )


def yields_of(state_file, year=2023):
    files = [str(f) for f in (state_file, crop_tables.NATIONAL_YIELDS) if f]
    return crops.Yields(year, crops.yields_table(state_file, crop_tables.NATIONAL_YIELDS, "20", year), files)


def test_quickstats_values_codes_and_rows_kept(kansas):
    assert quickstats.parse_value("7,649") == 7649.0 and quickstats.parse_value(" 177.3 ") == 177.3
    assert all(quickstats.parse_value(c) is None for c in ("(D)", "(Z)", "(NA)", "(X)", "(S)"))
    table = quickstats.read_yields(kansas, "STATE", "20")
    assert table["raw_value"].tolist() == ["137", "(D)", "7,100"]
    assert table["value"].iloc[0] == 137.0 and np.isnan(table["value"].iloc[1]) and table["line"].tolist() == [2, 6, 7]


def test_quickstats_bad_exports_fail_naming_file_and_line(tmp_path, kansas):
    with pytest.raises(TilewiseError, match=r"bad\.csv: not a NASS Quick Stats CSV export: columns \['Program'"):
        quickstats.read_yields(export(tmp_path / "bad.csv", [], ["Year", "Value"]), "STATE", "20")
    twice = export(tmp_path / "twice.csv", [row(CORN, "137"), row(CORN, "138")])
    with pytest.raises(TilewiseError, match=r"twice\.csv: lines \[2, 3\] give 'CORN, GRAIN"):
        quickstats.read_yields(twice, "STATE", "20")
    text = export(tmp_path / "text.csv", [row(CORN, "about 137")])
    with pytest.raises(TilewiseError, match=r"text\.csv:2: Year '2023' or Value 'about 137'"):
        quickstats.read_yields(text, "STATE", "20")
    with pytest.raises(TilewiseError, match="no annual STATE survey rows .* for State ANSI 17"):
        quickstats.read_yields(kansas, "STATE", "17")  # the export of another state
    county = export(tmp_path / "county.csv", [row(CORN, "150", level="COUNTY")])
    with pytest.raises(TilewiseError, match="export the state level"):
        quickstats.read_yields(county, "STATE", "20")


def test_shipped_national_table_is_a_quickstats_export():
    header = crop_tables.NATIONAL_YIELDS.read_text().splitlines()[0]
    assert header == ",".join(f'"{c}"' for c in quickstats.COLUMNS)
    table = quickstats.read_yields(crop_tables.NATIONAL_YIELDS, "NATIONAL")
    assert table.set_index(["data_item", "year"]).loc[(CORN, 2023), "value"] == 177.3
    sources = pd.read_csv(crop_tables.DATA / "nass_national_yields_sources.csv", dtype=str)
    shipped = sources[sources["status"].isin(["confirmed", "derived"])]
    # every value shipped has a source, and nothing marked UNCONFIRMED is shipped
    assert len(shipped) == len(table)
    pairs = set(zip(shipped["Data Item"], shipped["Year"].astype(int), strict=True))
    assert pairs == set(zip(table["data_item"], table["year"], strict=True))


def test_state_table_first_then_national_then_error(kansas):
    y = yields_of(kansas)
    assert y.lookup(CORN) == (137.0, "state")
    assert y.lookup(SOY) == (50.6, "national")  # the state's (D): the national 2023 value
    assert y.lookup(WINTER_WHEAT) == (50.6, "national")  # not in the state's export
    with pytest.raises(TilewiseError, match=r"no 2023 yield for 'RYE - YIELD.*ks\.csv or .*nass_national_yields\.csv"):
        y.lookup("RYE - YIELD, MEASURED IN BU / ACRE")
    state_only = crops.Yields(2023, y.table[y.table["source"] == "state"], [str(kansas)])
    with pytest.raises(TilewiseError, match=r"ks\.csv:6 gives '\(D\)'"):  # withheld, and no other table
        state_only.lookup(SOY)


def test_dry_matter_by_hand():
    # corn 177.3 bu × 56 lb × (1 − 0.155) / 2000 = 4.1949 dry short tons per acre
    assert crops.dry_short_tons_per_acre(177.3, 56, 0.155) == pytest.approx(4.194918)
    # soybeans 50.6 bu × 60 lb × 0.87 / 2000 = 1.32066
    assert crops.dry_short_tons_per_acre(50.6, 60, 0.13) == pytest.approx(1.32066)


def detail_of(codes_and_acres, yields, parcel=0):
    areas = pd.DataFrame(
        {
            "row": parcel,
            "cls": [c for c, _ in codes_and_acres],
            "m2": [a * crops.M2_PER_ACRE for _, a in codes_and_acres],
        }
    )
    return areas, crops.crop_detail(areas, np.array(["P1"]), yields)


def test_corn_production_residue_and_removable_by_hand(kansas):
    areas, detail = detail_of([(1, 10.0)], yields_of(kansas))
    [r] = detail.to_dict("records")
    dry = 137 * 56 * (1 - 0.155) / 2000  # 3.24149 short tons per acre
    assert r["yield_source"] == "state" and r["yield_dry_short_tons_per_acre"] == pytest.approx(dry)
    assert r["production_dry_short_tons_per_year"] == pytest.approx(10 * dry)
    assert r["residue_dry_short_tons_per_year"] == pytest.approx(10 * dry * 1.0)  # R 1:1 (Graham et al. 2007)
    assert r["residue_removable_dry_short_tons_per_year"] == pytest.approx(10 * dry * 0.30)


def test_double_crop_gives_both_crops_on_the_full_area_counted_once(kansas):
    areas, detail = detail_of([(26, 2.0), (1, 1.0)], yields_of(kansas))
    dbl = detail[detail["cdl_code"] == 26].set_index("component")
    assert dbl.loc["first", "crop_code"] == 24 and dbl.loc["second", "crop_code"] == 5
    ww, sb = 2 * 50.6 * 60 * 0.865 / 2000, 2 * 50.6 * 60 * 0.87 / 2000
    assert dbl.loc["first", "production_dry_short_tons_per_year"] == pytest.approx(ww)
    assert dbl.loc["second", "production_dry_short_tons_per_year"] == pytest.approx(sb)
    assert dbl.loc["first", "residue_dry_short_tons_per_year"] == pytest.approx(
        ww * (1 - 0.45) / 0.45, rel=1e-4
    )  # Dai et al. 2016: HI 0.45
    assert np.isnan(dbl.loc["first", "residue_removable_dry_short_tons_per_year"])  # no sourced fraction
    assert np.isnan(dbl.loc["second", "residue_dry_short_tons_per_year"])  # soybean residue unconfirmed
    cols = crops.parcel_columns(areas, detail, 1, 2023)
    corn = 137 * 56 * 0.845 / 2000
    assert cols["cdl_crop_area_acres"][0] == pytest.approx(3.0)  # 2 + 1, the double crop once
    assert cols["crop_production_dry_short_tons_per_year"][0] == pytest.approx(ww + sb + corn)
    assert cols["crop_residue_dry_short_tons_per_year"][0] == pytest.approx(ww * (1 - 0.45) / 0.45 + corn, rel=1e-4)
    assert cols["crop_residue_unestimated_acres"][0] == pytest.approx(2.0)  # the soybean component
    assert cols["crop_residue_removable_unestimated_acres"][0] == pytest.approx(4.0)  # both components
    assert cols["crop_yield_state_table_acres"][0] == pytest.approx(1.0)
    assert cols["crop_yield_national_table_acres"][0] == pytest.approx(4.0)


def test_the_double_crop_list_is_exact_not_a_range():
    doubles = crop_tables.double_crops()
    assert sorted(doubles.index) == [26, 225, 226, 228, *range(230, 242), 254]
    legend = crop_tables.legend()
    assert set(legend.index[legend["category"] == "double_crop"]) == set(doubles.index)
    for single in (227, 229, 242, 243, 250):  # lettuce, pumpkins, blueberries, cabbage, cranberries
        assert single not in doubles.index and legend.loc[single, "is_crop_area"]
    components = set(doubles["first_crop_code"]) | set(doubles["second_crop_code"])
    assert components <= set(legend.index[legend["is_crop_area"] & (legend["category"] != "double_crop")])


def test_noncrop_and_nodata_codes_are_not_crop_area(kansas):
    codes = [0, 81, 82, 83, 87, 88, 92, 111, 112, 121, 122, 123, 124, 131, 141, 142, 143, 152, 176, 190, 195, 62, 63]
    areas, detail = detail_of([(c, 1.0) for c in codes], yields_of(kansas))
    assert detail.empty
    cols = crops.parcel_columns(areas, detail, 1, 2023)
    assert cols["cdl_crop_area_acres"][0] == 0 and cols["cdl_forest_acres"][0] == pytest.approx(4.0)  # 141–143, 63
    assert cols["cdl_valid_area_acres"][0] == pytest.approx(len(codes) - 2)  # 0 background and 81 clouds


def test_fallow_is_zero_and_unparameterized_crops_are_counted_unestimated(kansas):
    areas, detail = detail_of([(61, 3.0), (205, 2.0), (43, 1.0), (36, 4.0)], yields_of(kansas))
    by = detail.set_index("cdl_code")
    assert by.loc[61, "production_dry_short_tons_per_year"] == 0.0 and by.loc[61, "note"] == "no harvest"
    assert np.isnan(by.loc[205, "production_dry_short_tons_per_year"]) and "triticale" in by.loc[205, "note"]
    assert "no production parameters" in by.loc[43, "note"]  # potatoes
    assert "moisture UNCONFIRMED" in by.loc[36, "note"]  # alfalfa hay: no made-up dry matter
    cols = crops.parcel_columns(areas, detail, 1, 2023)
    assert cols["crop_production_unestimated_acres"][0] == pytest.approx(7.0)
    assert cols["crop_production_dry_short_tons_per_year"][0] == 0.0


def test_cdl_year_must_match_the_file_names():
    crops.check_cdl_year(["a/2021_30m_cdls_-106095_1807575_15000.tif", "CDL_2021_20.tif", "mosaic.tif"], 2021)
    with pytest.raises(TilewiseError, match=r"2023_30m_cdls\.tif: the file name says \[2023\] .* cdl_year is 2021"):
        crops.check_cdl_year(["x/2023_30m_cdls.tif"], 2021)


def test_crop_parameters_are_sourced_and_consistent():
    params, legend = crop_tables.crop_parameters(), crop_tables.legend()
    doc = (REPO / "docs" / "biomass-model.md").read_text()
    for code, p in params.iterrows():
        assert legend.loc[code, "is_crop_area"] and legend.loc[code, "category"] != "double_crop", code
        assert isinstance(p["status"], str) and isinstance(p["notes"], str), code
        if isinstance(p["nass_data_item"], str):
            assert p["nass_data_item"].endswith(f"MEASURED IN {p['yield_unit']}"), code
            assert p["lb_per_unit"] > 0
        for number in ("standard_moisture_fraction", "residue_removal_fraction"):
            assert np.isnan(p[number]) or 0 <= p[number] < 1, (code, number)
        # a residue ratio or removal fraction is used only with its source, and every source id is in the doc
        sourced = "UNCONFIRMED" not in p["status"]
        assert sourced or np.isnan(p["residue_to_grain_dry_ratio"]) or "residue" not in p["status"], code
        for source in str(p["source_ids"]).split(";") if isinstance(p["source_ids"], str) else []:
            assert f"**{source}**" in doc, f"source {source} of crop {code} is not in docs/biomass-model.md"


def test_unconfirmed_values_stay_off_the_default_path():
    params = crop_tables.crop_parameters()
    for code, p in params.iterrows():
        if "residue UNCONFIRMED" in p["status"] or "residue not sourced" in p["status"]:
            assert np.isnan(p["residue_to_grain_dry_ratio"]), code
        if "moisture UNCONFIRMED" in p["status"]:
            assert np.isnan(p["standard_moisture_fraction"]), code
        if not np.isnan(p["residue_removal_fraction"]):
            assert re.search(r"GRAHAM2007", p["source_ids"]), code


def test_a_state_export_without_a_row_of_the_crop_year_is_refused(kansas):
    """A state moved to another CDL year with the old export kept: every crop fell back to the national
    yield without a word."""
    with pytest.raises(
        TilewiseError,
        match=r"ks\.csv: the state's Quick Stats export holds no 2022 yield of state 20 \(it holds 2023\)",
    ):
        yields_of(kansas, year=2022)
    assert yields_of(kansas).lookup(CORN) == (137.0, "state")


@pytest.mark.parametrize(
    "codes, refused",
    [
        ({24: 0.5, 82: 0.5}, True),  # NLCD: developed high intensity and cultivated crops
        ({11: 0.2, 41: 0.3, 71: 0.3, 82: 0.2}, True),
        ({24: 0.6, 176: 0.2, 121: 0.2}, False),  # CDL: winter wheat beside grassland and a road
        ({1: 0.5, 5: 0.5}, False),
        ({24: 1.0}, True),
    ],
)
def test_cdl_class_areas_of_nlcd_codes_only_are_refused(codes, refused):
    """Every NLCD code is a CDL code: an NLCD raster given as the CDL made a city block winter wheat."""
    table = pd.DataFrame({"row": 0, "cls": list(codes), "m2": [share * 300_000 for share in codes.values()]})
    if refused:
        with pytest.raises(TilewiseError, match=r"nlcd.tif: over the parcels the CDL holds only codes NLCD also uses"):
            crops.check_cdl_codes(table, ["nlcd.tif"])
    else:
        crops.check_cdl_codes(table, ["cdl.tif"])
    crops.check_cdl_codes(table.assign(m2=table["m2"] / 100), ["small.tif"])  # too little to judge


@pytest.mark.parametrize(
    "codes, refused",
    [
        ({1: 0.5, 2: 0.5}, True),  # NASS's Cultivated Layer: 1 non-cultivated, 2 cultivated
        ({2: 0.9, 1: 0.1}, True),
        ({0: 0.2, 1: 0.3, 2: 0.5}, True),  # with its background (0) inside the parcels
        ({1: 0.4, 2: 0.4, 176: 0.2}, False),  # CDL: corn and cotton beside grassland
        ({1: 1.0}, False),  # one corn field: nothing to tell it from
    ],
)
def test_cdl_class_areas_of_corn_and_cotton_only_are_refused(codes, refused):
    """NASS's Cultivated Layer (1 non-cultivated, 2 cultivated) given as the CDL passed CDL's legend:
    every non-cultivated cell was corn and every cultivated one cotton."""
    table = pd.DataFrame({"row": 0, "cls": list(codes), "m2": [share * 300_000 for share in codes.values()]})
    if refused:
        match = r"layer.tif: over the parcels the CDL holds only corn \(1\) and cotton"
        with pytest.raises(TilewiseError, match=match):
            crops.check_cdl_codes(table, ["layer.tif"])
    else:
        crops.check_cdl_codes(table, ["cdl.tif"])
    crops.check_cdl_codes(table.assign(m2=table["m2"] / 100), ["small.tif"])  # too little to judge


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-137", "137,5", "1,37", "12,34,567", "1e3", "1_000", "0", "0.0"]
)
def test_a_yield_not_written_as_nass_writes_a_yield_fails_naming_the_line(tmp_path, value):
    # 'nan' read as a NASS code fell back to the national value; '137,5' (a decimal comma) read as 1375
    path = export(tmp_path / "ks.csv", [row(SOY, "40"), row(CORN, value)])
    with pytest.raises(TilewiseError, match=rf"ks\.csv:3: .*Value {re.escape(repr(value))}"):
        quickstats.read_yields(path, "STATE", "20")


@pytest.mark.parametrize(
    ("value", "number"), [("1,370.5", 1370.5), (" 177.3 ", 177.3), ("7,649", 7649.0), ("0.5", 0.5)]
)
def test_a_yield_as_nass_writes_it_is_read(tmp_path, value, number):
    path = export(tmp_path / "ks.csv", [row(CORN, value)])
    assert quickstats.read_yields(path, "STATE", "20")["value"].tolist() == [number]


@pytest.mark.parametrize(
    "edit",
    [
        {"Program": "Survey"},
        {"Period": "year"},
        {"Period": " YEAR"},
        {"Geo Level": "State"},
        {"Domain": "Total"},
        {"Data Item": CORN + " "},
        {"Data Item": CORN.lower()},
        {"Data Item": CORN.replace(" - ", "  - ")},
    ],
)
def test_a_row_typed_by_hand_in_another_case_or_spacing_is_the_states_row(tmp_path, edit):
    # the row the 'no yield' error asks for, typed by hand: it was left out and the national value used
    path = export(tmp_path / "ks.csv", [row(SOY, "40"), {**row(CORN, "137"), **edit}])
    assert yields_of(path).lookup(CORN) == (137.0, "state")


@pytest.mark.parametrize("blank", ["Program", "Year", "Period", "Geo Level", "State ANSI", "Data Item", "Domain"])
def test_a_row_with_a_field_blank_that_an_export_fills_fails_naming_the_line(tmp_path, blank):
    path = export(tmp_path / "ks.csv", [row(SOY, "40"), {**row(CORN, "137"), blank: ""}])
    with pytest.raises(TilewiseError, match=rf"ks\.csv:3: {blank} is empty"):
        quickstats.read_yields(path, "STATE", "20")


@pytest.mark.parametrize("value", ["", "  ", "\t"])
def test_a_yield_row_with_its_value_blank_fails_naming_the_line(tmp_path, value):
    # read as a missing value: the national yield was used without a sign
    path = export(tmp_path / "ks.csv", [row(SOY, "40"), row(CORN, value)])
    with pytest.raises(TilewiseError, match=r"ks\.csv:3: Value is empty"):
        quickstats.read_yields(path, "STATE", "20")


@pytest.mark.parametrize("ansi", ["20.0", "020", "KS", "KANSAS"])
def test_a_state_row_whose_state_ansi_is_not_a_fips_code_fails_naming_the_line(tmp_path, ansi):
    # a hand-typed row's code read as another state's: left out, and the national value used
    path = export(tmp_path / "ks.csv", [row(SOY, "40"), row(CORN, "137", ansi=ansi)])
    with pytest.raises(TilewiseError, match=rf"ks\.csv:3: State ANSI {re.escape(repr(ansi))} is not"):
        quickstats.read_yields(path, "STATE", "20")


def test_rows_other_than_yields_are_not_read(tmp_path):
    # a broad export: net income can be negative, production has its own numbers; only yields are read
    income = row("INCOME, NET CASH FARM, OF OPERATIONS - NET INCOME, MEASURED IN $", "-1,234")
    path = export(tmp_path / "ks.csv", [income, row("CORN, GRAIN - PRODUCTION, MEASURED IN BU", "0"), row(CORN, "137")])
    assert quickstats.read_yields(path, "STATE", "20")["data_item"].tolist() == [CORN]


def test_nass_other_states_row_without_a_state_ansi_is_left_out(tmp_path):
    other = {**row(CORN, "150", ansi=""), "State": "OTHER STATES"}  # NASS's aggregate: no ANSI code
    path = export(tmp_path / "us.csv", [other, row(CORN, "137")])
    assert quickstats.read_yields(path, "STATE", "20")["value"].tolist() == [137.0]


def test_a_state_ansi_without_its_leading_zero_is_the_state(tmp_path):
    path = export(tmp_path / "ak.csv", [row(CORN, "137", ansi="2")])  # a spreadsheet drops 02's zero
    assert quickstats.read_yields(path, "STATE", "02")["value"].tolist() == [137.0]
