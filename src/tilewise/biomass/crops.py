"""Crop biomass from USDA CDL class areas (formulas and sources in docs/biomass-model.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

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


def crop_biomass(code: int, area_acres: float) -> dict | None:
    """Yield, dry residue and harvestable residue (short tons) of `area_acres` of CDL class `code`."""
    f = crop_factors(code)
    if f is None:
        return None
    yield_t = area_acres * f.yield_short_tons_per_acre
    residue_dry_t = yield_t * f.residue_to_grain_ratio * (1 - f.residue_moisture_fraction)
    return {
        "crop_name": f.name,
        "crop_yield_short_tons": yield_t,
        "crop_residue_dry_short_tons": residue_dry_t,
        "crop_harvestable_residue_short_tons": residue_dry_t * f.harvestable_residue_fraction,
        "factors_from_table": code in CROP_TABLE,
    }
