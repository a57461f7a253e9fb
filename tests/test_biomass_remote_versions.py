"""A tile read in place is read at the version its preparation checked, or the county fails saying so:
a remote file replaced between the preparation and a county's reads, or during them, over the project's
HTTP server; a server that cannot vouch for its versions gets its tile copied instead; and the answers
GDAL itself refuses."""

import json
import time
from email.utils import formatdate

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.errors
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

from tilewise.biomass import tiles
from tilewise.shared.errors import TilewiseError
from tilewise_demo.rasters import write_band

from support.config import download_settings
from support.httpserver import Fault
from support.mini_state import Mini

SIZE, BLOCK = 1024, 256


def settings() -> tiles.TileSettings:
    return tiles.TileSettings("DEFLATE", False, 900, download_settings())


def tile_bytes(tmp_path, shift: int, size: int = SIZE) -> tuple[bytes, np.ndarray]:
    """An uncompressed, tiled WorldCover-like tile whose every pixel tells its place (`shift`: another version)."""
    rows, cols = np.indices((size, size))
    data = ((rows // 7 + cols * 3 + shift) % 250 + 1).astype(np.uint8)
    path = write_band(
        tmp_path / f"v{shift}_{size}.tif",
        data,
        "EPSG:4326",
        from_origin(6.0, 1.0, 1 / 12000, 1 / 12000),
        nodata=0,
        compress="NONE",
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
    )
    return path.read_bytes(), data


def prepared(tmp_path, http, body: bytes) -> dict:
    """The tile's preparation (convert_tile), as the county's tile row sees it afterwards."""
    http.files["/wc.tif"] = body
    r = {"product": "worldcover", "key": "N00E006", "href": http.url("wc.tif"), "counties": "99001", "sign": "none"}
    r |= {"window_lonlat": None, "manifest": str(tmp_path / "N00E006.json"), "tif": str(tmp_path / "N00E006.tif")}
    record = tiles.prepare_tile(r, tmp_path / "N00E006.tif", tmp_path / "N00E006.json", settings(), tmp_path / "st")
    assert record["status"] == "ok", record
    return r


def county_reads(row: dict) -> tuple[list[dict], np.ndarray]:
    """A county's in-place reads, block by block, as process_county makes them."""
    rows = tiles.county_read_paths([row], settings(), tiles.Path("st"))
    out = np.zeros((SIZE, SIZE), np.uint8)
    with rasterio.open(rows[0]["path"]) as ds:
        for r in range(0, SIZE, BLOCK):
            for c in range(0, SIZE, BLOCK):
                out[r : r + BLOCK, c : c + BLOCK] = ds.read(1, window=Window(c, r, BLOCK, BLOCK))
    return rows, out


VALIDATORS = {
    "strong ETag": {"etag": "strong"},
    "weak ETag and Last-Modified": {"etag": "weak"},
    "Last-Modified only": {"etag": ""},
}


@pytest.mark.parametrize("other_length", [False, True], ids=["same length", "other length"])
@pytest.mark.parametrize("validators", VALIDATORS)
def test_a_tile_replaced_after_its_preparation_fails_the_county_and_is_prepared_again(
    tmp_path, http, validators, other_length
):
    for name, value in VALIDATORS[validators].items():
        setattr(http, name, value)
    old, _ = tile_bytes(tmp_path, 0)
    new, _ = tile_bytes(tmp_path, 1, SIZE + 256 if other_length else SIZE)
    row = prepared(tmp_path, http, old)
    record = json.loads(tiles.Path(row["manifest"]).read_text())
    assert record["read"] == "in_place" and record["remote_version"]["length"] == len(old)
    http.files["/wc.tif"] = new
    with pytest.raises(TilewiseError) as failed:
        county_reads(row)
    message = str(failed.value)
    assert row["href"] in message and "changed since its tile was prepared" in message
    assert f"length {len(old)}" in message and f"length {len(new)}" in message and "run the workflow again" in message
    # the next run prepares the tile again (its failed attempt is a new param of convert_tile), then reads it
    marked = tiles.read_manifest(row["manifest"])
    assert marked["status"] == "failed" and marked["failed_attempts"] == 1 and marked["error"] == message
    assert tiles.prepare_tile(row, tiles.Path(row["tif"]), tiles.Path(row["manifest"]), settings(), tmp_path / "st")[
        "remote_version"
    ]["length"] == len(new)


@pytest.mark.parametrize("other_length", [False, True], ids=["same length", "other length"])
def test_a_tile_replaced_during_the_county_reads_fails_it_after_them(tmp_path, http, other_length):
    old, _ = tile_bytes(tmp_path, 0)
    new, _ = tile_bytes(tmp_path, 1, SIZE + 256 if other_length else SIZE)
    row = prepared(tmp_path, http, old)
    # the county's header read and first block reads get the old version, the rest the new one
    http.faults["/wc.tif"] = [Fault(times=3), Fault(times=1, replace_with=new)]
    rows, pixels = county_reads(row)  # GDAL mixes the two versions without a word
    with pytest.raises(TilewiseError, match="changed while the county read it"):
        tiles.check_in_place_versions(rows, settings())


def test_an_unchanged_tile_passes_with_one_head_before_and_one_after_the_reads(tmp_path, http):
    body, data = tile_bytes(tmp_path, 0)
    row = prepared(tmp_path, http, body)
    assert tiles.read_manifest(row["manifest"])["remote_version"]["vouched_by"] == "strong ETag"
    asked = len(http.log)
    rows, pixels = county_reads(row)
    tiles.check_in_place_versions(rows, settings())
    assert np.array_equal(pixels, data)
    heads = [r for r in http.log[asked:] if r[1] is None]  # no Range: HEADs (GDAL opens on the first one)
    assert len(heads) == 2


@pytest.mark.parametrize(
    "validators",
    [
        {"etag": "weak", "last_modified": False},
        {"etag": "", "last_modified": False},
        {"etag": "", "date": False},  # an old Last-Modified from a server without a clock (no Date)
    ],
)
def test_a_server_that_cannot_vouch_for_its_versions_gets_its_tile_copied(tmp_path, http, validators):
    for name, value in validators.items():
        setattr(http, name, value)
    old, data = tile_bytes(tmp_path, 0)
    new, _ = tile_bytes(tmp_path, 1)
    row = prepared(tmp_path, http, old)
    record = tiles.read_manifest(row["manifest"])
    assert record["read"] == "convert" and record["verified_pixels_equal"]
    http.files["/wc.tif"] = new  # a new version of the same length: the counties read the copy
    assert np.array_equal(county_reads(row)[1], data)


def test_a_last_modified_of_the_last_minute_does_not_vouch_for_the_bytes(tmp_path, http):
    """A file rewritten within the second of its Last-Modified keeps the date: only an older one vouches."""
    http.etag = ""
    http.modified["/wc.tif"] = formatdate(time.time() - 5, usegmt=True)
    body, _ = tile_bytes(tmp_path, 0)
    assert tiles.read_manifest(prepared(tmp_path, http, body)["manifest"])["read"] == "convert"


def test_an_in_place_tile_prepared_without_a_recorded_version_is_prepared_again(tmp_path, http):
    body, _ = tile_bytes(tmp_path, 0)
    row = prepared(tmp_path, http, body)
    record = tiles.read_manifest(row["manifest"])
    del record["remote_version"]  # as tilewise wrote it before versions were recorded
    tiles.write_manifest(tiles.Path(row["manifest"]), record)
    with pytest.raises(TilewiseError, match="did not record which version"):
        county_reads(row)
    assert tiles.read_manifest(row["manifest"])["failed_attempts"] == 1


@pytest.mark.parametrize(
    "fault", [Fault(times=99, ignore_range=True), Fault(times=1, trim=100)], ids=["200 whole body", "206 short"]
)
def test_gdal_refuses_a_range_answered_with_the_whole_file_or_a_short_body(tmp_path, http, fault):
    body, _ = tile_bytes(tmp_path, 0)
    row = prepared(tmp_path, http, body)
    http.faults["/wc.tif"] = [Fault(times=2), fault]  # the header's reads answered right, then a block's
    with pytest.raises(rasterio.errors.RasterioIOError):
        county_reads(row)


def test_a_state_whose_worldcover_tile_changed_after_its_preparation_fails_then_reruns_on_the_new_version(
    tmp_path, http
):
    """The whole workflow: a state run, the server's WorldCover tile replaced (trees become water), the
    county run again: it fails naming the href; the next plain run prepares the tile again and reads the
    new version."""
    m = Mini(tmp_path / "mini")
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    name = "ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"
    trees = (m.inp / "wc" / name.format(tile="N39W090")).read_bytes()
    http.files["/wc/" + name.format(tile="N39W090")] = trees
    m.build(
        gpd.GeoDataFrame({"parcel_id": ["P"]}, geometry=[shapely.box(-88.29, 40.005, -88.28, 40.012)], crs=4326),
        worldcover=http.url("wc/" + name),
    )
    m.run()
    manifest = m.root / "results/states/mini/tiles/worldcover/N39W090.json"
    assert json.loads(manifest.read_text())["read"] == "in_place" and (m.result()["tree_cover_acres"] > 0).all()
    m.worldcover(80)  # permanent water: another version at the same URL
    http.files["/wc/" + name.format(tile="N39W090")] = (m.inp / "wc" / name.format(tile="N39W090")).read_bytes()
    failed = m.run("--forcerun", "process_county", check=False)  # a county run again (a code change, -f)
    assert failed.returncode != 0
    outcome = json.loads((m.root / "results/states/mini/county_runs/99001.json").read_text())
    assert "changed since its tile was prepared" in outcome["reason"] and http.url("wc/") in outcome["reason"]
    m.run()
    result = m.result()
    assert (result["tree_cover_acres"] == 0).all() and (result["permanent_water_acres"] > 0).all()
