"""COGs that Mapterhorn's downstream stage mosaics together must agree in what its gdalbuildvrt compares.

aggregation_reproject mosaics a source's files of one maxzoom inside one aggregation tile with
gdalbuildvrt, which skips (a warning no one reads) every file whose CRS, band count, data type, colour
interpretation, scale or offset differs from the first's: the merge refuses such a source before the
store changes. Files that never meet in one mosaic (far apart, another resolution) may differ.
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS as PyprojCRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from tilewise.shared.errors import TilewiseError
from tilewise.sources import ledger, raster_describe
from tilewise.sources.merge import MergePaths, merge_source

from conftest import snakemake
from support.catalog import make_entry


def cog(path: Path, x0=600000.0, y0=5200000.0, res=10.0, dtype="int16", count=1, crs="EPSG:32632", alpha=False):
    with rasterio.open(
        path, "w", driver="GTiff", width=100, height=100, count=count, dtype=dtype, crs=crs,
        transform=from_origin(x0, y0, res, res), nodata=-9999,
    ) as ds:  # fmt: skip
        for b in range(1, count + 1):
            ds.write((np.arange(10_000).reshape(100, 100) % 500 + 100).astype(dtype), b)
        if alpha:  # the last band an alpha band
            ds.colorinterp = [ColorInterp.gray] * (count - 1) + [ColorInterp.alpha]


def merge(tmp_path: Path, rasters: dict[str, dict]) -> Path:
    """Stage one COG per entry (`name` → cog() arguments) as a chunk's ledger without a mosaic key (a
    ledger of an earlier tilewise: the merge reads the COGs), and merge them. Returns the store."""
    staging = tmp_path / "work" / "staging" / "0000"
    staging.mkdir(parents=True)
    records = []
    for n, (name, kwargs) in enumerate(rasters.items()):
        staged = f"{n:05d}-{name}"
        cog(staging / staged, **kwargs)
        with rasterio.open(staging / staged) as ds:
            row, geom, crs = raster_describe.describe(ds)
        out = {**row, "filename": name, "crs": crs, "coverage_wkb": geom.wkb_hex}
        out |= {"bytes": (staging / staged).stat().st_size, "md5": "0" * 32, "staged": staged, "raster": name}
        records.append({"url": f"http://h/{name}", "file": name, "status": "ok", "outputs": [out]})
    chunk = tmp_path / "work" / "chunks" / "0000.json"
    ledger.write(chunk, ledger.Ledger("s", "0000", {}, records))
    (tmp_path / "file_list.txt").write_text("".join(f"http://h/{name}\n" for name in rasters))
    store = tmp_path / "store" / "s"
    paths = MergePaths(
        store=store,
        staging=tmp_path / "work" / "staging",
        store_index=tmp_path / "work" / "store-index.json",
        bounds_csv=store / "bounds.csv",
        coverage_gpkg=tmp_path / "polygon-store" / "s.gpkg",
        failures_csv=tmp_path / "reports" / "failures.csv",
        skipped_csv=tmp_path / "reports" / "skipped.csv",
        remote_state=tmp_path / "work" / "remote",
    )
    merge_source([chunk], paths, tmp_path / "file_list.txt", tmp_path / "source.yaml", None)
    return store


NEXT = {"x0": 601000.0}  # the neighbour east of the first COG (1 km wide)
CLASHES = {  # (the first COG, its neighbour, what differs)
    "data type": ({}, {"dtype": "float32"}, "band 1 data type float32, not int16"),
    "float width": ({"dtype": "float32"}, {"dtype": "float64"}, "band 1 data type float64, not float32"),
    "band count": ({}, {"count": 2}, "2 band(s), not 1"),
    "colour interpretation": (
        {"count": 2},
        {"count": 2, "alpha": True},
        "band 2 colour interpretation alpha, not undefined",
    ),
    "CRS": ({}, {"crs": "EPSG:25832"}, "CRS EPSG:25832, not EPSG:32632"),
    "CRS, 500 m apart in one aggregation tile": ({}, {"x0": 601500.0, "crs": "EPSG:25832"}, "CRS EPSG:25832"),
}


@pytest.mark.parametrize("case", list(CLASHES))
def test_cogs_one_mosaic_would_skip_are_refused_before_the_store_changes(tmp_path, case):
    first, other, why = CLASHES[case]
    with pytest.raises(TilewiseError) as err:
        merge(tmp_path, {"a.tif": first, "b.tif": NEXT | other})
    text = str(err.value)
    assert f"b.tif differs from a.tif: {why}" in text, text
    assert "gdalbuildvrt" in text and "catalog entry of their own" in text
    assert not (tmp_path / "store" / "s").exists()  # nothing placed


def test_the_first_by_name_is_the_one_kept_and_every_other_is_named(tmp_path):
    rasters = {"c.tif": {"x0": 602000.0}, "a.tif": {"dtype": "float32"}, "b.tif": NEXT}
    with pytest.raises(TilewiseError) as err:
        merge(tmp_path, rasters)
    text = str(err.value)
    assert "b.tif differs from a.tif: band 1 data type int16, not float32" in text
    assert "c.tif differs from a.tif" in text and "2 COG(s)" in text


def test_tiles_across_the_antimeridian_meet_in_one_mosaic(tmp_path):
    # one tile across 180° (left > right in bounds.csv) and its neighbour east of −180°
    west = {"x0": 179.98, "y0": 52.0, "res": 0.00036, "crs": "EPSG:4326"}  # 100 pixels: to 180.016°
    east = west | {"x0": -179.96, "dtype": "float32"}
    with pytest.raises(TilewiseError, match="b.tif differs from a.tif: band 1 data type float32"):
        merge(tmp_path, {"a.tif": west, "b.tif": east})


OK = {
    "far apart": {"a.tif": {}, "b.tif": {"y0": 5900000.0, "dtype": "float32"}},
    "another resolution": {"a.tif": {}, "b.tif": NEXT | {"res": 40.0, "dtype": "float32"}},
    "other sides of the antimeridian, not across": {
        "a.tif": {"x0": 179.9, "y0": 52.0, "res": 0.001, "crs": "EPSG:4326"},
        "b.tif": {"x0": -180.0, "y0": 52.0, "res": 0.001, "crs": "EPSG:4326", "dtype": "float32"},
    },
    "one CRS written as ESRI WKT and as an EPSG code": {
        "a.tif": {},
        "b.tif": NEXT | {"crs": PyprojCRS.from_epsg(32632).to_wkt("WKT1_ESRI")},
    },
    "alike": {"a.tif": {}, "b.tif": NEXT, "c.tif": {"y0": 5201000.0}},
}


@pytest.mark.parametrize("case", list(OK))
def test_cogs_that_never_meet_in_one_mosaic_or_agree_are_merged(tmp_path, case):
    store = merge(tmp_path, OK[case])
    assert sorted(p.name for p in store.glob("*.tif")) == sorted(OK[case])


@pytest.mark.workflow
def test_the_workflow_refuses_an_int16_tile_beside_a_float32_one(tmp_path):
    # the chunks record each COG's key in their ledgers; the merge stops and the tarball is not built
    for name, dtype, x0 in (("north.tif", "int16", 600000.0), ("south.tif", "float32", 601000.0)):
        cog(tmp_path / name, x0=x0, dtype=dtype)
    make_entry(tmp_path / "catalog", "mixed", [str(tmp_path / "north.tif"), str(tmp_path / "south.tif")])
    work = tmp_path / "run"
    config = ["--config", f"catalog={tmp_path / 'catalog'}", "source=[mixed]", "state=[]"]
    proc = snakemake(work, *config, check=False)
    assert proc.returncode != 0
    assert "south.tif differs from north.tif: band 1 data type float32, not int16" in proc.stderr
    assert not (work / "tar-store" / "mixed.tar").exists() and not list(work.glob("source-store/mixed/*.tif"))
    chunk_ledgers = list(work.glob("work/mixed/chunks/*.json"))
    assert chunk_ledgers and all('"mosaic"' in p.read_text() for p in chunk_ledgers)
