"""Annual crop production and residue from USDA CDL class areas and NASS yields (docs/biomass-model.md §4).

Flows, not stocks: every quantity is dry matter in short tons per year of the crop year. Per CDL code:

    yield_dry [short t/ac] = NASS yield [unit/ac] × lb per unit × (1 − standard moisture) / 2000
    production = crop acres × yield_dry;  residue = production × R;  removable = residue × f

Double-crop codes give both crops on the full pixel area (two harvests in one year); the area itself
counts once. A quantity whose factor is not sourced is missing (NaN), never a default: its acres are
counted as unestimated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tilewise.biomass import crop_tables, quickstats
from tilewise.shared.errors import TilewiseError

M2_PER_ACRE = 4046.8564224  # international acre
LB_PER_SHORT_TON = 2000.0
YIELD_COLUMNS = ["source", "data_item", "year", "value", "raw_value", "file", "line"]
FLOWS = {  # detail column → parcel column
    "production_dry_short_tons_per_year": "crop_production_dry_short_tons_per_year",
    "residue_dry_short_tons_per_year": "crop_residue_dry_short_tons_per_year",
    "residue_removable_dry_short_tons_per_year": "crop_residue_removable_dry_short_tons_per_year",
}
UNESTIMATED = {  # flow → parcel column of the component acres it is missing for
    "production_dry_short_tons_per_year": "crop_production_unestimated_acres",
    "residue_dry_short_tons_per_year": "crop_residue_unestimated_acres",
    "residue_removable_dry_short_tons_per_year": "crop_residue_removable_unestimated_acres",
}
DETAIL_COLUMNS = [
    "row",
    "parcel_id",
    "cdl_code",
    "component",
    "crop_code",
    "crop_name",
    "area_acres",
    "yield_source",
    "yield_dry_short_tons_per_acre",
    *FLOWS,
    "note",
]


# NLCD's class codes (MRLC's legend, 11 open water … 95 emergent herbaceous wetlands). Each is also a CDL
# code (11 tobacco, 21–24 barley to winter wheat, 82 developed in older years), so an NLCD raster given
# as the CDL passes CDL's legend and its name may carry the year; but the CDL over a county's parcels
# always shows classes NLCD has not (crops 1–6 and 25–77, grassland 176, developed 121–124, forest 141–143).
NLCD_CODES = frozenset({11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 51, 52, 71, 72, 73, 74, 81, 82, 90, 95})
NLCD_JUDGED_FROM_M2 = 200_000  # 20 ha of cells inside the parcels: enough for a county's roads and fields


# NASS's Cultivated Layer codes 1 non-cultivated and 2 cultivated: CDL's corn and cotton. A county's
# parcels always hold more than those two crops (roads, farmsteads, grass), so both alone are that layer.
CULTIVATED_LAYER_CODES = frozenset({1, 2})


def check_cdl_codes(class_areas: pd.DataFrame, files) -> None:
    """Refuse CDL class areas (`row`, `cls`, `m2` over the parcels, 20 ha or more) of another NASS or
    MRLC product that passes CDL's legend: NLCD's codes only, or corn and cotton only (the Cultivated Layer)."""
    held = class_areas[(class_areas["m2"] > 0) & (class_areas["cls"] != 0)]  # 0: CDL's background
    codes = {int(c) for c in held["cls"]}
    if held["m2"].sum() < NLCD_JUDGED_FROM_M2 or not codes:
        return
    if codes <= NLCD_CODES:
        raise TilewiseError(
            f"{', '.join(map(str, files))}: over the parcels the CDL holds only codes NLCD also uses "
            f"({', '.join(map(str, sorted(codes)))}) and none of CDL's own crops or land covers: is it NLCD or "
            "another land-cover product? Give the Cropland Data Layer of the crop year (config: states.<state>.cdl)"
        )
    if codes == CULTIVATED_LAYER_CODES:
        raise TilewiseError(
            f"{', '.join(map(str, files))}: over the parcels the CDL holds only corn (1) and cotton (2), no road, "
            "grass or other crop: is it NASS's Cultivated Layer (1 non-cultivated, 2 cultivated)? Give the "
            "Cropland Data Layer of the crop year ({year}_30m_cdls.tif; config: states.<state>.cdl)"
        )


def check_cdl_year(paths, year: int) -> None:
    """A CDL file whose name carries a year (NASS names them 2023_30m_cdls.tif, CDL_2023_17.tif) must be
    of the configured crop year: yields of one year on crops of another are wrong without a sign."""
    for path in paths:
        named = {int(y) for y in re.findall(r"(?<![0-9])((?:19|20)[0-9]{2})(?![0-9])", Path(path).name)}
        if named and year not in named:
            raise TilewiseError(
                f"{path}: the file name says {sorted(named)} but the state's cdl_year is {year}; "
                "set cdl_year to the CDL's year (the NASS yields of that year are used)"
            )


def yields_table(state_file: str | None, national_file: str | Path, state_fips: str, year: int) -> pd.DataFrame:
    """The yields of `year` from the state's Quick Stats export (if any) and the national one, as the
    index stores them (`YIELD_COLUMNS`; `source` is `state` or `national`)."""
    parts = []
    for source, path, level, ansi in (
        ("state", state_file, "STATE", state_fips),
        ("national", national_file, "NATIONAL", None),
    ):
        if path is None:
            continue
        table = quickstats.read_yields(path, level, ansi)
        of_year = table[table["year"] == year]
        if source == "state" and of_year.empty:  # configured on purpose: not silently the national table
            held = sorted(table["year"].unique())
            raise TilewiseError(
                f"{path}: the state's Quick Stats export holds no {year} yield of state {state_fips} (it holds "
                f"{', '.join(map(str, held)) or 'none'}); export the crop year {year} (the CDL year), or drop "
                "nass_yields from the state's config to use the national yields"
            )
        parts.append(of_year.assign(source=source, file=str(path)))
    return pd.concat(parts, ignore_index=True)[YIELD_COLUMNS]


@dataclass(frozen=True)
class Yields:
    """One crop year's yields: the state table first, the national table as the documented fallback."""

    year: int
    table: pd.DataFrame  # YIELD_COLUMNS
    files: list[str]  # the Quick Stats exports, state first

    def lookup(self, data_item: str) -> tuple[float, str]:
        """(value in the data item's unit, source); no value in either table is an error."""
        rows = self.table[self.table["data_item"] == data_item]
        for source in ("state", "national"):
            found = rows.loc[(rows["source"] == source) & rows["value"].notna(), "value"]
            if len(found):
                return float(found.iloc[0]), source
        seen = "".join(f"; {r.file}:{r.line} gives {r.raw_value!r}" for r in rows.itertuples())
        raise TilewiseError(
            f"no {self.year} yield for {data_item!r} in {' or '.join(self.files)}{seen}; add its annual "
            "STATE row to the state's Quick Stats export (config: states.<state>.nass_yields)"
        )


