"""Quality of a parcel's estimate (docs/biomass-model.md §6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tilewise.biomass.crops import M2_PER_ACRE


def confidence(out: pd.DataFrame, radius_km: float) -> np.ndarray:
    """Mean of four coverage terms in [0, 1] (docs/biomass-model.md §6)."""
    area = out["parcel_area_acres"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        landcover = np.clip(out["worldcover_valid_area_acres"].to_numpy() / area, 0, 1)
        s2_area_acres = (
            out["s2_valid_pixels_count"].astype(float).fillna(0).to_numpy()
            * out["s2_pixel_area_m2"].astype(float).fillna(0).to_numpy()
            / M2_PER_ACRE
        )
        imagery = np.clip(s2_area_acres / area, 0, 1)
        crops_term = np.clip(out["cdl_valid_area_acres"].to_numpy() / area, 0, 1)
    plots = out["fia_plots_within_radius_count"].to_numpy()
    forest_term = np.where(
        out["forest_area_acres"].to_numpy() <= 0,
        1.0,
        np.where(out["forest_method"].to_numpy() == "idw", np.minimum(plots / 3.0, 1.0), 0.25),
    )
    terms = np.vstack([landcover, imagery, crops_term, forest_term])
    return np.nan_to_num(terms, nan=0.0).mean(axis=0)
