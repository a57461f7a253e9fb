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
import rasterio.shutil
import shapely
from pyogrio.raw import read as ogr_read
from rasterio.transform import Affine, from_origin

from conftest import shared, snakemake
from support.catalog import make_entry
from support.rasterchecks import assert_mapterhorn_cog, expected_bounds_row

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


def _valid(path, window=None):
    """Independent rule: GDAL's mask of band 1, not the declared nodata, not NaN."""
    with rasterio.open(path) as ds:
        data = ds.read(1, window=window)
        valid = ds.read_masks(1, window=window) > 0
        if ds.nodata is not None:
            valid &= data != ds.nodata
    return valid & ~np.isnan(data.astype("float64"))


def _props(path):
    with rasterio.open(path) as ds:
        return ds.scales, ds.offsets, ds.units, ds.descriptions, ds.tags().get("PRODUCER")


def _covered_m2(work, source):
    _, _, geoms, _ = ogr_read(work / "polygon-store" / f"{source}.gpkg")
    union = shapely.union_all([shapely.from_wkb(g) for g in geoms])
    assert union.is_valid
    return union.area


def test_pixel_semantics_survive_every_recipe_path(tmp_path, http):
    g = tmp_path / "gen"
    g.mkdir()
    # scale 1 and offset 0 written out (a scale or offset of another value fails: test_rasters)
    props = dict(scales=(1.0,), offsets=(0.0,), units=("metre",), descriptions=("elevation",))
    props["tags"] = {"PRODUCER": "survey"}
    # 50 km apart: rasters of other types and band counts in one source never meet in one of Mapterhorn's
    # downstream mosaics (its aggregation tiles of 1 m rasters are zoom 12, ~6 km here: test_mosaic)
    # masked: int16 with a per-dataset mask over garbage, no nodata
    a = (np.arange(600 * 700).reshape(600, 700) % 3000).astype("int16")
    mask_a = np.full(a.shape, 255, "uint8")
    mask_a[:100, :100] = mask_a[550:, 600:] = 0
    a[mask_a == 0] = 1234
    tiff(g / "masked.tif", a, from_origin(500000, 5600000, 1, 1), UTM, mask=mask_a, **props)
    # float with a nodata value and a mask, NaN and nodata pixels inside the mask's valid part
    b = elevation((300, 300), 2)
    mask_b = np.full(b.shape, 255, "uint8")
    mask_b[:50, :] = 0
    b[100:110, 100:110] = np.nan
    b[200:205, 200:205] = -32767
    tiff(g / "nodata_mask.tif", b, from_origin(501000, 5550000, 1, 1), UTM, nodata=-32767, mask=mask_b, **props)
    # the same with its nodata an elevation's value, for `force`: forcing another nodata makes those pixels valid,
    # which -32767 pixels may not be (no elevation on the Earth: test_rasters)
    b_high = np.where(b == -32767, np.float32(8000), b)
    tiff(g / "nodata_high.tif", b_high, from_origin(501000, 5550000, 1, 1), UTM, nodata=8000, mask=mask_b, **props)
    # float without nodata: NaN over a whole 512-column band (two empty slices) and a small patch
    c = elevation((600, 1100), 3)
    c[:, 512:1024] = np.nan
    c[:10, :10] = np.nan
    tiff(g / "nan.tif", c, from_origin(502000, 5500000, 1, 1), UTM, **props)
    # gray + alpha
    e = np.stack([elevation((80, 80), 4, "uint16"), np.full((80, 80), 255, "uint16")])
    e[1, :20, :] = 0
    tiff(g / "alpha.tif", e, from_origin(504000, 5450000, 1, 1), UTM, creation={"alpha": "yes"})
    tiff(g / "small.tif", elevation((200, 300), 5), from_origin(505000, 5400000, 1, 1), UTM, **props)
    # rotated, masked garbage, no nodata
    d = np.full((64, 64), 7, "float32")
    mask_d = np.full(d.shape, 255, "uint8")
    mask_d[:8] = 0
    d[:8] = 999
    rotated = Affine(0.94, 0.34, 506000, 0.34, -0.94, 5600000)
    tiff(g / "rotated.tif", d, rotated, UTM, mask=mask_d, **props)

    files = {p: read(g / p) for p in ("masked.tif", "nodata_mask.tif", "nan.tif", "alpha.tif", "small.tif")}
    recipes = {
        "plain": ({}, ["masked.tif", "nodata_mask.tif", "nan.tif", "alpha.tif"]),
        "assign": ({"crs": "EPSG:25833", "nodata": -9999}, ["masked.tif", "nodata_mask.tif", "nan.tif"]),
        "force": ({"nodata": 0, "force_nodata": True}, ["nodata_mask.tif"]),
        "sliced": ({"slice_px": 512}, ["masked.tif", "nan.tif", "small.tif"]),
        "orient": ({"fix_orientation": True}, ["rotated.tif"]),
        "orientnd": ({"fix_orientation": True, "nodata": -9999}, ["rotated.tif"]),
    }
    files["rotated.tif"] = read(g / "rotated.tif")
    files["nodata_mask.tif", "force"] = read(g / "nodata_high.tif")
    for source, (recipe, names) in recipes.items():
        served = {n: files.get((n, source), files[n]) for n in names}
        make_entry(tmp_path / "catalog", source, serve(http, source, served), recipe)
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", list(recipes)))
    store = work / "source-store"

    # every path keeps the mask (as the COG's mask), scale, offset, units, descriptions, metadata
    for source, name, nodata in [
        ("plain", "masked.tif", None),
        ("plain", "nodata_mask.tif", -32767),
        ("assign", "masked.tif", -9999),
        ("assign", "nodata_mask.tif", -32767),
        ("force", "nodata_mask.tif", 0),
    ]:
        out = store / source / name
        assert _props(out) == _props(g / name), (source, name)
        with rasterio.open(out) as ds, rasterio.open(g / name) as src:
            assert ds.nodata == nodata and (ds.crs.to_epsg() == 25833) == (source == "assign")
            np.testing.assert_array_equal(ds.dataset_mask(), src.dataset_mask())  # masked garbage stays masked
    # NaN never counts, declared nodata or not; force makes the old nodata pixels valid (gdal_translate -a_nodata)
    b_valid = (mask_b > 0) & (b != -32767) & ~np.isnan(b)
    assert _covered_m2(work, "force") == b_valid.sum() + 25
    assert (
        _covered_m2(work, "plain")
        == sum(_valid(g / n).sum() for n in ("masked.tif", "nodata_mask.tif", "nan.tif")) + 80 * 60
    )
    assert _covered_m2(work, "assign") == _covered_m2(work, "plain") - 80 * 60
    with rasterio.open(store / "plain/alpha.tif") as ds:
        assert ds.count == 2 and (ds.dataset_mask() == 0).sum() == 20 * 80
    assert [r["kind"] for r in rows(work / "reports/plain/skipped.csv")] == ["warning"]

    # slices: Mapterhorn's names, also for a raster of one slice; all-NaN slices dropped; each slice keeps it all
    names = [r["filename"] for r in rows(store / "sliced/bounds.csv")]
    assert names == sorted(
        [f"masked_tile_{x}_{y}.tif" for x in (0, 512) for y in (0, 512)]
        + ["nan_tile_0_0.tif", "nan_tile_0_512.tif", "nan_tile_1024_0.tif", "nan_tile_1024_512.tif"]
        + ["small_tile_0_0.tif"]
    )
    for name in names:
        stem, x, y = name[:-4].rsplit("_", 2)
        stem = stem.removesuffix("_tile")
        with rasterio.open(store / "sliced" / name) as ds:
            window = rasterio.windows.Window(int(x), int(y), ds.width, ds.height)
            with rasterio.open(g / f"{stem}.tif") as src:
                expected = src.dataset_mask(window=window)
                if stem == "nan":  # its NaN voids, declared in the slices holding them (rasters.undeclared_nan)
                    nan = np.isnan(src.read(1, window=window))
                    assert (ds.nodata is not None and math.isnan(ds.nodata)) == nan.any(), name
                    expected = np.where(nan, 0, expected)
                np.testing.assert_array_equal(ds.dataset_mask(), expected)
                assert ds.transform == src.window_transform(window)
        assert _props(store / "sliced" / name) == _props(g / f"{stem}.tif")
    assert _covered_m2(work, "sliced") == _valid(g / "masked.tif").sum() + _valid(g / "nan.tif").sum() + 200 * 300

    # the orientation fix: its fill and the masked garbage are invalid, as a mask (no nodata) or as nodata
    for source, nodata in (("orient", None), ("orientnd", -9999)):
        out = store / source / "rotated.tif"
        with rasterio.open(out) as ds:
            assert ds.transform.b == ds.transform.d == 0 and ds.nodata == nodata
            data, valid = ds.read(1), ds.dataset_mask() > 0
            assert (data[valid] == 7).all() and 0 < valid.sum() and (~valid).sum() > 0
            if nodata is not None:
                assert (data[~valid] == nodata).all()
        assert _props(out) == _props(g / "rotated.tif")
        assert _covered_m2(work, source) == pytest.approx(valid.sum() * abs(ds.transform.a * ds.transform.e))


