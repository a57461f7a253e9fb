"""The coverage GeoPackage `polygon-store/{source}.gpkg`: the one module that writes it.

One layer `union` with one MultiPolygon feature, in one CRS, written reproducibly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write
from pyproj import CRS

# GPKG stores a last-change time; a fixed one keeps coverage.gpkg, and so the tarball, reproducible.
FIXED_GPKG_DATE = "2000-01-01T00:00:00Z"


def write(geom: shapely.Geometry, crs: CRS, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    ogr_write(
        tmp,
        geometry=np.array([geom.wkb], dtype=object),
        field_data=[],
        fields=[],
        layer="union",
        driver="GPKG",
        geometry_type="MultiPolygon",
        crs=crs.to_wkt(),
        GEOMETRY_NAME="geom",
        SPATIAL_INDEX="NO",
    )
    os.replace(tmp, path)
