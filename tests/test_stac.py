"""Sentinel-2 from a real STAC API started on 127.0.0.1 (rustac in memory everywhere; stac-fastapi-pgstac,
the Planetary Computer's own backend, on PostGIS where root and the packages are there), serving items
whose assets are the real Sentinel-2 bands of tile 29UNU in ../shared/data plus generated ones; Planetary
Computer signing against a fake SAS token service; and a state run whose Sentinel-2 comes from the API."""

from __future__ import annotations

import json
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pystac
import pystac_client
import pytest
import rasterio
import rasterio.shutil
import yaml

from tilewise.biomass import pc_sign, stac
from tilewise.shared.errors import TilewiseError
from tilewise_demo.state import StateSpec, cdl, counties_and_parcels, fia, worldcover

from conftest import shared, snakemake
from support.services import StacServer

SAFE = "sentinel2/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
R60 = f"{SAFE}/GRANULE/L2A_T29UNU_A038058_20221005T115407/IMG_DATA/R60m"
REAL_ID = "S2A_MSIL2A_20221005T115411_R023_T29UNU_20221005T164454"  # the Planetary Computer's id style
WINDOW = "2022-09-01/2022-10-31"
MAX_CLOUD = 70
BLOB = "http://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/29/U/NU/2022/10/05"
COLLECTION = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "sentinel-2-l2a",
    "description": "Sentinel-2 L2A test items",
    "license": "proprietary",
    "extent": {
        "spatial": {"bbox": [[-180, -90, 180, 90]]},
        "temporal": {"interval": [["2015-06-27T00:00:00Z", None]]},
    },
    "links": [],
}


def _mtd(tag: str) -> str:
    text = shared(f"{SAFE}/MTD_MSIL2A.xml").read_text()
    return text.split(f"<{tag}>", 1)[1].split("<", 1)[0]


@pytest.fixture(scope="module")
def bands(tmp_path_factory) -> dict[str, str]:
    """The real B04, B8A (as B08) and SCL (JPEG2000, 60 m), and B02, B03 made from B04 as tiled GeoTIFFs."""
    real = {"B04": str(shared(f"{R60}/T29UNU_20221005T115411_B04_60m.jp2"))}
    real["SCL"] = str(shared(f"{R60}/T29UNU_20221005T115411_SCL_60m.jp2"))
    out = tmp_path_factory.mktemp("bands")
    # the 60 m product has no B08: the real B8A stands in, under the name of the band it stands for (a file
    # named for another band is refused)
    real["B08"] = str(
        shutil.copy(shared(f"{R60}/T29UNU_20221005T115411_B8A_60m.jp2"), out / "T29UNU_20221005T115411_B08_60m.jp2")
    )
    with rasterio.open(real["B04"]) as red:
        profile = {**red.profile, "driver": "GTiff", "compress": "deflate", "tiled": True}
        profile.pop("quality", None)
        dn = red.read(1).astype("float64")
    for band, factor in (("B02", 0.8), ("B03", 0.9)):  # DN with the +1000 offset, like the real ones
        path = out / f"T29UNU_20221005T115411_{band}_60m.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(dn > 0, dn * factor, 0).astype("uint16"), 1)
        real[band] = str(path)
    return real


def item(item_id, when, cloud, tile, *, style="pc", assets=None, baseline="05.10", applied=None, bbox=None):
    west, south, east, north = bbox or [-9.0, 52.25, -7.36, 53.25]
    props = {"datetime": when, "eo:cloud_cover": cloud, "s2:processing_baseline": baseline}
    if style == "pc":
        props["s2:mgrs_tile"] = tile
    else:  # Earth Search: grid and mgrs extensions, the offset flag
        zone = tile[:-3]
        props |= {
            "grid:code": f"MGRS-{zone}{tile[-3:]}",
            "mgrs:utm_zone": int(zone),
            "mgrs:latitude_band": tile[-3],
            "mgrs:grid_square": tile[-2:],
        }
        if applied is not None:
            props["earthsearch:boa_offset_applied"] = applied
    if assets is None:
        keys = ("B02", "B03", "B04", "B08", "SCL") if style == "pc" else ("blue", "green", "red", "nir", "scl")
        assets = {k: f"https://example.test/{item_id}/{k}.tif" for k in keys}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "bbox": [west, south, east, north],
        "properties": props,
        "links": [],
        "assets": {k: {"href": v, "type": "image/tiff; application=geotiff"} for k, v in assets.items()},
    }


