"""Sentinel-2 L2A reflectance, cloud mask and vegetation indices (docs/biomass-model.md §2)."""

from __future__ import annotations

import numpy as np

QUANTIFICATION = 10_000.0  # L2A BOA_QUANTIFICATION_VALUE
# Scene classification classes that are not a clear view of the ground: no data, saturated/defective,
# cloud shadow, cloud (medium, high probability), thin cirrus, snow/ice.
SCL_EXCLUDED = (0, 1, 3, 8, 9, 10, 11)


def boa_offset(processing_baseline: str | float | None, declared: float | None = None) -> float:
    """BOA_ADD_OFFSET in DN: as declared by the product, else −1000 from baseline 04.00 on, else 0."""
    if declared is not None and not np.isnan(declared):
        return float(declared)
    if processing_baseline is None or processing_baseline == "":
        raise ValueError("no processing baseline and no BOA_ADD_OFFSET: cannot scale Sentinel-2 DN to reflectance")
    return -1000.0 if float(processing_baseline) >= 4.0 else 0.0


def reflectance(dn: np.ndarray, offset: float) -> np.ndarray:
    """Surface reflectance = (DN + BOA_ADD_OFFSET) / 10000; DN 0 (no data) becomes NaN."""
    out = (dn.astype(np.float32) + np.float32(offset)) / np.float32(QUANTIFICATION)
    out[dn == 0] = np.nan
    return out


def clear_mask(scl: np.ndarray | None, shape) -> np.ndarray:
    if scl is None:
        return np.ones(shape, bool)
    return ~np.isin(scl, SCL_EXCLUDED)


def vegetation_indices(blue, green, red, nir, clear) -> dict[str, np.ndarray]:
    """NDVI, EVI, SAVI (L = 0.5) and NDWI (McFeeters) from reflectance; NaN where not clear or undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        indices = {
            "ndvi": (nir - red) / (nir + red),
            "evi": 2.5 * (nir - red) / (nir + 6.0 * red - 7.5 * blue + 1.0),
            "savi": 1.5 * (nir - red) / (nir + red + 0.5),
            "ndwi": (green - nir) / (green + nir),
        }
    for arr in indices.values():
        arr[~clear | ~np.isfinite(arr)] = np.nan
    return indices