def dry_short_tons_per_acre(yield_value, lb_per_unit, moisture_fraction):
    """Market-moisture yield in units per acre → oven-dry short tons per acre."""
    return np.asarray(yield_value) * lb_per_unit * (1.0 - moisture_fraction) / LB_PER_SHORT_TON


def components(codes, yields: Yields) -> pd.DataFrame:
    """Per crop-area CDL code in `codes`: one row per crop it holds (two for a double crop) with the
    dry yield, residue and removal factors per acre (NaN where not sourced) and a note saying why."""
    legend, doubles = crop_tables.legend(), crop_tables.double_crops()
    rows = []
    for code in sorted(c for c in codes if legend.loc[c, "is_crop_area"]):
        parts = (
            [("first", doubles.loc[code, "first_crop_code"]), ("second", doubles.loc[code, "second_crop_code"])]
            if code in doubles.index
            else [("single", code)]
        )
        for role, crop in parts:
            rows.append({"cdl_code": code, "component": role, "crop_code": int(crop), **_factors(int(crop), yields)})
    return pd.DataFrame(
        rows,
        columns=[
            "cdl_code",
            "component",
            "crop_code",
            "crop_name",
            "yield_source",
            "yield",
            "residue",
            "removal",
            "note",
        ],
    )


def _factors(crop: int, yields: Yields) -> dict:
    legend, params = crop_tables.legend(), crop_tables.crop_parameters()
    name = legend.loc[crop, "cdl_name"]
    nan = {"yield": np.nan, "residue": np.nan, "removal": np.nan, "yield_source": None}
    if legend.loc[crop, "category"] == "fallow_idle_cropland":
        return {**nan, "crop_name": name, "yield": 0.0, "residue": 0.0, "removal": 0.0, "note": "no harvest"}
    if crop not in params.index:
        return {**nan, "crop_name": name, "note": "no production parameters for this crop (crop area only)"}
    p = params.loc[crop]
    if pd.isna(p["nass_data_item"]) or pd.isna(p["standard_moisture_fraction"]):
        return {**nan, "crop_name": p["crop_name"], "note": f"{p['status']}: {p['notes']}"}
    value, source = yields.lookup(p["nass_data_item"])
    dry = float(dry_short_tons_per_acre(value, p["lb_per_unit"], p["standard_moisture_fraction"]))
    return {
        "crop_name": p["crop_name"],
        "yield_source": source,
        "yield": dry,
        "residue": dry * p["residue_to_grain_dry_ratio"],
        "removal": p["residue_removal_fraction"],
        "note": "" if p["status"] == "confirmed" else p["status"],
    }