def catalogue(bands: dict[str, str]) -> list[dict]:
    real = item(REAL_ID, _mtd("PRODUCT_START_TIME"), float(_mtd("Cloud_Coverage_Assessment")), "29UNU", assets=bands)
    real["properties"]["s2:processing_baseline"] = _mtd("PROCESSING_BASELINE")
    es = {"style": "es", "baseline": "05.09", "bbox": [-89.9, 43.2, -88.5, 44.2]}
    items = [
        real,
        item("29UNU-cloudier", "2022-09-15T11:54:00Z", 65.0, "29UNU"),
        item("29UNU-over-max", "2022-10-20T11:54:00Z", 90.0, "29UNU"),
        item("29UNU-outside-window", "2022-11-04T11:54:00Z", 3.0, "29UNU"),
        item(
            "29UNU-no-scl",
            "2022-10-10T11:54:00Z",
            1.0,
            "29UNU",
            assets={b: f"https://x/{b}.tif" for b in "B02 B03 B04 B08".split()},
        ),
        item("29UNV-clear-neighbour", "2022-10-02T11:54:00Z", 0.5, "29UNV"),
        # Earth Search style, a tie on cloud cover: the later one wins
        item("S2A_16TCK_20220910_0_L2A", "2022-09-10T16:50:00Z", 12.5, "16TCK", applied=True, **es),
        item("S2B_16TCK_20220925_0_L2A", "2022-09-25T16:50:00Z", 12.5, "16TCK", applied=True, **es),
        item("S2A_16TCK_20221001_0_L2A", "2022-10-01T16:50:00Z", 40.0, "16TCK", applied=True, **es),
        # zone 9 written without its leading zero, offset not removed from the pixels
        item("S2A_9UWV_20220920_0_L2A", "2022-09-20T19:40:00Z", 5.0, "9UWV", applied=False, **es),
        item(
            "33TWM-old-baseline", "2022-09-12T09:50:00Z", 8.0, "33TWM", baseline="03.01", bbox=[14.9, 40.5, 16.2, 41.5]
        ),
    ]
    for i in range(30):  # fillers: the results span several pages at limit=5
        day = datetime(2022, 9, 1, 11, 54, tzinfo=UTC) + timedelta(days=2 * i)
        items.append(item(f"29UNV-filler-{i:02d}", day.isoformat().replace("+00:00", "Z"), 20.0 + i, "29UNV"))
    return items


@pytest.fixture(scope="module", params=["rustac", "pgstac"])
def api(request, bands):
    server = StacServer(COLLECTION, catalogue(bands), backend=request.param)
    yield server.url
    server.stop()


def test_the_server_advertises_what_it_supports(api):
    client = pystac_client.Client.open(api)
    assert client.conforms_to("ITEM_SEARCH")
    rustac = client.id == "stac-server-rs"
    assert client.conforms_to("FILTER") != rustac and client.conforms_to("QUERY") != rustac


def test_the_clearest_item_per_tile_with_its_bands_and_offset(api, bands):
    picks = stac.pick_items(api, "sentinel-2-l2a", WINDOW, MAX_CLOUD, ["T29UNU", "16TCK", "09UWV", "33TWM"], limit=5)
    assert sorted(picks) == ["09UWV", "16TCK", "29UNU", "33TWM"]
    real = picks["29UNU"]
    assert real.item_id == REAL_ID and real.cloud_cover_percent == pytest.approx(59.769726)
    assert real.hrefs == {b: bands[b] for b in stac.BANDS}
    # the offset the picker takes from the baseline is the one the product's own metadata declares
    declared = set(
        re.findall(r"<BOA_ADD_OFFSET band_id=\"\d+\">(-?\d+)<", shared(f"{SAFE}/MTD_MSIL2A.xml").read_text())
    )
    assert declared == {str(real.boa_add_offset_dn)} == {"-1000"}
    tie = picks["16TCK"]
    assert tie.item_id == "S2B_16TCK_20220925_0_L2A" and tie.boa_add_offset_dn == 0  # later of a tie; ES flag
    assert tie.hrefs["B04"].endswith("/red.tif") and tie.hrefs["SCL"].endswith("/scl.tif")
    assert picks["09UWV"].boa_add_offset_dn == -1000 and picks["33TWM"].boa_add_offset_dn == 0
    # a lower maximum drops the real 59.8 % item; a later window reaches the 3 % one
    assert stac.pick_items(api, "sentinel-2-l2a", WINDOW, 50, ["29UNU"]) == {}
    later = stac.pick_items(api, "sentinel-2-l2a", "2022-11-01/2022-11-30", 50, ["29UNU"])
    assert later["29UNU"].item_id == "29UNU-outside-window"


