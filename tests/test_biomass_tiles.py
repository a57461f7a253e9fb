"""Tiles read where they live (over the project's HTTP server, counting the bytes it serves), clipped by
range reads, downloaded and converted, or failed with their reason; and when a tile is reclaimed."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import shapely
from rasterio.transform import from_origin

from tilewise.biomass import outcomes, tiles
from tilewise.shared import gdal_vsi
from tilewise.shared.geometry import to_crs
from tilewise_demo.rasters import write_band

from conftest import shared
from support.blocks import read_touched_blocks
from support.config import download_settings
from support.httpserver import Fault, Server, start

WORLDCOVER = "landcover/esa_worldcover/ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
S2_B04 = (
    "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE/GRANULE/"
    "L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m/T29UNU_20221005T115411_B04_60m.jp2"
)
SAO_TOME = (6.45, 0.10, 6.80, 0.45)  # lon/lat box on the real WorldCover tile


def settings(**changes) -> tiles.TileSettings:
    base = {
        "codec": "DEFLATE",
        "local_copy": False,
        "signed_href_min_ttl_seconds": 900,
        "download": download_settings(),
    }
    return tiles.TileSettings(**{**base, **changes})


def row(href, product="worldcover", key=None, window=None, counties="99001"):
    key = key or ("29UNU_20221005_B04" if product == "sentinel2" else "N00E006")
    r = {"product": product, "key": key, "href": href, "counties": counties, "sign": "none", "window_lonlat": window}
    if product == "sentinel2":  # keys are {tile}_{date}_{band}, as the index writes them
        r |= dict(zip(("tile", "date", "band"), key.split("_"), strict=True))
    return r


def prepare(tmp_path, r, **changes) -> dict:
    tif = tmp_path / "tiles" / r["product"] / f"{r['key']}.tif"
    return tiles.prepare_tile(r, tif, tmp_path / f"{r['key']}.json", settings(**changes), tmp_path / "states")


def test_a_remote_cog_is_read_in_place_by_blocks(tmp_path, http):
    body = shared(WORLDCOVER).read_bytes()  # the real 36000² WorldCover COG, 2.5 MB
    http.files["/wc.tif"] = body
    record = prepare(tmp_path, row(http.url("wc.tif")))
    assert record["status"] == "ok" and record["read"] == "in_place" and record["bytes"] == 0
    assert record["remote_bytes"] == len(body)
    # the manifest says what the check cost, and it is what the server sent: the header only
    assert record["network_bytes"] == http.body_bytes and 0 < http.body_bytes <= 64 * 1024
    assert not (tmp_path / "tiles").exists() or not any((tmp_path / "tiles").rglob("*.tif"))

    # a county reads it where it lives, a few blocks for two parcels
    manifest = tmp_path / "N00E006.json"
    (read,) = tiles.county_read_paths([{**row(http.url("wc.tif")), "manifest": manifest}], settings(), tmp_path)
    assert read["path"] == f"/vsicurl/{http.url('wc.tif')}"
    http.body_bytes = 0
    parcels = np.array([shapely.box(6.60, 0.30, 6.61, 0.31), shapely.box(6.70, 0.20, 6.71, 0.21)])
    with rasterio.open(read["path"]) as ds:
        mosaic = read_touched_blocks(ds, 1, shapely.bounds(to_crs(parcels, 4326, ds.crs)), fill=0)
    assert 0 < mosaic.bytes_read <= http.body_bytes < 0.05 * len(body)
    assert tiles.tile_size_bytes(read["path"]) == len(body)  # what the county reports as the tile's bytes


def _s3_endpoint(http, monkeypatch):
    """GDAL's S3 client pointed at the project's HTTP server (path-style, unsigned)."""
    for name, value in {
        "AWS_S3_ENDPOINT": f"127.0.0.1:{http.port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_NO_SIGN_REQUEST": "YES",
    }.items():
        monkeypatch.setenv(name, value)


def test_an_s3_cog_is_read_in_place_through_vsis3(tmp_path, http, monkeypatch):
    body = shared(WORLDCOVER).read_bytes()
    http.files["/esa-worldcover/v200/wc.tif"] = body
    _s3_endpoint(http, monkeypatch)
    record = prepare(tmp_path, row("s3://esa-worldcover/v200/wc.tif"))
    assert record["read"] == "in_place" and record["remote_bytes"] == len(body)
    assert 0 < record["network_bytes"] == http.body_bytes <= 64 * 1024
    (read,) = tiles.county_read_paths(
        [{**row("s3://esa-worldcover/v200/wc.tif"), "manifest": tmp_path / "N00E006.json"}], settings(), tmp_path
    )
    assert read["path"] == "/vsis3/esa-worldcover/v200/wc.tif"


def test_the_bands_of_a_sentinel2_tile_are_read_in_place_together_or_not_at_all(tmp_path, http):
    # a county reads a tile's bands on one grid and block layout: one local band converts them all
    data = np.arange(1024 * 1024, dtype=np.uint16).reshape(1024, 1024) % 5000
    for band in ("B04", "B08"):
        path = write_band(tmp_path / f"{band}.tif", data, "EPSG:32616", from_origin(300_000, 4_500_000, 10, 10))
        with rasterio.open(path) as src:
            rasterio.shutil.copy(src, tmp_path / f"{band}_cog.tif", driver="COG", BLOCKSIZE=256)
        http.files[f"/{band}.tif"] = (tmp_path / f"{band}_cog.tif").read_bytes()
    remote = [http.url("B04.tif"), http.url("B08.tif")]
    group = row(remote[0], "sentinel2", "16TCK_20240815_B04") | {"group_hrefs": remote}
    assert prepare(tmp_path, group)["read"] == "in_place"
    group["group_hrefs"] = [remote[0], str(tmp_path / "B08.tif")]
    assert prepare(tmp_path, group)["read"] == "convert"


def test_local_copy_clips_a_remote_cog_by_window(tmp_path, http):
    body = shared(WORLDCOVER).read_bytes()
    http.files["/wc.tif"] = body
    window = " ".join(str(v) for v in SAO_TOME)
    record = prepare(tmp_path, row(http.url("wc.tif"), window=window), local_copy=True)
    assert record["read"] == "clip" and record["verified_pixels_equal"]
    assert record["network_bytes"] == http.body_bytes < len(body)
    with rasterio.open(record["path"]) as ds:
        assert ds.block_shapes == [(512, 512)]
        w, s, e, n = ds.bounds
        eps = 1e-9  # degrees: the pixel edges' floating-point error
        assert w <= SAO_TOME[0] + eps and e >= SAO_TOME[2] - eps and s <= SAO_TOME[1] + eps and n >= SAO_TOME[3] - eps
        assert (e - w) < 0.4  # of the tile's 3°


def test_a_striped_national_raster_is_clipped_by_range_reads(tmp_path, http):
    # a CDL-like raster in strips (no internal tiles) far larger than the state that reads it
    rng = np.random.default_rng(5)
    data = rng.integers(1, 60, (3000, 4000), dtype=np.uint8)
    path = write_band(tmp_path / "cdl.tif", data, "EPSG:5070", from_origin(300_000, 1_900_000, 30, 30), nodata=0)
    http.files["/cdl.tif"] = path.read_bytes()
    with rasterio.open(path) as ds:
        assert not ds.profile["tiled"]
    state = to_crs(shapely.box(330_000, 1_830_000, 360_000, 1_850_000), 5070, 4326, densify=100).bounds
    record = prepare(tmp_path, row(http.url("cdl.tif"), "cdl", "cdl", " ".join(map(str, state))))
    assert record["read"] == "clip" and record["verified_pixels_equal"]
    width, height = record["window_px"][2:]
    assert width * height < 0.1 * data.size  # clipped to the state, not the country
    assert record["network_bytes"] == http.body_bytes < 0.5 * len(http.files["/cdl.tif"])  # strips, not the file


def test_a_remote_jpeg2000_is_downloaded_then_converted(tmp_path, http):
    jp2 = shared(S2_B04).read_bytes()
    http.files["/B04.jp2"] = jp2
    record = prepare(tmp_path, row(http.url("B04.jp2"), "sentinel2", "29UNU_20221005_B04"))
    assert record["read"] == "convert" and record["verified_pixels_equal"] and record["remote_bytes"] == len(jp2)
    assert record["network_bytes"] >= len(jp2)  # the download, plus the look at its header
    assert not list((tmp_path / "tiles").rglob("*.download*"))  # the download is gone


def test_a_tile_that_cannot_be_read_records_why_and_runs_again(tmp_path, http):
    record = prepare(tmp_path, row(http.url("missing.tif")))
    assert record["status"] == "failed" and "missing.tif" in record["error"] and record["failed_attempts"] == 1
    assert outcomes.failed_attempts(tmp_path / "N00E006.json") == 1  # the param that reruns it
    with pytest.raises(Exception, match="failed"):
        tiles.county_read_paths(
            [{**row(http.url("missing.tif")), "manifest": tmp_path / "N00E006.json"}], settings(), tmp_path
        )


def test_a_tile_is_reclaimed_once_every_reader_succeeded(tmp_path):
    runs = str(tmp_path / "runs" / "{county}.json")
    (tmp_path / "runs").mkdir()
    rows = []
    for key, readers in (("a", "01001 01003"), ("b", "01003")):
        tif = tmp_path / "states" / "x" / "tiles" / "cdl" / f"{key}.tif"
        tif.parent.mkdir(parents=True, exist_ok=True)
        tif.write_bytes(b"x" * 10)
        rows.append({"tif": str(tif), "counties": readers})
    (tmp_path / "states" / "y" / "tiles" / "cdl").mkdir(parents=True)
    (tmp_path / "states" / "y" / "tiles" / "cdl" / "c.tif.part.tif").write_bytes(b"y" * 7)  # being written
    (tmp_path / "states" / "y" / "tiles" / "cdl" / "c.tif.window.vrt").write_bytes(b"<VRTDataset/>")  # no tile bytes
    assert tiles.tile_bytes_on_disk(tmp_path / "states") == {"x": 20, "y": 7}
    outcomes.write_outcome(tmp_path / "runs" / "01003.json", outcomes.OK, "", 0.0, 0)
    assert tiles.release(rows, runs) == ([rows[1]["tif"]], [rows[0]["tif"]])  # 01001 has not ended yet
    outcomes.write_outcome(tmp_path / "runs" / "01001.json", outcomes.FAILED, "boom", 0.0, 0)
    assert tiles.release(rows, runs) == ([], [rows[0]["tif"]])  # kept for the failed county's rerun
    record = json.loads((tmp_path / "runs" / "01001.json").read_text())
    assert record["failed_attempts"] == 1
    outcomes.write_outcome(tmp_path / "runs" / "01001.json", outcomes.OK, "", 0.0, record["failed_attempts"])
    assert tiles.release(rows, runs) == ([rows[0]["tif"]], [])
    assert outcomes.failed_attempts(tmp_path / "runs" / "01001.json") == 1  # stays: no rerun after success


def test_gdal_paths_of_remote_hrefs():
    assert gdal_vsi.gdal_path("https://h/x.tif") == "/vsicurl/https://h/x.tif"
    assert gdal_vsi.gdal_path("s3://sentinel-cogs/a/b.tif") == "/vsis3/sentinel-cogs/a/b.tif"
    assert gdal_vsi.gdal_path("/data/x.tif") == "/data/x.tif"
    assert gdal_vsi.is_streamable_href("s3://b/k") and not gdal_vsi.is_streamable_href("/data/x.tif")


# --- tiles that are not there: absent (a grid with holes, its server has another tile) or failed ---

WC = "ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"


@pytest.mark.parametrize("local_copy", [False, True])
@pytest.mark.parametrize("status", [404, 410])
@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_a_worldcover_tile_its_server_does_not_publish_is_absent(
    tmp_path, http, monkeypatch, status, local_copy, scheme
):
    _s3_endpoint(http, monkeypatch)
    http.files["/wc/" + WC.format(tile="N00E006")] = shared(WORLDCOVER).read_bytes()
    missing = "/wc/" + WC.format(tile="N03E006")
    http.faults[missing] = [Fault(times=9, method=m, status=status) for m in ("HEAD", "GET")]
    href = (lambda p: http.url(p)) if scheme == "http" else (lambda p: f"s3:/{p}")
    r = row(href(missing), key="N03E006")
    r["window_lonlat"] = "6.1 3.1 6.2 3.2"  # the clip path asks for a window; the read in place does not
    siblings = tiles.sibling_hrefs([r, row(href("/wc/" + WC.format(tile="N00E006")))], r)
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "N03E006.json", settings(local_copy=local_copy), tmp_path, 0, siblings
    )
    assert record["status"] == "ok" and record["read"] == "absent" and record["absent"] is True
    assert f"HTTP {status}" in record["reason"] and "N00E006_Map.tif exists" in record["reason"]
    assert record["failed_attempts"] == 0 and not (tmp_path / "t.tif").exists()
    assert [s for _, _, s in http.requests_for(missing)] == [status]  # asked once, never retried
    # the county reads no WorldCover there, and says so
    assert tiles.county_read_paths([{**r, "manifest": tmp_path / "N03E006.json"}], settings(), tmp_path) == []


@pytest.mark.parametrize(
    "product, status, sibling_served, error",
    [
        ("worldcover", 403, True, r"HTTP 403 Forbidden \(when opening it\)"),  # refused is not missing
        ("worldcover", 503, True, r"HTTP 503 Service Unavailable"),  # transient, retried, never absent
        ("worldcover", 404, False, r"HTTP 404 Not Found, and no other worldcover tile of the state \(1 asked\)"),
        ("sentinel2", 404, True, r"HTTP 404 Not Found; a sentinel2 file the index names must exist"),
        ("cdl", 410, True, r"HTTP 410 Gone; a cdl file the index names must exist"),
    ],
)
def test_a_tile_that_is_not_there_fails_unless_it_is_an_absent_worldcover_tile(
    tmp_path, http, product, status, sibling_served, error
):
    if sibling_served:
        http.files["/other.tif"] = shared(WORLDCOVER).read_bytes()
    http.faults["/gone.tif"] = [Fault(times=9, method=m, status=status) for m in ("HEAD", "GET")]
    r = row(http.url("gone.tif"), product)
    siblings = (http.url("other.tif"),) if product == "worldcover" else ()
    quick = download_settings(attempts=3, backoff_seconds=0.1)  # a 503 is retried: not for a minute here
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "t.json", settings(download=quick), tmp_path, 0, siblings
    )
    assert record["status"] == "failed" and record["failed_attempts"] == 1
    assert re.search(error, record["error"]) and record["error"].startswith(http.url("gone.tif"))
    assert len(http.requests_for("gone.tif")) == (quick.attempts if status == 503 else 1)


def test_a_sibling_on_another_server_or_on_disk_does_not_make_a_404_absent(tmp_path, http):
    other = Server()
    httpd, _ = start(other)
    try:
        other.files["/wc/N00E006.tif"] = shared(WORLDCOVER).read_bytes()
        r = row(http.url("wc/N03E006.tif"), key="N03E006")
        siblings = tiles.sibling_hrefs(
            [r, row(other.url("wc/N00E006.tif")), row(str(shared(WORLDCOVER)), key="N00E006")], r
        )
        assert len(siblings) == 2
        record = tiles.prepare_tile(r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path, 0, siblings)
        assert record["status"] == "failed" and "(0 asked)" in record["error"]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("product", ["worldcover", "sentinel2"])
def test_a_local_tile_that_is_not_there_fails_naming_it(tmp_path, product):
    r = row(str(tmp_path / "nowhere" / "N03E006.tif"), product)
    record = tiles.prepare_tile(r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path)
    assert record["status"] == "failed"
    assert record["error"].startswith(f"{tmp_path / 'nowhere' / 'N03E006.tif'}: the tile does not exist")
    # a local mirror has no say over what ESA publishes: the fix is its server
    assert ("ESA publishes no WorldCover tile over open water" in record["error"]) == (product == "worldcover")


def _class_raster(path, crs, pixel):
    """A small class raster (CDL corn) around Clay County, Kansas, in `crs`."""
    box = to_crs(shapely.box(-97.2, 39.2, -97.0, 39.4), 4326, crs, densify=0.01).bounds
    transform = from_origin(box[0], box[3], pixel, pixel)
    shape = (int((box[3] - box[1]) / pixel), int((box[2] - box[0]) / pixel))
    return write_band(path, np.ones(shape, np.uint8), crs, transform, nodata=0)


@pytest.mark.parametrize(
    ("product", "crs", "pixel", "ok"),
    [
        ("cdl", "EPSG:5070", 30, True),
        ("worldcover", "EPSG:4326", 1 / 12000, True),
        ("cdl", "EPSG:3857", 30, False),
        ("worldcover", "EPSG:3857", 10, False),
        ("cdl", "EPSG:32611", 30, False),  # UTM three zones west of its zone
    ],
)
def test_a_class_raster_that_does_not_keep_areas_fails_its_preparation(tmp_path, product, crs, pixel, ok):
    path = _class_raster(tmp_path / "in.tif", crs, pixel)
    key = "N39W099" if product == "worldcover" else "k"  # the WorldCover tile the raster lies in
    record = prepare(tmp_path, row(str(path), product, key))
    assert (record["status"] == "ok") == ok
    if not ok:
        assert record["error"].startswith(f"{path}: its CRS ({crs}) does not keep areas")
        assert f"gdalwarp -t_srs EPSG:5070 -r near {path} out.tif" in record["error"]
        assert not (tmp_path / "tiles" / product / f"{key}.tif").exists()


@pytest.mark.parametrize(
    ("key", "crs", "pixel", "ok"),
    [
        ("N39W099", "EPSG:4326", 1 / 12000, True),  # a clip of its tile
        ("N39W099", "EPSG:5070", 10, True),  # reprojected: its lon/lat box reaches a little past the tile
        ("N39W096", "EPSG:4326", 1 / 12000, False),  # the tile east of it, by name
        ("N36W099", "EPSG:4326", 1 / 12000, False),  # the tile south
        ("N42W102", "EPSG:5070", 10, False),
        ("S39E099", "EPSG:4326", 1 / 12000, False),  # the hemispheres' letters swapped
    ],
)
def test_a_worldcover_file_of_another_place_than_its_tile_fails_its_preparation(tmp_path, key, crs, pixel, ok):
    """A WorldCover file saved under a neighbour's tile name: the counties read it where its georeferencing
    puts it, and every parcel of the named tile got no land cover and 0 forest acres, without an error."""
    path = _class_raster(tmp_path / f"ESA_WorldCover_10m_2021_v200_{key}_Map.tif", crs, pixel)
    record = prepare(tmp_path, row(str(path), "worldcover", key))
    assert (record["status"] == "ok") == ok, record.get("error")
    if not ok:
        assert record["error"].startswith(f"{path}: WorldCover tile {key} (lon ")
        assert "is georeferenced at lon -97.2" in record["error"] and f"give ESA's tile {key}" in record["error"]
        assert not (tmp_path / "tiles" / "worldcover" / f"{key}.tif").exists()


def _band(folder, band, crs="EPSG:32616", pixel=10, origin=(300_000, 4_500_000), dtype=np.uint16, value=1500):
    size = 120 if pixel < 1 else 1200 // pixel
    return write_band(
        folder / f"{band}.tif", np.full((size, size), value, dtype), crs, from_origin(*origin, pixel, pixel)
    )


@pytest.mark.parametrize(
    ("band", "grid", "error"),
    [
        ("B08", {}, None),
        ("SCL", {"pixel": 20}, None),
        (
            "B02",
            {"crs": "EPSG:4326", "pixel": 0.0001, "origin": (-89.4, 40.6)},
            r"band B02 is in EPSG:4326, not the tile's UTM CRS EPSG:32616",
        ),
        ("B03", {"crs": "EPSG:32615"}, r"band B03 is in EPSG:32615, not the tile's UTM CRS EPSG:32616"),
        ("B08", {"pixel": 20}, r"band B08 \(.*B08.tif\) is not on the grid of B04 .*: pixel size"),
        (
            "SCL",
            {"pixel": 20, "origin": (300_005, 4_500_000)},
            r"band SCL .* is not on the grid of B04 .*not on the band grid",
        ),
    ],
    ids=["b08-ok", "scl-20m-ok", "lon-lat", "other-zone", "nir-at-20m", "scl-off-grid"],
)
def test_a_sentinel2_band_off_its_tiles_grid_fails_its_preparation(tmp_path, band, grid, error):
    b04 = _band(tmp_path, "B04")
    other = _band(tmp_path, band, **grid)
    r = row(str(other), "sentinel2", f"16TCK_20240815_{band}")
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path, bands={"B04": str(b04), band: str(other)}
    )
    assert (record["status"] == "ok") == (error is None), record.get("error")
    if error:
        assert re.search(error, record["error"]) and str(other) in record["error"]


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ((300_000, 4_500_000), True),  # 16TCK's north-west corner
        ((408_600, 4_391_400), True),  # its south-east corner, inside
        ((409_980, 4_500_000), False),  # 16TDK, east of it in zone 16
        ((300_000, 4_600_020), False),  # 16TCL, north of it
        ((180_000, 4_420_000), False),  # 16TBK, west
    ],
    ids=["nw-corner", "se-corner", "tile-east", "tile-north", "tile-west"],
)
@pytest.mark.parametrize("band", ["B04", "B08", "SCL"])
def test_a_sentinel2_band_of_another_tile_of_its_zone_fails_its_preparation(tmp_path, band, origin, ok):
    """Another tile's file catalogued as 16TCK's (same UTM CRS): read where it lies, it gave the counties
    the index sent to 16TCK no index over their parcels, without naming the file."""
    pixel = 20 if band == "SCL" else 10
    b04 = _band(tmp_path / "ref", "B04", origin=origin)
    other = b04 if band == "B04" else _band(tmp_path, band, pixel=pixel, origin=origin)
    r = row(str(other), "sentinel2", f"16TCK_20240815_{band}")
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path, bands={"B04": str(b04), band: str(other)}
    )
    assert (record["status"] == "ok") == ok, record.get("error")
    if not ok:
        assert record["error"].startswith(f"{other}: Sentinel-2 tile 16TCK band {band} covers x {origin[0]}")
        assert "past the tile's footprint x 300000…409800, y 4390200…4500000" in record["error"]


@pytest.mark.parametrize(("origin", "ok"), [((300_000, 4_500_000), True), ((409_800, 4_500_000), False)])
def test_a_coarse_copy_of_a_tile_may_overhang_its_footprint_by_one_of_its_pixels(tmp_path, origin, ok):
    """1,200 m pixels do not divide the tile's 109,800 m: a copy covering it ends 600 m past it (the state
    bench's scaled tiles), which is not another tile's file; the next tile east still is."""
    b04 = write_band(
        tmp_path / "B04.tif", np.full((92, 92), 1500, np.uint16), "EPSG:32616", from_origin(*origin, 1200, 1200)
    )
    r = row(str(b04), "sentinel2", "16TCK_20240815_B04")
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path, bands={"B04": str(b04)}
    )
    assert (record["status"] == "ok") == ok, record.get("error")
    if not ok:
        assert "past the tile's footprint" in record["error"]


@pytest.mark.parametrize(
    ("band", "dtype", "value", "refused"),
    [
        ("B08", np.float32, 0.4, True),  # reflectance already (an Earth Engine or Sentinel Hub FLOAT32 export)
        ("B08", np.float64, 4000.0, True),
        ("B08", np.int16, 4000, True),
        ("B08", np.uint8, 40, True),
        ("SCL", np.float32, 4.0, True),
        ("SCL", np.uint8, 4, False),
        ("B08", np.uint16, 5000, False),
    ],
)
def test_a_sentinel2_band_that_does_not_hold_l2a_integers_fails_its_preparation(tmp_path, band, dtype, value, refused):
    """Bands are divided by 10,000 as L2A DN: a float band holding reflectance would be divided again, and EVI
    and SAVI (whose constants then dominate) come out near 0 while NDVI looks right."""
    b04 = _band(tmp_path, "B04")
    other = _band(tmp_path, band, pixel=20 if band == "SCL" else 10, dtype=dtype, value=value)
    r = row(str(other), "sentinel2", f"16TCK_20240815_{band}")
    record = tiles.prepare_tile(
        r, tmp_path / "t.tif", tmp_path / "t.json", settings(), tmp_path, bands={"B04": str(b04), band: str(other)}
    )
    assert (record["status"] != "ok") == refused, record.get("error")
    if refused:
        assert f"band {band} is {np.dtype(dtype)}, not" in record["error"] and str(other) in record["error"]


def _another_clip(tif, tmp_path):
    """The same raster cut to another window: another tile of the state's, copied over this one."""
    other = prepare(tmp_path / "other", row(str(tmp_path / "in.tif"), product="cdl", key="b", window=KANSAS_WEST))
    shutil.copyfile(other["path"], tif)


