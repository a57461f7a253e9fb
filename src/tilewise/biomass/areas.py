"""Forest and crop acres of a parcel that never add up to more than the parcel (docs/biomass-model.md §6).

CDL wins on its crop-area pixels (crop-specific, annual, trained on FSA field data); forest is what
WorldCover calls tree cover or mangroves outside them, capped by what the parcel has left.
"""

from __future__ import annotations

import numpy as np


def reconcile(parcel_acres, worldcover_forest_acres, cdl_crop_acres, overlap_acres) -> dict[str, np.ndarray]:
    """`overlap_acres`: measured area where WorldCover is forest and CDL is crop area (the pixel
    overlay). The conflict reported is at least the parcel-level excess forest + crop − parcel."""
    parcel = np.asarray(parcel_acres, float)
    forest_raw = np.asarray(worldcover_forest_acres, float)
    crop = np.minimum(np.asarray(cdl_crop_acres, float), parcel)
    conflict = np.maximum(np.asarray(overlap_acres, float), np.maximum(forest_raw + crop - parcel, 0.0))
    forest = np.clip(np.minimum(forest_raw - conflict, parcel - crop), 0.0, None)
    return {"crop_area_acres": crop, "forest_area_acres": forest, "forest_crop_conflict_acres": conflict}