@pytest.mark.parametrize("hidden", [[], ["FILTER"], ["FILTER", "QUERY"]], ids=["filter", "query", "client-side"])
def test_every_search_strategy_picks_the_same(api, hidden, caplog):
    client = pystac_client.Client.open(api)
    if hidden != ["FILTER", "QUERY"] and not client.conforms_to("QUERY"):
        pytest.skip("this server has neither the filter nor the query extension")
    for name in hidden:
        client.remove_conforms_to(name)
    caplog.set_level("INFO", logger="tilewise.biomass.stac")
    picks = stac.pick_items(
        api, "sentinel-2-l2a", WINDOW, MAX_CLOUD, ["29UNU", "16TCK", "09UWV"], limit=5, client=client
    )
    assert {t: p.item_id for t, p in picks.items()} == {
        "29UNU": REAL_ID,
        "16TCK": "S2B_16TCK_20220925_0_L2A",
        "09UWV": "S2A_9UWV_20220920_0_L2A",
    }
    how = {0: "by filter", 1: "by query", 2: "neither the filter nor the query extension"}[len(hidden)]
    assert how in caplog.text


def test_item_tiles_and_offsets():
    assert stac.normalize_tile("T29UNU") == stac.normalize_tile("mgrs-29unu") == "29UNU"
    assert stac.item_tile({"mgrs:utm_zone": 9, "mgrs:latitude_band": "U", "mgrs:grid_square": "WV"}) == "09UWV"
    assert stac.boa_offset_dn({"s2:processing_baseline": "05.11"}) == -1000
    assert stac.boa_offset_dn({"s2:processing_baseline": "02.14"}) == 0
    assert stac.boa_offset_dn({"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}) == 0
    assert stac.boa_offset_dn({"processing:version": "05.10"}) == -1000  # CDSE's property
    with pytest.raises(TilewiseError, match=r"^STAC item x: neither s2:processing_baseline nor processing:version.*"
                       r"boa_add_offset column"):  # fmt: skip
        stac.boa_offset_dn({}, "STAC item x")
    with pytest.raises(TilewiseError, match=r"processing baseline '5.1' is not one Sentinel-2 writes"):
        stac.boa_offset_dn({"s2:processing_baseline": "5.1"})


def _item(item_id, when="2024-07-01T10:00:00Z", cloud=5.0, *, collection="sentinel-2-l2a", **props):
    """A Planetary-Computer-style item of tile 29UNU with its self link (relative hrefs resolve against it)."""
    hrefs = props.pop("hrefs", {band: f"https://blob.example/{item_id}/{band}.tif" for band in stac.BANDS})
    properties = {"datetime": when, "s2:mgrs_tile": "29UNU", "s2:processing_baseline": "05.10", "eo:cloud_cover": cloud}
    properties.update(props)  # a test's own eo:cloud_cover wins
    url = f"https://stac.example/collections/{collection}/items/{item_id}"
    return pystac.Item.from_dict(
        {
            "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
            "geometry": None, "properties": properties,
            "links": [{"rel": "self", "href": url, "type": "application/geo+json"}],
            "assets": {band: {"href": href} for band, href in hrefs.items()},
        }
    )  # fmt: skip


def _pick(*items, max_cloud=20):
    start, end = stac.parse_interval("2024-06-01/2024-09-30")
    return stac._clearest(items, "29UNU", max_cloud, start, end, "sentinel-2-l2a")


def test_the_pick_keeps_to_the_collection_and_weighs_the_tile_it_holds():
    """A server may ignore `collections`; a granule at a swath's edge holds a sliver of the tile, clear."""
    assert _pick(_item("other", cloud=1.0, collection="sentinel-2-c1-l2a"), _item("own", cloud=10.0)).item_id == "own"
    sliver = _item("sliver", cloud=0.0, **{"s2:nodata_pixel_percentage": 97.0})
    assert _pick(sliver, _item("whole", cloud=1.0, **{"s2:nodata_pixel_percentage": 0.0})).item_id == "whole"
    assert _pick(sliver, _item("cloudy", cloud=19.0)).item_id == "cloudy"  # 81 % of the tile clear against 3 %
    assert _pick(_item("half", cloud=0.0, **{"s2:nodata_pixel_percentage": 40.0})).item_id == "half"  # the only one


def test_a_reprocessed_take_goes_to_its_latest_baseline():
    old = _item("S2A_N0510_take", **{"s2:processing_baseline": "05.10"})
    new = _item("S2A_N0511_take", **{"s2:processing_baseline": "05.11"})
    assert _pick(new, old).processing_baseline == _pick(old, new).processing_baseline == "05.11"
    assert (
        _pick(
            _item("pv_old", **{"s2:processing_baseline": None, "processing:version": "04.00"}),
            _item("pv_new", **{"s2:processing_baseline": None, "processing:version": "05.00"}),
        ).item_id
        == "pv_new"
    )


def test_relative_asset_hrefs_are_the_items_neighbours():
    rel = _item("rel", hrefs={band: f"./{band}.tif" for band in stac.BANDS})
    assert _pick(rel).hrefs["B04"] == "https://stac.example/collections/sentinel-2-l2a/items/B04.tif"
    rel.set_self_href(None)
    with pytest.raises(TilewiseError, match=r"STAC item rel: asset 'B02' has the relative href './B02.tif'"):
        _pick(rel)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"eo:cloud_cover": "5"}, r"eo:cloud_cover is '5', not a percentage"),
        ({"eo:cloud_cover": float("nan")}, r"eo:cloud_cover is nan"),
        ({"eo:cloud_cover": True}, r"eo:cloud_cover is True"),
        ({"eo:cloud_cover": -1}, r"eo:cloud_cover is -1"),
        ({"s2:nodata_pixel_percentage": 101}, r"s2:nodata_pixel_percentage is 101"),
        ({"s2:nodata_pixel_percentage": "0"}, r"s2:nodata_pixel_percentage is '0'"),
        ({"earthsearch:boa_offset_applied": "true"}, r"earthsearch:boa_offset_applied is 'true', not a JSON boolean"),
        ({"earthsearch:boa_offset_applied": 1}, r"earthsearch:boa_offset_applied is 1"),
        ({"earthsearch:boa_offset_applied": "false"}, r"earthsearch:boa_offset_applied is 'false'"),
    ],
)
def test_an_items_numbers_that_are_not_numbers_are_refused_with_its_name(props, message):
    """Read loosely, a string flag applied the offset twice (NDVI 0.71 for 0.45) and NaN cloud won every pick."""
    odd = _item("odd", cloud=1.0, **props)  # the clearest: its offset flag is read
    with pytest.raises(TilewiseError, match=rf"^STAC item odd: {message}"):
        _pick(_item("fine", cloud=2.0), odd)