DOWNLOAD_ONLY_JUSTFILE = """# Source preparation pipeline to be run from mapterhorn/pipelines folder
[no-cd]
default:
    uv run python source_download.py {s}
    uv run python source_bounds.py {s}
    uv run python source_polygonize.py {s} 32
    uv run python source_create_tarball.py {s}"""


TFW = {"profile": "BASELINE", "tfw": "YES"}


def test_download_only_recipe_keeps_producer_files_byte_for_byte(tmp_path, http, monkeypatch):
    # a user environment tuned for cloud reads hides sidecars from GDAL: the .tfw below must still count
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    g = tmp_path / "gen"
    g.mkdir()
    # a producer COG: LERC at 0.1 mm, internal overviews, values finer than tilewise's 1 mm
    fine = elevation((1024, 1024), 6).astype("float64") + 0.0004321
    tiff(
        g / "producer.tif",
        fine.astype("float32"),
        ORIGIN,
        UTM,
        nodata=-9999,
        creation=dict(tiled=True, blockxsize=256, blockysize=256, compress="LERC", max_z_error=0.0001),
    )
    with rasterio.open(g / "producer.tif", "r+") as ds:
        ds.build_overviews([2, 4], rasterio.enums.Resampling.average)
    # a baseline TIFF georeferenced only by its sidecars (.tfw, .aux.xml): the stored file alone would lose them
    (g / "w").mkdir()
    tiff(g / "w" / "world.tif", elevation((40, 40), 7), from_origin(600000, 5600000, 1, 1), UTM, creation=TFW)
    sidecars = {p.name: read(p) for p in sorted((g / "w").iterdir())}
    assert sorted(sidecars) == ["world.tfw", "world.tif", "world.tif.aux.xml"]
    files = {
        "storml_elev_orig.tif": read(shared("elevation/geotiff/storml_elev_orig.tif")),
        "dem-hills.tiff": read(shared("elevation/geotiff/dem-hills.tiff")),
        "producer.tif": read(g / "producer.tif"),
        "n43.dt0": read(shared("elevation/dted/n43.dt0")),
        "world.zip": zip_of(sidecars),
    }
    entry = make_entry(tmp_path / "catalog", "glo", serve(http, "glo", files))
    (entry / "Justfile").write_text(DOWNLOAD_ONLY_JUSTFILE.format(s="glo"))
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", ["glo"]))
    store = work / "source-store/glo"
    bounds = {r["filename"]: r for r in rows(store / "bounds.csv")}
    assert sorted(bounds) == ["dem-hills.tif", "n43.tif", "producer.tif", "storml_elev_orig.tif", "world.tif"]
    kept = {
        "storml_elev_orig.tif": "storml_elev_orig.tif",
        "dem-hills.tif": "dem-hills.tiff",
        "producer.tif": "producer.tif",
    }
    with tarfile.open(work / "tar-store/glo.tar") as tar:
        for name, served in kept.items():
            assert (store / name).read_bytes() == files[served], name  # byte for byte, in the store and the tar
            assert tar.extractfile(f"files/{name}").read() == files[served], name
    with rasterio.open(store / "producer.tif") as ds:
        assert len(ds.overviews(1)) == 2  # the producer's overviews are kept
        error_m = np.abs(ds.read(1).astype("float64") - fine).max()
        assert error_m < 0.00015  # the producer's own 0.1 mm, not tilewise's 1 mm re-encoding on top
    for name, r in bounds.items():  # bounds computed from the stored file itself
        got = tuple(float(r[k]) for k in ("left", "bottom", "right", "top")) + (int(r["width"]), int(r["height"]))
        assert got == pytest.approx(expected_bounds_row(store / name), rel=1e-12)
    # the others are not GeoTIFFs carrying their georeferencing: converted, and said so
    notes = {r["raster"]: r for r in rows(work / "reports/glo/skipped.csv")}
    assert "not a GeoTIFF (DTED)" in notes["n43.dt0"]["reason"] and notes["n43.dt0"]["kind"] == "warning"
    assert "sidecar files" in notes["world.tif"]["reason"] and notes["world.tif"]["kind"] == "warning"
    assert_mapterhorn_cog(store / "n43.tif")
    with rasterio.open(store / "world.tif") as ds:
        assert ds.crs.to_epsg() == 25832 and ds.bounds.left == 600000


