"""Crop biomass from USDA CDL class areas (formulas and sources in docs/biomass-model.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

M2_PER_ACRE = 4046.8564224  # international acre


@dataclass(frozen=True)
class CropFactors:
    name: str
    yield_short_tons_per_acre: float  # at market moisture
    residue_to_grain_ratio: float  # wet residue per unit of yield
    residue_moisture_fraction: float
    harvestable_residue_fraction: float


# The first implementation's table (shared notes, biomass reference §3.4), kept for continuity.
CROP_TABLE: dict[int, CropFactors] = {
    1: CropFactors("Corn", 4.2, 1.2, 0.15, 0.40),
    2: CropFactors("Cotton", 0.8, 3.2, 0.10, 0.60),
    3: CropFactors("Rice", 3.8, 1.5, 0.20, 0.35),
    4: CropFactors("Sorghum", 3.1, 1.3, 0.15, 0.45),
    5: CropFactors("Soybeans", 1.6, 1.5, 0.12, 0.25),
    21: CropFactors("Barley", 2.1, 1.3, 0.14, 0.50),
    22: CropFactors("Durum Wheat", 1.8, 1.8, 0.14, 0.60),
    23: CropFactors("Spring Wheat", 1.9, 1.8, 0.14, 0.60),
    24: CropFactors("Winter Wheat", 2.2, 1.8, 0.14, 0.60),
    27: CropFactors("Rye", 1.7, 1.9, 0.14, 0.55),
    28: CropFactors("Oats", 2.3, 1.4, 0.14, 0.45),
    36: CropFactors("Alfalfa", 3.8, 0.1, 0.20, 0.80),
    37: CropFactors("Other Hay/Non Alfalfa", 2.5, 0.1, 0.20, 0.75),
    41: CropFactors("Sugarbeets", 28.5, 0.8, 0.75, 0.30),
}
OTHER_CROP = CropFactors("Other crop", 2.0, 1.0, 0.15, 0.40)
# CDL codes of cultivated crops. Everything else (61 fallow/idle, 63–65 forest, shrub, barren,
# 81–195 non-agricultural, water, developed, wetlands, grass/pasture) yields no crop biomass.
CROP_CODES = frozenset([*range(1, 61), *range(66, 81), *range(204, 255)])


def crop_factors(code: int) -> CropFactors | None:
    if code not in CROP_CODES:
        return None
    return CROP_TABLE.get(code, OTHER_CROP)


def crop_biomass(code: int, area_acres):
    """Yield, dry residue and harvestable residue (short tons) of `area_acres` (a number or an array)
    of CDL class `code`; None when the class is not a crop."""
    f = crop_factors(code)
    if f is None:
        return None
    yield_t = np.multiply(area_acres, f.yield_short_tons_per_acre)
    residue_dry_t = yield_t * f.residue_to_grain_ratio * (1 - f.residue_moisture_fraction)
    return {
        "crop_name": f.name,
        "crop_yield_short_tons": yield_t,
        "crop_residue_dry_short_tons": residue_dry_t,
        "crop_harvestable_residue_short_tons": residue_dry_t * f.harvestable_residue_fraction,
        "factors_from_table": code in CROP_TABLE,
    }


DETAIL_COLUMNS = [
    "row",
    "parcel_id",
    "cdl_code",
    "crop_name",
    "area_acres",
    "crop_yield_short_tons",
    "crop_residue_dry_short_tons",
    "crop_harvestable_residue_short_tons",
    "factors_from_table",
]


def crop_detail(class_areas: pd.DataFrame, parcel_ids: np.ndarray) -> pd.DataFrame:
    """One row per parcel and crop from CDL class areas (`row`, `cls`, `m2`: parcel position, CDL
    code, area in m²); classes that are not crops are left out."""
    parts = []
    for code, part in class_areas.groupby("cls"):
        acres = part["m2"].to_numpy() / M2_PER_ACRE
        crop = crop_biomass(int(code), acres)
        if crop is None:
            continue
        rows = part["row"].to_numpy()
        parts.append(
            pd.DataFrame(
                {"row": rows, "parcel_id": parcel_ids[rows], "cdl_code": int(code), "area_acres": acres, **crop}
            )
        )
    return pd.concat(parts, ignore_index=True)[DETAIL_COLUMNS] if parts else pd.DataFrame(columns=DETAIL_COLUMNS)
