"""The coverage map of a source: valid-data coverage drawn over the file footprints (EPSG:3857)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import PathPatch, Rectangle  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from pyogrio.raw import read as ogr_read  # noqa: E402
from pyproj import CRS, Transformer  # noqa: E402


def _patch(poly: shapely.Polygon, **style) -> PathPatch:
    rings = [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
    verts = np.concatenate(rings)
    codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(r) - 2) + [MplPath.CLOSEPOLY] for r in rings])
    return PathPatch(MplPath(verts, codes), **style)


def plot_coverage(source: str, bounds_csv: Path, coverage_gpkg: Path, png: Path) -> None:
    with open(bounds_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    meta, _, geoms, _ = ogr_read(coverage_gpkg)
    crs = CRS.from_user_input(meta["crs"])
    t = Transformer.from_crs(crs, 3857, always_xy=True)
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    area_km2 = 0.0
    for wkb in geoms:
        geom = shapely.from_wkb(wkb)
        # what an 800 px map can show: simplify to about a pixel, then reproject the few vertices left
        tolerance = max(1e-9, _extent(geom) / 1000)
        geom = shapely.segmentize(shapely.simplify(geom, tolerance), tolerance * 50)
        if crs.to_epsg() != 3857:
            geom = shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
        for poly in shapely.get_parts(geom):
            ax.add_patch(_patch(poly, facecolor="#3a7d44", edgecolor="none", alpha=0.6))
        area_km2 += shapely.area(shapely.from_wkb(wkb)) / 1e6 if crs.is_projected else 0.0
    boxes = [
        Rectangle(
            (float(r["left"]), float(r["bottom"])),
            float(r["right"]) - float(r["left"]),
            float(r["top"]) - float(r["bottom"]),
        )
        for r in rows
    ]
    ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor="#333", linewidth=0.5))
    if rows:
        xs = [float(r[k]) for r in rows for k in ("left", "right")]
        ys = [float(r[k]) for r in rows for k in ("bottom", "top")]
        pad = 0.03 * max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set_xlabel("x (EPSG:3857, m)")
    ax.set_ylabel("y (EPSG:3857, m)")
    area = f", {area_km2:,.1f} km² covered" if crs.is_projected else ""
    ax.set_title(f"{source}: valid-data coverage (green) over {len(rows)} file footprints{area}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)


def _extent(geom: shapely.Geometry) -> float:
    xmin, ymin, xmax, ymax = geom.bounds if not geom.is_empty else (0, 0, 0, 0)
    return max(xmax - xmin, ymax - ymin)