def _bounds(row):
    return tuple(float(row[k]) for k in ("left", "bottom", "right", "top"))


def test_bounds_and_coverage_stay_inside_web_mercator(tmp_path, http):
    g = tmp_path / "gen"
    g.mkdir()
    # REMA-like (EPSG:3031): ±1000 km around the south pole with a data hole at the pole, a tile across
    # 180° (Ross Sea) and one entirely beyond 85.0511°S; an Arctic square (EPSG:3413) around the north pole
    pole = elevation((200, 200), 8)
    yy, xx = np.mgrid[:200, :200]
    pole[(yy - 99.5) ** 2 + (xx - 99.5) ** 2 < 30**2] = -9999
    tiff(g / "rema_pole.tif", pole, from_origin(-1000000, 1000000, 10000, 10000), "EPSG:3031", nodata=-9999)
    tiff(g / "rema_ross.tif", elevation((50, 20), 9), from_origin(-100000, -1500000, 10000, 10000), "EPSG:3031")
    tiff(g / "rema_inner.tif", elevation((10, 10), 10), from_origin(0, 100000, 10000, 10000), "EPSG:3031")
    tiff(g / "arctic.tif", elevation((100, 100), 11), from_origin(-500000, 500000, 10000, 10000), "EPSG:3413")
    # across the antimeridian: a GLO-30 W180 tile (half a pixel over −180°) and a UTM 60N tile
    glo = from_origin(-180.000138888889, 52.000138888889, 1 / 360, 1 / 360)
    tiff(g / "Copernicus_N51_00_W180_00_DEM.tif", elevation((360, 360), 12), glo, "EPSG:4326")
    tiff(g / "utm60.tif", elevation((100, 100), 13), from_origin(600000, 6100000, 1000, 1000), "EPSG:32660")
    tiff(g / "world.tif", elevation((18, 36), 14), from_origin(-180, 90, 10, 10), "EPSG:4326")
    rema = ["rema_pole.tif", "rema_ross.tif", "rema_inner.tif"]
    mixed = ["rema_pole.tif", "arctic.tif", "Copernicus_N51_00_W180_00_DEM.tif", "utm60.tif"]
    for source, names in (("rema", rema), ("mixed", mixed), ("world", ["world.tif"])):
        make_entry(tmp_path / "catalog", source, serve(http, source, {n: read(g / n) for n in names}))
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", ["rema", "mixed", "world"]))

    rows_by = {
        s: {r["filename"]: _bounds(r) for r in rows(work / f"source-store/{s}/bounds.csv")}
        for s in ("rema", "mixed", "world")
    }
    for bounds in rows_by.values():
        for name, b in bounds.items():
            assert all(math.isfinite(v) and abs(v) <= X_MAX for v in b), (name, b)
            assert b[1] < b[3], name
    # the pole inside: every longitude, bottom at the Mercator limit; never swapped
    assert rows_by["rema"]["rema_pole.tif"][::2] == (-X_MAX, X_MAX) and rows_by["rema"]["rema_pole.tif"][1] == -X_MAX
    assert rows_by["mixed"]["arctic.tif"][::2] == (-X_MAX, X_MAX) and rows_by["mixed"]["arctic.tif"][3] == X_MAX
    assert rows_by["world"]["world.tif"] == (-X_MAX, -X_MAX, X_MAX, X_MAX)
    # across ±180: left > right, the true west edge east of 176° and the true east edge west of −176°
    for source, name in (
        ("rema", "rema_ross.tif"),
        ("mixed", "Copernicus_N51_00_W180_00_DEM.tif"),
        ("mixed", "utm60.tif"),
    ):
        left, _, right, _ = rows_by[source][name]
        assert left > 176 / 180 * X_MAX and right < -176 / 180 * X_MAX, (name, left, right)
    assert rows_by["mixed"]["Copernicus_N51_00_W180_00_DEM.tif"][2] == pytest.approx(-179.000139 / 180 * X_MAX, abs=1)
    # beyond 85.0511°S entirely: no row, said so
    assert "rema_inner.tif" not in rows_by["rema"]
    (note,) = rows(work / "reports/rema/skipped.csv")
    assert note["raster"] == "rema_inner.tif" and "outside Web Mercator" in note["reason"]

    # coverage: valid in its CRS; EPSG:3031 kept for the REMA-like source, Web Mercator for the mixed one
    meta, _, geoms, _ = ogr_read(work / "polygon-store/rema.gpkg")
    rema_cover = shapely.from_wkb(geoms[0])
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 3031 and rema_cover.is_valid
    assert not rema_cover.contains(shapely.Point(0, 0))  # the hole at the pole
    meta, _, geoms, _ = ogr_read(work / "polygon-store/mixed.gpkg")
    cover = shapely.from_wkb(geoms[0])
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 3857 and cover.is_valid and not cover.is_empty
    xmin, ymin, xmax, ymax = cover.bounds
    assert -X_MAX - 1 <= xmin and xmax <= X_MAX + 1 and -X_MAX - 1 <= ymin and ymax <= X_MAX + 1
    y52 = math.log(math.tan(math.pi / 4 + math.radians(51.5) / 2)) * 6378137
    assert cover.contains(shapely.Point(-179.5 / 180 * X_MAX, y52))  # the GLO-30 tile, east of −180
    assert cover.contains(shapely.Point(179.9 / 180 * X_MAX, 7.3e6))  # the UTM tile, west of 180
    assert not cover.contains(shapely.Point(0, y52))  # neither is smeared around the globe
    assert cover.contains(shapely.Point(0, -19.5e6)) and cover.contains(shapely.Point(-X_MAX / 2, 19.5e6))  # both poles