def crop_detail(class_areas: pd.DataFrame, parcel_ids: np.ndarray, yields: Yields) -> pd.DataFrame:
    """One row per parcel, crop-area CDL code and crop from CDL class areas (`row`, `cls`, `m2`: parcel
    position, CDL code, area in m²); codes that are not crop area are left out."""
    legend = crop_tables.legend()
    crop_area = class_areas[legend.loc[class_areas["cls"], "is_crop_area"].to_numpy()]
    factors = components(crop_area["cls"].unique(), yields)
    detail = crop_area.merge(factors, left_on="cls", right_on="cdl_code")
    acres = detail["m2"].to_numpy() / M2_PER_ACRE
    detail = detail.assign(
        parcel_id=parcel_ids[detail["row"].to_numpy()],
        area_acres=acres,
        yield_dry_short_tons_per_acre=detail["yield"],
        production_dry_short_tons_per_year=acres * detail["yield"],
        residue_dry_short_tons_per_year=acres * detail["residue"],
        residue_removable_dry_short_tons_per_year=acres * detail["residue"] * detail["removal"],
    )
    return detail[DETAIL_COLUMNS].sort_values(["row", "cdl_code", "component"], ignore_index=True)


def parcel_columns(class_areas: pd.DataFrame, detail: pd.DataFrame, n: int, year: int) -> dict[str, np.ndarray]:
    """Per parcel (position 0..n-1): CDL areas by kind, the summed flows and their unestimated acres."""
    legend = crop_tables.legend()
    info = legend.loc[class_areas["cls"]]
    acres = class_areas["m2"].to_numpy() / M2_PER_ACRE
    rows = class_areas["row"].to_numpy()

    def area(mask) -> np.ndarray:
        return np.bincount(rows, np.where(mask, acres, 0.0), n)

    out = {
        "cdl_valid_area_acres": area(info["is_valid_observation"].to_numpy()),
        "cdl_crop_area_acres": area(info["is_crop_area"].to_numpy()),
        "cdl_forest_acres": area((info["category"] == "forest").to_numpy()),
        "crop_year": np.full(n, year),
    }
    d_rows = detail["row"].to_numpy()
    for flow, column in FLOWS.items():
        values = detail[flow].to_numpy(dtype=float)
        out[column] = np.bincount(d_rows, np.nan_to_num(values), n)
        out[UNESTIMATED[flow]] = np.bincount(d_rows, np.where(np.isnan(values), detail["area_acres"], 0.0), n)
    for source in ("state", "national"):
        out[f"crop_yield_{source}_table_acres"] = np.bincount(
            d_rows, np.where(detail["yield_source"] == source, detail["area_acres"], 0.0), n
        )
    return out