def test_boolean_offset_flags_are_read_as_given():
    assert _pick(_item("es", **{"earthsearch:boa_offset_applied": True})).boa_add_offset_dn == 0
    assert _pick(_item("es", **{"earthsearch:boa_offset_applied": False})).boa_add_offset_dn == -1000


# --- Planetary Computer signing ---


class TokenService:
    """A fake SAS token endpoint: GET …/token/<account>/<container> -> {"msft:expiry", "token"}."""

    def __init__(self, ttl_seconds: float):
        self.ttl, self.requests = ttl_seconds, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                se = (datetime.now(UTC) + timedelta(seconds=outer.ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")
                body = json.dumps({"msft:expiry": se, "token": f"se={se}&sp=rl&sig=t{len(outer.requests)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/sas/v1/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tokens(monkeypatch):
    from planetary_computer.sas import TOKEN_CACHE
    from planetary_computer.settings import Settings

    service = TokenService(ttl_seconds=3600)
    monkeypatch.setenv("PC_SDK_SAS_URL", service.url)
    Settings.get.cache_clear()  # planetary-computer reads its settings once
    TOKEN_CACHE.clear()
    yield service
    service.close()
    monkeypatch.delenv("PC_SDK_SAS_URL")
    Settings.get.cache_clear()
    TOKEN_CACHE.clear()


def test_hrefs_are_signed_when_opened_and_again_before_the_token_runs_out(tokens):
    href = f"{BLOB}/B04.tif"
    signed = pc_sign.sign_href(href, min_ttl_seconds=900)
    assert signed == href + "?" + signed.split("?")[1] and signed.endswith("sig=t1")
    assert tokens.requests == ["/api/sas/v1/token/sentinel2l2a01/sentinel2-l2"]
    assert pc_sign.sign_href(href, 900) == signed and len(tokens.requests) == 1  # cached, valid long enough
    assert pc_sign.unsigned(signed) == href
    # a job that must stay valid longer than the cached token has left gets a new token
    again = pc_sign.sign_href(signed, min_ttl_seconds=7200)
    assert again.endswith("sig=t2") and again.count("?") == 1  # the old token replaced, not appended
    assert pc_sign.sign_href("/data/B04.jp2", 900) == "/data/B04.jp2"  # not blob storage: left alone
    assert pc_sign.signer("none", 900)(href) == href


class BlobStore:
    """Stands in for Azure blob storage, reached as an HTTP proxy (libcurl's http_proxy): serves byte
    ranges of its files only to requests that carry an unexpired SAS token, and counts them."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.signed, self.refused = files, 0, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, head: bool):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                body = outer.files.get(f"{url.scheme}://{url.netloc}{url.path}")
                expiry = query.get("se", [""])[0]
                if body is None or "sig" not in query or expiry < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"):
                    outer.refused += 1
                    self.send_response(403 if body is not None else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.signed += 1
                start, end = 0, len(body) - 1
                rng = self.headers.get("Range")
                if rng:
                    a, _, b = rng.removeprefix("bytes=").split(",")[0].partition("-")
                    start, end = int(a), min(int(b) if b else end, end)
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                if not head:
                    self.wfile.write(body[start : end + 1])

            def do_GET(self):
                self._answer(head=False)

            def do_HEAD(self):
                self._answer(head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.proxy = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.workflow
def test_a_state_takes_its_sentinel2_from_a_stac_api(tmp_path, bands, http, tokens, monkeypatch):
    """A small state on tile 29UNU: Sentinel-2 picked from the rustac STAC API (the real JPEG2000 bands are
    local files; B02/B03 are COGs in "Planetary Computer blob storage", signed whenever a job opens them;
    a tile's bands go together, so all five are clipped); WorldCover, a COG over HTTP, read in place; a CDL
    in strips over HTTP, clipped by range reads."""
    data = tmp_path / "data"
    spec = StateSpec(
        "94", {"94001": ("Tipp", -8.80, 52.35, -8.65, 52.45), "94003": ("Lim", -8.65, 52.35, -8.50, 52.45)}, 0.012, 4
    )
    (data / "fia").mkdir(parents=True)
    counties_and_parcels(data, spec)
    fia(data, spec)
    wc = "worldcover/ESA_WorldCover_10m_2021_v200_N51W009_Map.tif"
    worldcover(data, spec.box, wc)
    with rasterio.open(data / wc) as src:  # as a COG, like ESA's
        rasterio.shutil.copy(src, data / "wc_cog.tif", driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE")
    cdl(data, (-9.0, 52.2, -8.2, 52.6), "cdl.tif")  # in strips, wider than the state
    http.files["/wc/ESA_WorldCover_10m_2021_v200_N51W009_Map.tif"] = (data / "wc_cog.tif").read_bytes()
    http.files["/cdl.tif"] = (data / "cdl.tif").read_bytes()
    blob = {f"{BLOB}/{b}.tif": Path(bands[b]).read_bytes() for b in ("B02", "B03")}
    store = BlobStore(blob)
    monkeypatch.setenv("http_proxy", store.proxy)  # GDAL's libcurl reaches "blob storage" through it …
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # … and everything on 127.0.0.1 directly
    tokens.ttl = 600  # tokens live 10 minutes; jobs want 15 minutes: every job gets a fresh one
    assets = {**bands, "B02": f"{BLOB}/B02.tif", "B03": f"{BLOB}/B03.tif"}
    real = catalogue(bands)[0] | {"assets": {k: {"href": v, "type": "image/tiff"} for k, v in assets.items()}}
    server = StacServer(COLLECTION, [real, *catalogue(bands)[1:]], backend="rustac")
    try:
        state = {
            "fips": "94",
            "counties": str(data / "counties.gpkg"),
            "parcels": str(data / "parcels.parquet"),
            "sentinel2": {
                "stac": server.url,
                "collection": "sentinel-2-l2a",
                "datetime": WINDOW,
                "max_cloud_cover": MAX_CLOUD,
                "sign": "planetary-computer",
            },
            "worldcover": http.url("wc/ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"),
            "cdl": [http.url("cdl.tif")],
            "cdl_year": 2023,
            "nass_yields": None,  # the national table
            "fia_plot": str(data / "fia" / "PLOT.csv"),
            "fia_cond": str(data / "fia" / "COND.csv"),
            "fia_tree": str(data / "fia" / "TREE.csv"),
        }
        cfg = tmp_path / "eire.yaml"
        cfg.write_text(yaml.safe_dump({"state": "eire", "states": {"eire": state}}))
        work = tmp_path / "run"
        snakemake(work, "--configfile", str(cfg))
    finally:
        server.stop()
        store.close()
    out = work / "results/states/eire"
    tiles = pd.read_csv(out / "index/tiles.csv", dtype=str)
    s2 = tiles[tiles["product"] == "sentinel2"].set_index("band")
    assert set(s2["tile"]) == {"29UNU"} and (s2["date"] == "20221005").all()  # the real item, the clearest
    assert s2.loc["B04", "href"] == bands["B04"] and s2.loc["B02", "href"] == f"{BLOB}/B02.tif"  # unsigned
    assert (s2["boa_add_offset_dn"].astype(float) == -1000).all() and (s2["sign"] == "planetary-computer").all()
    manifests = {p.stem: json.loads(p.read_text()) for p in (out / "tiles").rglob("*.json")}
    read = {k: m["read"] for k, m in manifests.items()}
    assert {read[f"29UNU_20221005_{b}"] for b in stac.BANDS} == {"clip"}  # cut to the state, on one window
    assert {tuple(manifests[f"29UNU_20221005_{b}"]["window_px"]) for b in ("B02", "B03", "B04", "B08")} == {
        tuple(manifests["29UNU_20221005_B04"]["window_px"])
    }
    assert manifests["29UNU_20221005_B02"]["network_bytes"] > 0  # range reads of the signed blob
    assert read["N51W009"] == "in_place" and read["cdl"] == "clip"
    assert "sig=" not in json.dumps(manifests) and "sig=" not in (out / "index/tiles.csv").read_text()
    assert store.signed > 0 and store.refused == 0  # every blob read carried a valid token
    # the two tile jobs that open blobs (B02, B03) each signed: tokens live shorter than a job wants (the
    # blob store gives no validators, so each is converted without asking its siblings)
    assert len(tokens.requests) >= 2
    parcels = pd.read_parquet(out / "parcels.parquet")
    assert parcels["s2_tile"].eq("29UNU").all() and parcels["ndvi_mean_unitless"].notna().mean() > 0.8
    assert (pd.read_csv(out / "county_summary.csv")["read_bytes"] > 0).all()


# a PC id (T-tile), an Earth Search id (S2B_29UNV_..._L2A), tile properties and an Earth Search folder
_OTHER_TILE = [
    ({"grid:code": "MGRS-29UNV"}, None, r"grid:code names tile 29UNV"),
    ({"mgrs:utm_zone": 29, "mgrs:latitude_band": "U", "mgrs:grid_square": "NV"}, None, r"mgrs:\* names tile 29UNV"),
    ({}, "S2A_MSIL2A_20240701T112121_N0510_R037_T29UNV_20240701T150000", r"its id names tile 29UNV"),
    ({"s2:mgrs_tile": None, "grid:code": "MGRS-29UNU"}, "S2B_29UNV_20240701_0_L2A", r"its id names tile 29UNV"),
    ({"s2:mgrs_tile": "29UNV", "grid:code": "MGRS-29UNU"}, None, r"s2:mgrs_tile names tile 29UNV"),
]


@pytest.mark.parametrize(("props", "item_id", "message"), _OTHER_TILE)
def test_an_item_that_names_two_tiles_is_refused(props, item_id, message):
    """Which tile its pixels cover cannot be told: picked for the one, it lays the other's fields on ours."""
    with pytest.raises(TilewiseError, match=rf"^STAC item \S+: .*{message}.*29UNU"):
        _pick(_item(item_id or "two", **props))


def test_an_asset_in_another_tiles_folder_or_file_is_refused():
    es = "https://e84.example/sentinel-s2-l2a-cogs/29/U/NV/2024/7/S2B_29UNV_20240701_0_L2A/{}.tif"
    pc = "https://pc.example/T29UNU/L2A_T29UNV_A047_20240701T1130/IMG_DATA/R10m/T29UNV_20240701T112121_{}_10m.tif"
    for template in (es, pc):
        hrefs = {band: template.format(band) for band in stac.BANDS}
        with pytest.raises(TilewiseError, match=r"^STAC item S2B_29UNU_20240701_0_L2A: asset 'B02' .* tile 29UNV"):
            _pick(_item("S2B_29UNU_20240701_0_L2A", hrefs=hrefs))
    one = {band: es.replace("NV", "NU").format(band) for band in stac.BANDS} | {"B08": es.format("B08")}
    with pytest.raises(TilewiseError, match=r"asset 'B08' .* tile 29UNV"):
        _pick(_item("S2B_29UNU_20240701_0_L2A", hrefs=one))
    own = {band: es.replace("NV", "NU").format(band) for band in stac.BANDS}
    agreeing = _item("S2B_29UNU_20240701_0_L2A", **{"grid:code": "MGRS-29UNU", "mgrs:utm_zone": 29}, hrefs=own)
    assert _pick(agreeing).item_id == "S2B_29UNU_20240701_0_L2A"


def _scaled(item, scale, offset):
    for band in ("B02", "B03", "B04", "B08"):
        item.assets[band].extra_fields["raster:bands"] = [{"nodata": 0, "scale": scale, "offset": offset}]
    return item


@pytest.mark.parametrize(
    ("props", "scale", "offset", "message"),
    [
        ({}, 0.0001, 0.0, r"offset 0.0 \(0 DN\), not the −1000 DN of processing baseline 05.10"),
        ({"s2:processing_baseline": "02.14"}, 0.0001, -0.1, r"offset -0.1 \(−1000 DN\), not the 0 DN"),
        ({"s2:processing_baseline": "04.00"}, 0.0001, 0.1, r"offset 0.1 \(1000 DN\)"),
        ({}, 0.001, -1.0, r"scale 0.001, not 0.0001"),
        ({"earthsearch:boa_offset_applied": True}, 0.00001, -0.1, r"scale 1e-05, not 0.0001"),
    ],
)
def test_band_assets_that_scale_or_offset_otherwise_are_refused(props, scale, offset, message):
    """raster:bands say what the pixels hold: an offset already removed, read again, shifts every band 1000 DN."""
    with pytest.raises(TilewiseError, match=rf"^STAC item odd: asset 'B02' raster:bands {message}"):
        _pick(_scaled(_item("odd", **props), scale, offset))


def test_band_assets_that_scale_and_offset_alike_are_read():
    assert _pick(_scaled(_item("pc"), 0.0001, -0.1)).boa_add_offset_dn == -1000
    assert _pick(_scaled(_item("old", **{"s2:processing_baseline": "03.01"}), 0.0001, 0.0)).boa_add_offset_dn == 0
    # Earth Search writes its collection's −0.1 on every item, flag or not: its flag is what it did
    flagged = _scaled(_item("es", **{"earthsearch:boa_offset_applied": True}), 0.0001, -0.1)
    assert _pick(flagged).boa_add_offset_dn == 0


# --- paging ---


GEOJSON, METHODS = "application/geo+json", ("GET", "POST")


class PagingAPI:
    """A STAC API on 127.0.0.1 (no filter, no query) whose /search serves `pages` in turn: each a list of
    (item id, cloud cover) and the page number its `next` link names (None: none), with `matched` as
    numberMatched (or context.matched) on every page. After 50 searches it serves an empty page, so a
    client that follows a looping link ends."""

    def __init__(self, pages: list[tuple[list[tuple[str, float]], int | None]], matched=None, context=False):
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.do_GET()

            def do_GET(self):
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                if urlsplit(self.path).path == "/":
                    return self.answer({
                        "type": "Catalog", "id": "odd", "description": "odd", "stac_version": "1.0.0",
                        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
                        "links": [{"rel": r, "href": f"{base}/"} for r in ("self", "root")]
                        + [{"rel": "search", "href": f"{base}/search", "type": GEOJSON, "method": m} for m in METHODS],
                    })  # fmt: skip
                outer.hits += 1
                number = int(parse_qs(urlsplit(self.path).query).get("page", ["0"])[0])
                features, after = pages[number] if outer.hits <= 50 else ([], None)
                following = [] if after is None else [after]
                links = [{"rel": "next", "href": f"{base}/search?page={n}", "method": "GET"} for n in following]
                body = {"type": "FeatureCollection", "features": [_item(i, cloud=c).to_dict() for i, c in features]}
                count = {"context": {"matched": matched}} if context else {"numberMatched": matched}
                body |= {"links": links} | count
                return self.answer(body)

            def answer(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def pick(self):
        try:
            return stac.pick_items(self.url, "sentinel-2-l2a", "2024-06-01/2024-09-30", 20, ["29UNU"])
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()


A, B, C = [("a1", 9.0), ("a2", 8.0)], [("b1", 7.0)], [("c1", 1.0)]  # c1, the clearest, last


@pytest.mark.parametrize(
    ("pages", "matched", "context", "message"),
    [
        ([(A, 0)], None, False, r"page 2 of the search .* repeats items of earlier pages: its `next` link loops"),
        ([(A, 1), (B, 0), (C, None)], None, False, r"page 3 of the search .* repeats items"),
        ([(A, 1), (A, 2), (C, None)], 4, False, r"page 2 of the search .* repeats items"),
        ([(A, None)], 4, False, r"says 4 items match \(numberMatched\) but its pages served 2: paging stopped early"),
        ([(A, 1), (B, None)], 4, True, r"says 4 items match \(numberMatched\) but its pages served 3"),
        ([(A, 1), (A[:1] + B, None)], 4, False, r"says 4 items match \(numberMatched\) but its pages served 3"),
    ],
)
def test_paging_that_loops_or_stops_early_is_refused(pages, matched, context, message):
    """Followed as given, a looping `next` link never ends (or picks from the pages served) and paging that
    stops short of numberMatched may leave the clearest item unseen: the cloudier one is picked without a word."""
    with pytest.raises(TilewiseError, match=rf"^http://127.0.0.1:\d+/search: .*{message}"):
        PagingAPI(pages, matched, context).pick()


def test_paging_reads_every_page_once():
    """An item served on two pages (a server whose order shifted) is one item; the clearest is on the last page."""
    assert PagingAPI([(A, 1), (A[1:] + B, 2), (C, None)], matched=4).pick()["29UNU"].item_id == "c1"
    assert PagingAPI([(A, 1), (C, None)], matched=None).pick()["29UNU"].item_id == "c1"
    assert PagingAPI([(A + C, None)], matched=2).pick()["29UNU"].item_id == "c1"  # numberMatched low: all were read


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"s2:mgrs_tile": 29}, r"s2:mgrs_tile is 29, not an MGRS tile"),
        ({"s2:mgrs_tile": "29-UNU"}, r"s2:mgrs_tile is '29-UNU', not an MGRS tile"),
        ({"s2:mgrs_tile": None, "grid:code": "MGRS-99UNU"}, r"grid:code is 'MGRS-99UNU', not an MGRS tile"),
        ({"mgrs:utm_zone": 0, "mgrs:latitude_band": "U", "mgrs:grid_square": "NU"}, r"mgrs:\* is '0UNU', not an MGRS"),
    ],
)
def test_an_item_whose_tile_is_not_an_mgrs_tile_is_refused_with_its_name(props, message):
    """It crashed the search with a bare AttributeError or ValueError that named neither the item nor the key."""
    with pytest.raises(TilewiseError, match=rf"^STAC item odd: {message}.* fix the catalogue"):
        _pick(_item("fine"), _item("odd", **props))


@pytest.mark.parametrize(
    ("props", "max_cloud"),
    [
        ({"s2:nodata_pixel_percentage": 100, "eo:cloud_cover": 0.0}, 20),  # a granule that misses the tile
        ({"s2:nodata_pixel_percentage": 100.0, "eo:cloud_cover": 3.0}, 20),
        ({"eo:cloud_cover": 100}, 100),  # all cloud, under a max of 100
        ({"s2:nodata_pixel_percentage": 50.0, "eo:cloud_cover": 100.0}, 100),
    ],
)
def test_an_item_with_no_clear_share_of_the_tile_is_no_pick(props, max_cloud):
    """Picked, it served the tile with nothing to read: its counties passed the index as reached and their
    parcels got no index, as if every summer day were cloudy. Without it the tile is unserved, as it is."""
    assert _pick(_item("none", **props), max_cloud=max_cloud) is None
    assert _pick(_item("none", **props), _item("some", cloud=99.0), max_cloud=100).item_id == "some"


_SAFE = (
    "https://pc.example/sentinel2-l2/29/U/NU/2024/07/01/S2A_MSIL2A_20240701T112121_{n}_R037_T29UNU_20240701T150000.SAFE/"
    "GRANULE/L2A_T29UNU_A036/IMG_DATA/R10m/T29UNU_20240701T112121_{band}_10m.tif"
)


@pytest.mark.parametrize(
    ("item_id", "name", "baseline", "message"),
    [
        ("S2A_MSIL2A_20240701T112121_N0212_R037_T29UNU_20240701T150000", "N0510", "05.10", r"its id names N0212"),
        ("S2A_MSIL2A_20240701T112121_N0510_R037_T29UNU_20240701T150000", "N0510", "02.14", r"its id names N0510"),
        ("pc", "N0400", "03.01", r"asset 'B02' names N0400"),
        ("pc", "N0300", "04.00", r"asset 'B02' names N0300"),
        ("pc", "N0511", "05.10", r"asset 'B02' names N0511"),  # a reprocessed take's files under the old one's item
    ],
)
def test_an_item_whose_id_or_files_name_another_baseline_is_refused(item_id, name, baseline, message):
    """The property and the product's name disagree on the baseline, and so maybe on the −1000 DN offset."""
    hrefs = {band: _SAFE.format(n=name, band=band) for band in stac.BANDS}
    odd = _item(item_id, hrefs=hrefs, **{"s2:processing_baseline": baseline})
    with pytest.raises(
        TilewiseError, match=rf"^STAC item {item_id}: {message}, not its s2:processing_baseline {baseline}"
    ):
        _pick(odd)
    assert _pick(_item("agreeing", hrefs=hrefs, **{"s2:processing_baseline": f"{name[1:3]}.{name[3:]}"})) is not None


_ES = "https://e84.example/sentinel-s2-l2a-cogs/29/U/NU/2024/{month}/S2B_29UNU_{day}_0_L2A/{band}.tif"


@pytest.mark.parametrize(
    ("hrefs", "said"),
    [
        ({band: _ES.format(month=6, day="20240615", band=band) for band in stac.BANDS}, "20240615"),
        ({band: _ES.format(month=7, day="20240701", band=band) for band in stac.BANDS}
         | {"SCL": _ES.format(month=6, day="20240615", band="SCL")}, "20240615"),  # another day's clouds
        ({band: _SAFE.format(n="N0510", band=band).replace("20240701", "20240702") for band in stac.BANDS}, "20240702"),
    ],
)  # fmt: skip
def test_an_asset_in_another_days_folder_or_file_is_refused(hrefs, said):
    """Earth Search names the day in the folder alone (B04.tif): the file-name check of the catalog cannot see it."""
    odd = _item("S2B_29UNU_20240701_0_L2A", "2024-07-01T11:30:00Z", hrefs=hrefs)
    with pytest.raises(TilewiseError, match=rf"^STAC item S2B_29UNU_20240701_0_L2A: asset '\w+' .* names {said}, not"):
        _pick(odd)


def test_an_asset_whose_folder_names_its_day_and_the_day_it_was_processed_is_read():
    """The product name holds the sensing time and the processing time (the next day, here)."""
    hrefs = {b: _SAFE.format(n="N0510", band=b).replace("20240701T150000", "20240702T010000") for b in stac.BANDS}
    picked = stac._clearest([_item("pc", "2024-07-01T11:21:21Z", hrefs=hrefs)], "29UNU", 20,
                            *stac.parse_interval("2024-06-01/2024-09-30"), "sentinel-2-l2a")  # fmt: skip
    assert picked.item_id == "pc"
