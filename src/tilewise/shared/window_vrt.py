"""A raster, or a window of it, as GDAL's own VRT copy: `gdal_translate -of VRT [-srcwin]`.

Both pipelines cut windows this way (a source's slices; a biomass tile clipped to its state): GDAL
writes the description, so every band property it knows survives (masks, alpha, scale, offset,
units, descriptions, colour interpretation); only the size, the geotransform and the source
rectangles change.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import rasterio.shutil
from rasterio.windows import Window

from tilewise.shared.errors import TilewiseError


def window_vrt(ds, path: Path, window: Window | None) -> ET.ElementTree:
    """Write GDAL's VRT of `ds` to `path` and return its tree cut to `window` (None: the whole raster);
    the caller may edit the tree further and writes it back."""
    rasterio.shutil.copy(ds, path, driver="VRT")
    tree = ET.parse(path)
    if window is not None:
        _cut(ds, tree.getroot(), window)
    return tree


def _cut(ds, root: ET.Element, window: Window) -> None:
    full = {"xOff": "0", "yOff": "0", "xSize": str(ds.width), "ySize": str(ds.height)}
    rects = list(root.iter("SrcRect")) + list(root.iter("DstRect"))
    if any({k: r.get(k) for k in full} != full for r in rects):
        raise TilewiseError(f"{Path(ds.name).name} is a VRT mosaic: list its tiles instead of cutting it")
    root.set("rasterXSize", str(int(window.width)))
    root.set("rasterYSize", str(int(window.height)))
    root.find("GeoTransform").text = ",".join(repr(v) for v in ds.window_transform(window).to_gdal())
    cut = {"xOff": window.col_off, "yOff": window.row_off, "xSize": window.width, "ySize": window.height}
    for rect in root.iter("SrcRect"):
        for k, v in cut.items():
            rect.set(k, str(int(v)))
    for rect in root.iter("DstRect"):
        for k, v in {**cut, "xOff": 0, "yOff": 0}.items():
            rect.set(k, str(int(v)))
