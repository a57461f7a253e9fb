"""Issue 11, points 1, 2, 5, 6 through the real workflow: which rasters become outputs, what survives
the recipe, producer files kept byte for byte, bounds and coverage inside Web Mercator."""

import csv
import io
import math
import tarfile
import zipfile

import numpy as np
import pytest
import rasterio
import shapely
from pyogrio.raw import read as ogr_read
from rasterio.transform import Affine, from_origin

from conftest import shared, snakemake
from support.catalog import make_entry, md5
from support.rasterchecks import expected_bounds_row

pytestmark = pytest.mark.workflow
X_MAX = 20037508.342789244


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def config(catalog, sources, *extra):
    return ["--config", f"catalog={catalog}", "source=[" + ",".join(sources) + "]", "state=[]", *extra]


def tiff(path, data, transform=None, crs=None, nodata=None, mask=None, driver="GTiff", creation=None, **props):
    """Write a raster (bands first); `mask` becomes its per-dataset mask; `creation`: GDAL creation
    options; props: scales, offsets, units, descriptions, colorinterp, tags, gcps."""
    data = data if data.ndim == 3 else data[None]
    profile = dict(driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype)
    profile.update(crs=crs, nodata=nodata, **({"transform": transform} if transform is not None else {}))
    profile.update(creation or {})
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        if mask is not None:
            ds.write_mask(mask)
        ds.update_tags(**props.pop("tags", {}))
        for key, value in props.items():
            setattr(ds, key, value)
    return path


def zip_of(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def serve(http, prefix, files: dict) -> list[str]:
    for name, data in files.items():
        http.files[f"/{prefix}/{name}"] = data
    return [http.url(f"{prefix}/{name}") for name in files]


def read(path):
    return path.read_bytes()


def elevation(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).uniform(100, 900, shape).astype(dtype)


UTM = "EPSG:25832"
ORIGIN = from_origin(500000, 5600000, 1, 1)


def test_only_georeferenced_elevation_rasters_become_outputs(tmp_path, http):
    g = tmp_path / "gen"
    g.mkdir()
    rgb = np.random.default_rng(1).integers(0, 255, (3, 40, 60), dtype="uint8")
    tiff(g / "preview.png", rgb, driver="PNG")
    tiff(g / "quicklook.jpg", rgb, driver="JPEG")
    tiff(g / "notags.tif", elevation((30, 30)))  # a TIFF without geotags: pixel coordinates only
    tiff(g / "ortho.tif", rgb, ORIGIN, UTM, creation={"photometric": "RGB"})
    tiff(g / "twoband.tif", np.stack([elevation((50, 50)), np.ones((50, 50), "float32")]), ORIGIN, UTM)
    tiff(g / "north.tif", elevation((20, 20)), from_origin(10, 88, 0.1, 0.1), "EPSG:4326")  # 86–88°N
    gcps = [rasterio.control.GroundControlPoint(r, c, 500000 + c, 5600000 - r) for r, c in ((0, 0), (0, 9), (9, 0))]
    tiff(g / "gcps.tif", elevation((10, 10)), gcps=(gcps, rasterio.crs.CRS.from_string(UTM)))
    cdl = shared("landcover/usda_cdl/2021_30m_cdls_-106095_1807575_15000.tif")  # real: georeferenced, palette
    bundle = {
        "dem/storml_elev_orig.tif": read(shared("elevation/geotiff/storml_elev_orig.tif")),
        "dem/twoband.tif": read(g / "twoband.tif"),
        "preview.png": read(g / "preview.png"),
        "quicklook.jpg": read(g / "quicklook.jpg"),
        "notags.tif": read(g / "notags.tif"),
        "ortho.tif": read(g / "ortho.tif"),
        "landcover.tif": read(cdl),
        "north.tif": read(g / "north.tif"),
    }
    urls = serve(
        http,
        "producer",
        {"bundle.zip": zip_of(bundle), "dem-hills.tiff": read(shared("elevation/geotiff/dem-hills.tiff"))},
    )
    make_entry(tmp_path / "catalog", "producer", urls)
    only_previews = {"preview.png": read(g / "preview.png"), "quicklook.jpg": read(g / "quicklook.jpg")}
    urls = serve(http, "previews", {"previews.zip": zip_of(only_previews), "gcps.tif": read(g / "gcps.tif")})
    make_entry(tmp_path / "catalog", "previews", urls)
    work = tmp_path / "run"
    proc = snakemake(work, *config(tmp_path / "catalog", ["producer", "previews"]), check=False)
    assert proc.returncode != 0  # previews has nothing to ship

    bounds = rows(work / "source-store/producer/bounds.csv")
    assert [r["filename"] for r in bounds] == ["dem-hills.tif", "storml_elev_orig.tif", "twoband.tif"]
    assert sorted(p.name for p in (work / "source-store/producer").glob("*.tif")) == [r["filename"] for r in bounds]
    assert (work / "tar-store/producer.tar").exists() and rows(work / "reports/producer/failures.csv") == []
    notes = {r["raster"]: r for r in rows(work / "reports/producer/skipped.csv")}
    expected = {
        "preview.png": ("skipped", "not georeferenced"),
        "quicklook.jpg": ("skipped", "not georeferenced"),
        "notags.tif": ("skipped", "not georeferenced"),
        "ortho.tif": ("skipped", "colour image (blue/green/red bands)"),
        "landcover.tif": ("skipped", "colour image (palette bands)"),
        "north.tif": ("skipped", "outside Web Mercator"),
        "dem/twoband.tif": ("warning", "2 bands: band 1 is taken as the elevation"),
    }
    assert set(notes) == set(expected)
    for raster, (kind, reason) in expected.items():
        assert notes[raster]["kind"] == kind and reason in notes[raster]["reason"], notes[raster]
        assert notes[raster]["file"] == "bundle.zip" and notes[raster]["line"] == "1"

    failed = {r["file"]: r for r in rows(work / "reports/previews/failures.csv")}
    assert "no georeferenced elevation raster in it" in failed["previews.zip"]["error"]
    assert "preview.png: not georeferenced" in failed["previews.zip"]["error"]
    assert "georeferenced only by GCPs" in failed["gcps.tif"]["error"] and "gdalwarp" in failed["gcps.tif"]["error"]
    assert {r["raster"] for r in rows(work / "reports/previews/skipped.csv")} == {"preview.png", "quicklook.jpg"}
    assert "source producer: 2 of 2 files converted into 3 COGs, 0 failed; 6 rasters inside them skipped" in proc.stderr

    # the report is rebuilt from the chunk ledgers: a rerun without the report gives it back, nothing reconverted
    before = (work / "reports/producer/skipped.csv").read_text()
    (work / "reports/producer/skipped.csv").unlink()
    proc = snakemake(work, *config(tmp_path / "catalog", ["producer"]))
    assert "rule prepare_chunk" not in proc.stderr and (work / "reports/producer/skipped.csv").read_text() == before
