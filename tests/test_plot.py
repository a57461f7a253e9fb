"""The coverage map without Snakemake: its covered area is the exact area of the union."""

import pytest
import shapely

from tilewise.sources import ledger
from tilewise.sources.plot import _union_area, plot_coverage


def staircase(x0: float, steps: int = 50) -> shapely.Polygon:
    """A 100 × 100 tile at x0 whose top edge is a pixel staircase (like a ragged nodata collar)."""
    top = [(x0 + i * 2 + dx, 100 - (i % 3)) for i in range(steps) for dx in (0, 2)]
    return shapely.Polygon([(x0, 0), (x0 + 100, 0), *reversed(top)])


@pytest.mark.parametrize(
    "extra",
    [
        [],  # tiles that only share edges
        [shapely.box(150, 10, 250, 60)],  # one overlapping two tiles
        [shapely.box(20, 20, 30, 30)],  # one inside another
        [  # two L shapes fitted together above the tiles: their boxes overlap, they only touch
            shapely.Polygon([(0, 100), (300, 100), (300, 150), (100, 150), (100, 200), (0, 200)]),
            shapely.Polygon([(100, 150), (300, 150), (300, 200), (100, 200)]).union(shapely.box(300, 100, 310, 200)),
        ],
    ],
)
def test_union_area_is_exact(extra):
    geoms = [staircase(x) for x in (0, 100, 200)] + extra
    assert _union_area(geoms) == pytest.approx(shapely.union_all(geoms).area, rel=1e-12)


def test_map_of_ledgers(tmp_path):
    outputs = [
        {"left": x, "bottom": 0, "right": x + 100, "top": 100, "crs": "EPSG:3857", "coverage_wkb": staircase(x).wkb_hex}
        | {"filename": f"{x}.tif", "bytes": 1, "md5": "0" * 32, "staged": f"00000-{x}.tif", "raster": f"{x}.tif"}
        for x in (0, 100)
    ]
    path = tmp_path / "0000.json"
    files = [{"url": "u", "file": "a.zip", "status": "ok", "outputs": outputs}]
    files.append({"url": "v", "file": "b.zip", "status": "failed", "step": "download", "error": "HTTP 404"})
    ledger.write(path, ledger.Ledger("s", "0000", {}, files))
    png = tmp_path / "map" / "coverage.png"
    plot_coverage("s", [path], png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
