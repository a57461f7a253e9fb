"""Measured quality of a parcel's estimate (docs/biomass-model.md §7): how much of the parcel each
product saw, and how much the FIA plots behind its forest density disagree."""

from __future__ import annotations

import numpy as np

from tilewise.biomass.crops import M2_PER_ACRE


def weighted_sd(x: np.ndarray, w: np.ndarray) -> float:
    """Unbiased weighted standard deviation for reliability weights (GNU Scientific Library,
    gsl_stats_wvariance): s² = V1 / (V1² − V2) · Σ wᵢ (xᵢ − x̄_w)², V1 = Σ w, V2 = Σ w². Equal weights
    give the usual n − 1 sample SD; fewer than two values give NaN."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    v1, v2 = w.sum(), (w * w).sum()
    den = v1 * v1 - v2
    if len(x) < 2 or den <= 1e-12 * v1 * v1:
        return float("nan")
    mean = (w * x).sum() / v1
    return float(np.sqrt(v1 / den * (w * (x - mean) ** 2).sum()))


def effective_count(w: np.ndarray) -> float:
    """Kish's effective number of observations (Σ w)² / Σ w²."""
    w = np.asarray(w, float)
    return float(w.sum() ** 2 / (w * w).sum())


def area_fraction(area_acres, parcel_acres) -> np.ndarray:
    """A covered area as a fraction of the parcel, clipped to [0, 1] (areas come from different
    projections: a product's own can exceed the parcel's equal-area acres by a hair)."""
    parcel = np.asarray(parcel_acres, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(parcel > 0, np.clip(np.asarray(area_acres, float) / parcel, 0.0, 1.0), np.nan)


def pixels_to_acres(pixels, pixel_area_m2) -> np.ndarray:
    """Σ coverage fractions of pixels × pixel area, in acres (0 where the parcel had no pixels)."""
    return np.nan_to_num(np.asarray(pixels, float) * np.asarray(pixel_area_m2, float)) / M2_PER_ACRE
