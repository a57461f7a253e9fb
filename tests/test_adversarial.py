"""Inputs found by adversarial testing of issues 11 and 12: each test is one class of input that
main got wrong (exit 0 with wrong bytes, a failure without its real reason, or a wedge)."""

import csv

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import snakemake
from support.catalog import make_entry

X_MAX = 20037508.342789244


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def config(catalog, source, *extra):
    return ["--config", f"catalog={catalog}", f"source={source}", "state=[]", *extra]


def geotiff(path, data, transform, crs, nodata=None):
    data = data if data.ndim == 3 else data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype)
    with rasterio.open(path, "w", crs=crs, transform=transform, nodata=nodata, **profile) as ds:
        ds.write(data)
    return path


def ramp(height, width, dtype="int16"):
    return (np.arange(height * width).reshape(height, width) % 1000 + 1).astype(dtype)


@pytest.mark.workflow
def test_slices_beyond_web_mercator_are_skipped_not_a_failure_of_their_raster(tmp_path):
    """A raster reaching past 85.0511°N, sliced: the slices entirely beyond are skipped with a note, as
    a whole raster beyond would be; the others are converted. Main failed the whole file at `bounds`."""
    arctic = geotiff(tmp_path / "arctic.tif", ramp(1800, 600), from_origin(10, 89, 0.005, 0.005), "EPSG:4326")
    make_entry(tmp_path / "catalog", "arctic", [str(arctic)], {"slice_px": 512})
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", "arctic"))

    assert rows(work / "reports/arctic/failures.csv") == []
    names = {r["filename"] for r in rows(work / "source-store/arctic/bounds.csv")}
    assert names == {f"arctic_tile_{x}_{y}.tif" for x in (0, 512) for y in (512, 1024, 1536)}
    for row in rows(work / "source-store/arctic/bounds.csv"):
        assert -X_MAX <= float(row["bottom"]) < float(row["top"]) <= X_MAX
    notes = rows(work / "reports/arctic/skipped.csv")
    assert sorted(n["reason"].split(":")[0] for n in notes) == ["arctic_tile_0_0.tif", "arctic_tile_512_0.tif"]
    assert all(n["kind"] == "skipped" and "outside Web Mercator" in n["reason"] for n in notes)