def test_a_damaged_raster_in_a_download_is_its_recorded_failure(tmp_path, http):
    g = tmp_path / "gen"
    g.mkdir()
    good = read(tiff(g / "a.tif", elevation((600, 600)), ORIGIN, UTM))
    rasterio.shutil.copy(g / "a.tif", g / "copy.tif", driver="GTiff")  # CreateCopy writes the header first
    header_first = read(g / "copy.tif")
    asc = "ncols 4\nnrows 4\nxllcorner 0\nyllcorner 0\ncellsize 1\nNODATA_value -9999\n" + "1 2 3 4\n" * 4
    files = {
        "cut.zip": zip_of({"a.tif": good, "dgm/b.tif": good[:150], "readme.txt": b"about"}),  # a member cut short
        "junk.zip": zip_of({"zero.tif": b"", "c.asc": asc[:20].encode(), "d.tif": b"<html>busy</html>" * 9}),
        "mid.zip": zip_of({"mid.tif": header_first[: len(header_first) // 2]}),  # its header whole, not its pixels
        "fine.tif": good,
    }
    for source, recipe in (("dmg", {}), ("dmgsliced", {"slice_px": 512})):
        make_entry(tmp_path / "catalog", source, serve(http, source, files), recipe)
    work = tmp_path / "run"
    proc = snakemake(work, *config(tmp_path / "catalog", ["dmg", "dmgsliced"]), check=False)
    assert proc.returncode != 0  # the tarballs refuse incomplete sources

    slices = [f"fine_tile_{x}_{y}.tif" for x in (0, 512) for y in (0, 512)]
    for source, fine in (("dmg", ["fine.tif"]), ("dmgsliced", slices)):  # the rest of the source goes on
        assert [r["filename"] for r in rows(work / f"source-store/{source}/bounds.csv")] == fine
        failed = {r["file"]: r for r in rows(work / f"reports/{source}/failures.csv")}
        assert set(failed) == {"cut.zip", "junk.zip", "mid.zip"}, failed
        assert all(f["step"] == "convert" and "GDAL cannot read this raster" in f["error"] for f in failed.values())
        assert "dgm/b.tif: GDAL cannot read this raster" in failed["cut.zip"]["error"]
        assert "exclude: ['b.tif']" in failed["cut.zip"]["error"] and "readme" not in failed["cut.zip"]["error"]
        for member in ("zero.tif", "c.asc", "d.tif"):
            assert f"{member}: GDAL cannot read this raster" in failed["junk.zip"]["error"]
        assert "mid.tif: GDAL cannot read this raster" in failed["mid.zip"]["error"]
        assert "IReadBlock failed" in failed["mid.zip"]["error"] and "scratch" not in failed["mid.zip"]["error"]


def test_a_container_of_several_rasters_is_its_downloads_failure(tmp_path, http):
    g = tmp_path / "gen"
    g.mkdir()
    for i, table in enumerate(["dtm", "dsm"]):  # a GeoPackage with two elevation tables: which one is the user's call
        creation = dict(RASTER_TABLE=table, APPEND_SUBDATASET="YES" if i else "NO", TILE_FORMAT="TIFF")
        tiff(g / "dem.gpkg", elevation((64, 64), seed=i), ORIGIN, UTM, driver="GPKG", creation=creation)
    good = read(tiff(g / "one.tif", elevation((40, 40)), ORIGIN, UTM))
    files = {"lidar.zip": zip_of({"dem.gpkg": read(g / "dem.gpkg"), "one.tif": good}), "fine.tif": good}
    make_entry(tmp_path / "catalog", "sub", serve(http, "sub", files))
    work = tmp_path / "run"
    assert snakemake(work, *config(tmp_path / "catalog", ["sub"]), check=False).returncode != 0
    assert [r["filename"] for r in rows(work / "source-store/sub/bounds.csv")] == ["fine.tif"]
    (failed,) = rows(work / "reports/sub/failures.csv")
    assert failed["file"] == "lidar.zip" and failed["step"] == "convert"
    assert "dem.gpkg holds 2 rasters (subdatasets GPKG:dem.gpkg:dtm, GPKG:dem.gpkg:dsm)" in failed["error"]
    assert "gdal_translate GPKG:dem.gpkg:dtm dem.tif" in failed["error"] and "exclude: ['dem.gpkg']" in failed["error"]
