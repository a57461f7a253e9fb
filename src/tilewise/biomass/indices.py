"""Sentinel-2 L2A reflectance, clear-pixel mask and vegetation indices (docs/biomass-model.md §2).

A pixel is clear when its scene classification is vegetation, not-vegetated or water (SCL 4, 5, 6) and
every band the indices use has a physical reflectance, 0 < ρ ≤ 1. Excluded classes: 0 no data,
1 saturated/defective, 2 dark area or topographic cast shadow (lit by skylight only: ρ biased dark),
3 cloud shadow, 7 unclassified (on the real tile 29UNU, 99 % of class-7 pixels lie within 600 m of a
cloud and are 3.5× brighter in red than vegetation: cloud fringes), 8/9 cloud, 10 thin cirrus, 11 snow.
A value above 11 is no scene class: the county refuses it (county._s2_group).
"""

from __future__ import annotations

import re

import numpy as np

from tilewise.shared.errors import TilewiseError

QUANTIFICATION = 10_000  # L2A BOA_QUANTIFICATION_VALUE (MTD_MSIL2A.xml): DN per reflectance 1, STAC's scale 0.0001
BOA_ADD_OFFSET_DN = -1000  # L2A BOA_ADD_OFFSET from processing baseline 04.00 on (0 before)
SCL_CLEAR = (4, 5, 6)
SCL_MAX = 11  # the L2A legend is 0–11: any other value is not a scene class
# Bright-surface limit: a reflectance factor above 1 needs a non-Lambertian target (specular glint, a
# sun-facing snow slope, light scattered by a nearby cloud) — in SCL 4–6 a misclassified cloud edge or
# a glint. With every band in (0, 1], NDVI, NDWI and SAVI stay inside [−1, 1].
MAX_REFLECTANCE = 1.0
INDEX_BANDS = ("B02", "B03", "B04", "B08")
INDEX_NAMES = ("ndvi", "evi", "savi", "ndwi")  # what vegetation_indices gives, in its order
_BASELINE = re.compile(r"^(\d{2})\.(\d{2})$")  # 05.10, as MTD_MSIL2A.xml and STAC write it
_BASELINE_IN_NAME = re.compile(r"^N(\d{2})(\d{2})$")  # N0510, the product name's field


def processing_baseline(text, where: str) -> tuple[int, int]:
    """(major, minor) of a processing baseline as Sentinel-2 writes it: `05.10` (PROCESSING_BASELINE in
    the product's MTD_MSIL2A.xml, the STAC `s2:processing_baseline`) or `N0510` (the product name's
    field). Four digits without the N (`0211`) are refused: a number read from them (211) is not a
    baseline. Anything else is a TilewiseError naming `where`."""
    value = str(text).strip()
    found = _BASELINE.match(value) or _BASELINE_IN_NAME.match(value)
    if found:
        return int(found[1]), int(found[2])
    hint = " (four digits without the N are ambiguous)" if value.isdigit() else ""
    raise TilewiseError(
        f"{where}: processing baseline {text!r} is not one Sentinel-2 writes{hint}; write it as the product's "
        "MTD_MSIL2A.xml does (PROCESSING_BASELINE, e.g. 05.10) or as its name does (N0510)"
    )


def boa_offset(baseline, declared=None, where: str = "Sentinel-2 product") -> float:
    """BOA_ADD_OFFSET in DN: as declared by the product, else −1000 from baseline 04.00 on, else 0.
    A baseline given is always checked; a missing one is an error when no offset is declared."""
    given = baseline is not None and not (isinstance(baseline, float) and np.isnan(baseline)) and baseline != ""
    version = processing_baseline(baseline, where) if given else None
    if declared is not None and not (isinstance(declared, float) and np.isnan(declared)):
        try:
            value = float(declared)
        except ValueError:
            raise TilewiseError(f"{where}: boa_add_offset {declared!r} is not a number of DN (e.g. -1000)") from None
        if not (value.is_integer() and -QUANTIFICATION < value <= 0):
            raise TilewiseError(
                f"{where}: boa_add_offset {declared!r} is not a Sentinel-2 offset: ESA's BOA_ADD_OFFSET is a whole, "
                "negative or zero number of DN (−1000 from processing baseline 04.00 on, 0 before); an offset in "
                "reflectance (STAC's raster:bands offset, −0.1) is −1000 DN"
            )
        return value
    if version is None:
        raise TilewiseError(
            f"{where}: no processing baseline and no boa_add_offset, so whether its DN carry the −1000 offset "
            "(baseline 04.00 on) cannot be told; add the product's baseline (e.g. 05.10, N0510 in its name)"
        )
    return float(BOA_ADD_OFFSET_DN) if version >= (4, 0) else 0.0


def reflectance(dn: np.ndarray, offset: float) -> np.ndarray:
    """Surface reflectance = (DN + BOA_ADD_OFFSET) / 10000; DN 0 (no data) becomes NaN."""
    out = (dn.astype(np.float32) + np.float32(offset)) / np.float32(QUANTIFICATION)
    out[dn == 0] = np.nan
    return out


def physical(rho: np.ndarray) -> np.ndarray:
    """0 < ρ ≤ MAX_REFLECTANCE (NaN: no)."""
    with np.errstate(invalid="ignore"):
        return (rho > 0) & (rho <= MAX_REFLECTANCE)


def masks(scl: np.ndarray, bands: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: has data (every band and the SCL), clear (SCL 4–6 and every band physical), and
    rejected by the physical-range test alone (SCL 4–6 but some band ≤ 0 or above the limit)."""
    data = scl != 0
    in_range = np.ones(scl.shape, bool)
    for rho in bands:
        data &= ~np.isnan(rho)
        in_range &= physical(rho)
    scene_clear = data & np.isin(scl, SCL_CLEAR)
    return data, scene_clear & in_range, scene_clear & ~in_range


def vegetation_indices(blue, green, red, nir, clear) -> dict[str, np.ndarray]:
    """NDVI, EVI, SAVI (L = 0.5) and NDWI (McFeeters) from reflectance; NaN where not clear or undefined.
    EVI can leave [−1, 1] even for physical reflectances (blue brighter than red under a bright NIR: haze
    at a cloud edge); such a value is an artefact, so it is NaN, not clipped."""
    with np.errstate(divide="ignore", invalid="ignore"):
        indices = {
            "ndvi": (nir - red) / (nir + red),
            "evi": 2.5 * (nir - red) / (nir + 6.0 * red - 7.5 * blue + 1.0),
            "savi": 1.5 * (nir - red) / (nir + red + 0.5),
            "ndwi": (green - nir) / (green + nir),
        }
    assert tuple(indices) == INDEX_NAMES
    for arr in indices.values():
        with np.errstate(invalid="ignore"):
            arr[~clear | ~np.isfinite(arr) | (np.abs(arr) > 1)] = np.nan
    return indices