def _same_size_other_bytes(tif, _):
    data = bytearray(tif.read_bytes())
    data[-100:] = bytes(255 - b for b in data[-100:])
    st = tif.stat()
    tif.write_bytes(bytes(data))
    os.utime(tif, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # cp -p of a copy written a moment later


KANSAS_WEST = "-97.2 39.2 -97.1 39.4"


@pytest.mark.parametrize(
    "change",
    [
        _another_clip,
        _same_size_other_bytes,
        lambda tif, _: tif.write_bytes(tif.read_bytes()[:-512]),  # truncated
        lambda tif, _: tif.unlink(),  # reclaimed
    ],
    ids=["another_clip", "same_size_other_bytes", "truncated", "deleted"],
)
def test_a_converted_tile_changed_on_disk_is_converted_again_before_a_county_reads_it(tmp_path, change):
    """A failed county keeps its tiles for its rerun; one replaced or edited by hand meanwhile was read as
    it was (another band's tile copied over it gave the county that band's values, exit 0)."""
    _class_raster(tmp_path / "in.tif", "EPSG:5070", 30)
    r = row(str(tmp_path / "in.tif"), product="cdl", key="a", window="-97.1 39.2 -97.0 39.4")
    record = prepare(tmp_path, r)
    tif = Path(record["path"])
    made, stamp = tif.read_bytes(), (tif.stat().st_size, tif.stat().st_mtime_ns)
    untouched = {**r, "manifest": tmp_path / "a.json", "tif": str(tif)}
    tiles.county_read_paths([untouched], settings(), tmp_path)
    assert (tif.stat().st_size, tif.stat().st_mtime_ns) == stamp  # as converted: read as it is
    change(tif, tmp_path)
    (read,) = tiles.county_read_paths([untouched], settings(), tmp_path)
    assert read["path"] == str(tif) and tif.read_bytes() == made
    # converted again, with the time its manifest records: the state's other counties read it as it is
    assert (tif.stat().st_size, tif.stat().st_mtime_ns) == stamp == (record["bytes"], record.get("mtime_ns"))
