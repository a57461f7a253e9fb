"""The crop tables shipped with tilewise (src/tilewise/biomass/data/, sources in its README.md): the
one module that reads them.

    cdl_legend.csv          every assigned CDL code: name, category, crop area?, a valid observation?
    cdl_double_crops.csv    the double-crop codes and their two crops
    crop_parameters.csv     per crop: NASS data item, lb per unit, standard moisture, residue ratio,
                            removal fraction, sources and status
    nass_national_yields.csv  national yields in Quick Stats export format (read by quickstats.py)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

DATA = Path(__file__).with_name("data")
NATIONAL_YIELDS = DATA / "nass_national_yields.csv"


@cache
def legend() -> pd.DataFrame:
    """Indexed by `cdl_code`: cdl_name, category, is_crop_area, is_valid_observation (booleans)."""
    table = pd.read_csv(DATA / "cdl_legend.csv", index_col="cdl_code")
    return table.astype({"is_crop_area": bool, "is_valid_observation": bool})


@cache
def double_crops() -> pd.DataFrame:
    """Indexed by `cdl_code`: first_crop_code, second_crop_code (two harvests in one year)."""
    return pd.read_csv(DATA / "cdl_double_crops.csv", index_col="cdl_code")


@cache
def crop_parameters() -> pd.DataFrame:
    """Indexed by `crop_code` (a single-crop CDL code); empty numbers are NaN (not sourced)."""
    return pd.read_csv(DATA / "crop_parameters.csv", index_col="crop_code", keep_default_na=False, na_values=[""])
