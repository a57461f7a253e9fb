"""Faults, hostile input and a full disk: the workflow finishes correctly or says exactly what failed,
and never writes outside its working folder or loses what it already produced."""

import csv
import errno
import gzip
import hashlib
import io
import json
import os
import random
import re
import stat
import tarfile
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import py7zr
import pytest
import rasterio
import shapely
import yaml

from tilewise.biomass.fiadb import REQUIRED, read_table
from tilewise.biomass.tile_index import assign_parcels, load_counties
from tilewise.biomass.vectors import read_vector
from tilewise.shared.errors import TilewiseError
from tilewise.shared.job import disk_full

from conftest import shared, snakemake
from support.catalog import make_entry, serve_tiles, zipped
from support.disk import small_disk
from support.httpserver import Fault
from support.rasterchecks import assert_mapterhorn_cog

pytestmark = pytest.mark.workflow
FAST_DOWNLOADS = {
    "connections": 2,
    "attempts": 3,
    "backoff_seconds": 0.05,
    "max_backoff_seconds": 0.5,
    "connect_timeout_seconds": 2,
    "read_timeout_seconds": 1,
    "max_seconds_per_file": 20,
}


def run(tmp_path, work, sources, extra=None, check=True):
    cfg = {
        "catalog": str(tmp_path / "catalog"),
        "source": sources,
        "state": [],
        "download": FAST_DOWNLOADS,
        **(extra or {}),
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(cfg))
    return snakemake(work, "--configfile", str(tmp_path / "test.yaml"), check=check)


def failures(work, source):
    with open(work / "reports" / source / "failures.csv", newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def test_network_faults_end_as_success_or_a_recorded_failure(tmp_path, http):
    urls = serve_tiles(http, 8)
    paths = [u.split("/", 3)[3] for u in urls]
    faults = {
        paths[0]: Fault(times=1, drop_after=50_000),  # connection dropped mid-body: resumed
        paths[1]: Fault(times=2, status=503),  # 503 without Retry-After: retried
        paths[2]: Fault(times=1, status=503, retry_after="0.2"),
        paths[3]: Fault(times=1, status=429, retry_after="0.2"),
        paths[4]: Fault(times=1, claim_extra=500),  # wrong Content-Length: detected, started over
        paths[5]: Fault(times=1, redirect_to=urls[5] + "?moved"),
        paths[6]: Fault(times=1, stall=2.0),  # slower than the 1 s read timeout once
    }
    for path, fault in faults.items():
        http.faults["/" + path] = fault
    http.faults["/bad/always500.zip"] = Fault(times=100, status=500)
    http.faults["/bad/stalls.zip"] = Fault(times=100, stall=3.0)
    http.files["/bad/always500.zip"] = http.files["/bad/stalls.zip"] = http.files["/" + paths[7]]
    bad = [http.url("bad/always500.zip"), http.url("bad/stalls.zip"), http.url("bad/gone.zip")]
    make_entry(tmp_path / "catalog", "net", urls + bad)
    work = tmp_path / "run"
    proc = run(tmp_path, work, "net", check=False)
    assert proc.returncode != 0  # the tarball refuses the incomplete source
    failed = failures(work, "net")
    assert set(failed) == {"always500.zip", "stalls.zip", "gone.zip"}
    assert all(r["step"] == "download" for r in failed.values())
    assert "gave up after 3 attempts: HTTP 500" in failed["always500.zip"]["error"]
    assert "HTTP 404" in failed["gone.zip"]["error"]
    # three attempts each, no more
    assert len(http.requests_for("bad/always500.zip")) == 3 and len(http.requests_for("bad/gone.zip")) == 1
    store = work / "source-store" / "net"
    with open(store / "bounds.csv", newline="") as f:
        names = [r["filename"] for r in csv.DictReader(f)]
    assert names == [f"t{i:03d}.tif" for i in range(8)]
    for name in names:
        assert_mapterhorn_cog(store / name)
    assert not [p for p in work.rglob("*") if p.name.endswith((".part", ".tmp"))]


def _zip_with(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _nested_bomb() -> bytes:
    """A 7z of 40 copies of a zip: the zip unpacks 78× its size, the solid 7z 58× its size."""
    sparse = bytearray(2_000_000)
    sparse[::300] = random.Random(1).randbytes(len(sparse[::300]))
    inner = _zip_with({"x.tif": bytes(sparse)})
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for i in range(40):
            archive.writestr(inner, f"p{i}/inner.zip")
    return buf.getvalue()


def _hostile_7z(name: str) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive._writef(io.BytesIO(b"II*\0" + b"\0" * 64), name)  # bypasses py7zr's own name check
    return buf.getvalue()


def test_hostile_input_is_refused_or_recorded_and_nothing_escapes(tmp_path, http):
    good = serve_tiles(http, 3)[:2]
    tif = http.files["/tiles/t000.zip"]
    with zipfile.ZipFile(io.BytesIO(tif)) as zf:
        raw_tif = zf.read("t000.tif")
    hostile = {
        "slip.zip": _zip_with({"../../escaped.tif": raw_tif}),
        "absolute.zip": _zip_with({str(tmp_path / "outside" / "abs.tif"): raw_tif}),
        "link.zip": _zip_with({"ok.txt": b"x"}, symlink="link.tif"),
        "slip.7z": _hostile_7z("../../escaped7z.tif"),
        "bomb.zip": _zip_with({"zeros.tif": b"\0" * 50_000_000}),  # 50 MB of zeros in ~50 KB
        "nested.7z": _nested_bomb(),  # each archive alone within the 100× cap, the tree ~4,600×
        "noraster.zip": _zip_with({"README.txt": b"no data here"}),
        "truncated.zip": zipped("t.tif", raw_tif)[:5000],
        "corrupt.tif": b"II*\x00" + bytes(range(256)) * 40,
        "empty.tif": b"",
        "errorpage.tif": b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>",
        "nocrs.asc": shared("elevation/asc/west_bijou_escarpment_snippet.asc").read_bytes(),
        "$(touch PWNED);`touch PWNED2`.zip": http.files["/tiles/t002.zip"],  # shell metacharacters
    }
    for name, data in hostile.items():
        http.files["/h/" + name] = data
    urls = good + [http.url("h/" + name) for name in hostile]
    make_entry(tmp_path / "catalog", "hostile", urls)
    (tmp_path / "outside").mkdir()
    work = tmp_path / "run"
    run(tmp_path, work, "hostile", {"unpack": {"max_unpacked_gb": 64, "max_ratio": 100}}, check=False)
    failed = failures(work, "hostile")
    expect = {
        "slip.zip": "outside the target folder",
        "absolute.zip": "outside the target folder",
        "link.zip": "symlink",
        "slip.7z": "outside the target folder",
        "bomb.zip": "decompression bomb",
        "nested.7z": "archives inside it included",
        "noraster.zip": "no raster",
        "truncated.zip": "damaged zip",
        "corrupt.tif": "GDAL cannot read this raster",  # raster by name, none by content: damaged, not skipped
        "empty.tif": "GDAL cannot read this raster",
        "errorpage.tif": "GDAL cannot read this raster",
        "nocrs.asc": "has no CRS; set `crs:`",
    }
    for name, reason in expect.items():
        assert name in failed, name
        assert reason in failed[name]["error"], (name, failed[name]["error"])
        assert failed[name]["url"].endswith(name) and failed[name]["source"] == "hostile"
    assert set(failed) == set(expect)
    # the good files and the oddly named one went through
    with open(work / "source-store" / "hostile" / "bounds.csv", newline="") as f:
        assert sorted(r["filename"] for r in csv.DictReader(f)) == ["t000.tif", "t001.tif", "t002.tif"]
    # nothing was written outside the working folder, and no shell ran anything
    assert list((tmp_path / "outside").iterdir()) == []
    assert not list(tmp_path.rglob("escaped*.tif")) and not list(tmp_path.parent.glob("escaped*"))
    assert not list(tmp_path.rglob("PWNED*")) and not list(work.parent.glob("PWNED*"))


def test_unusable_parcels_are_reported_with_their_reason(tmp_path):
    counties = gpd.GeoDataFrame(
        {"county_fips": ["99001"], "name": ["A"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=4326
    )
    bowtie = shapely.Polygon([(1, 1), (3, 3), (3, 1), (1, 3)])  # self-intersecting: repaired
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["ok", "bowtie", "empty", "point", "line", "far"]},
        geometry=[
            shapely.box(1, 1, 2, 2),
            bowtie,
            shapely.Polygon(),
            shapely.Point(5, 5),
            shapely.LineString([(1, 1), (2, 2)]),
            shapely.box(50, 50, 51, 51),
        ],
        crs=4326,
    )
    kept, dropped = assign_parcels(parcels, counties, tmp_path / "parcels.parquet")
    assert kept["parcel_id"].tolist() == ["ok", "bowtie"] and kept.geometry.is_valid.all()
    assert kept.geometry.area.tolist() == pytest.approx([1.0, 2.0])
    reasons = dict(zip(dropped["parcel_id"], dropped["reason"], strict=True))
    assert reasons == {
        "empty": "empty geometry",
        "point": "no polygon with area (after make_valid)",
        "line": "no polygon with area (after make_valid)",
        "far": "outside the state's counties",
    }


def test_a_full_disk_stops_a_job_before_it_writes(tmp_path, http):
    make_entry(tmp_path / "catalog", "full", serve_tiles(http, 2))
    work = tmp_path / "run"
    proc = run(tmp_path, work, "full", {"min_free_disk_gb": 10**9}, check=False)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (work / "logs").rglob("*.log"))
    assert "below min_free_disk_gb = 1000000000: free some space" in logs
    assert not list((work / "source-store").glob("*/*.tif")) if (work / "source-store").exists() else True
    assert not list((work / "work").rglob("*.json")) if (work / "work").exists() else True
    # and with room again, the same run completes
    run(tmp_path, work, "full")
    assert (work / "tar-store" / "full.tar").exists()
    assert pd.read_csv(work / "source-store" / "full" / "bounds.csv").shape[0] == 2


def _counties_ab():
    return gpd.GeoDataFrame(
        {"county_fips": ["99001", "99003"], "name": ["A", "B"]},
        geometry=[shapely.box(-88.6, 40.0, -88.3, 40.25), shapely.box(-88.3, 40.0, -88.0, 40.25)],
        crs=4269,
    )


def test_parcels_outside_the_county_their_fips_names_are_dropped(tmp_path):
    d = 0.0005  # ~43 m of longitude here
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["inside", "straddles", "near", "far", "elsewhere"],
            "county_fips": ["99001", "99003", "99003", "99003", "99001"],
        },
        geometry=[
            shapely.box(-88.5, 40.1, -88.49, 40.11),
            shapely.box(-88.305, 40.1, -88.295, 40.11),  # across the line: still its county's
            shapely.box(-88.31, 40.1, -88.30 - d, 40.11),  # ~43 m short of the line, in A: within the tolerance
            shapely.box(-88.45, 40.1, -88.44, 40.11),  # well inside A, labelled B
            shapely.box(-88.2, 40.1, -88.19, 40.11),  # well inside B, labelled A
        ],
        crs=4326,
    )
    kept, dropped = assign_parcels(parcels, _counties_ab(), tmp_path / "parcels.parquet")
    assert kept["parcel_id"].tolist() == ["inside", "straddles", "near"]
    assert dict(zip(dropped["parcel_id"], dropped["reason"], strict=True)) == {
        p: "outside the county its FIPS columns name (farther than 100 m from it)" for p in ("far", "elsewhere")
    }
    # the same through fipsstate/fipscounty columns
    split = parcels.drop(columns="county_fips").assign(
        fipsstate="99", fipscounty=parcels["county_fips"].str[2:].astype(int)
    )
    assert assign_parcels(split, _counties_ab(), tmp_path / "p.gpkg")[1]["parcel_id"].tolist() == ["far", "elsewhere"]


def _two_parcels(codes: list) -> gpd.GeoDataFrame:
    """Parcel a in county 99001 and b in 99003 (`_counties_ab`), with the FIPS codes `codes`."""
    return gpd.GeoDataFrame(
        {"parcel_id": ["a", "b"], "county_fips": codes},
        geometry=[shapely.box(-88.5, 40.1, -88.49, 40.11), shapely.box(-88.2, 40.1, -88.19, 40.11)],
        crs=4326,
    )


@pytest.mark.parametrize(
    ("codes", "named"),
    [
        (["99001", "99005"], "99005"),  # a county the layer's vintage does not have yet (Connecticut's 09110…)
        (["99007", "99003"], "99007"),  # one that is gone from it (Valdez-Cordova 02261 since 2019)
        ([99009.0, 99011.0], "99009, 99011"),  # as numbers
    ],
    ids=["new-code", "old-code", "numbers"],
)
def test_parcel_fips_of_this_state_that_the_county_layer_lacks_are_refused(tmp_path, codes, named):
    """A county layer of another year than the parcels' codes: every parcel of a renamed county was dropped
    as naming "no county of the state", a whole county's land lost with a warning."""
    parcels = _two_parcels(codes)
    with pytest.raises(
        TilewiseError,
        match=rf"p\.gpkg: \d parcel\(s\) name counties of state 99 that the county "
        rf"layer does not have \({named}; it has 99001, 99003…\)",
    ):
        assign_parcels(parcels, _counties_ab(), tmp_path / "p.gpkg")
    # through fipsstate/fipscounty columns too
    split = parcels.drop(columns="county_fips").assign(fipsstate="99", fipscounty=[int(float(c)) % 1000 for c in codes])
    with pytest.raises(TilewiseError, match=r"that the county layer does not have"):
        assign_parcels(split, _counties_ab(), tmp_path / "p.gpkg")


@pytest.mark.parametrize(
    ("codes", "example"),
    [
        (["99001", "003"], "'003' read as '00003'"),  # one source wrote the county's 3 digits only
        (["99001", 3], "'3' read as '00003'"),
        ([99001.0, 3.0], "'3.0' read as '00003'"),
        (["99001", "990003"], "'990003' read as '990003'"),
    ],
    ids=["three-digits", "integer", "float", "six-digits"],
)
def test_parcel_fips_that_are_no_state_and_county_code_are_refused(tmp_path, codes, example):
    """A parcel file merged from county sources, one writing its county's 3-digit code alone: read as 00003,
    a county of no state, its parcels were dropped as naming "no county of the state", with a warning."""
    parcels = _two_parcels(codes)
    with pytest.raises(
        TilewiseError,
        match=rf"p\.gpkg: 1 parcel\(s\) whose FIPS columns are no 5-digit state \+ county code \(rows \[1\], "
        rf"e\.g\. {re.escape(example)}\)",
    ):
        assign_parcels(parcels, _counties_ab(), tmp_path / "p.gpkg")


def test_parcel_fips_of_another_state_numbers_and_the_antimeridian(tmp_path):
    # FIPS read as numbers (a column with gaps is float): the same codes; another state's code: dropped
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["a", "b", "indiana"], "county_fips": [99001.0, 99003.0, 18001.0]},
        geometry=[shapely.box(-88.5, 40.1, -88.49, 40.11), shapely.box(-88.2, 40.1, -88.19, 40.11)] * 1
        + [shapely.box(-88.2, 40.12, -88.19, 40.13)],
        crs=4326,
    )
    kept, dropped = assign_parcels(parcels, _counties_ab(), tmp_path / "p.parquet")
    assert kept["county_fips"].tolist() == ["99001", "99003"]
    assert dropped.set_index("parcel_id")["reason"].to_dict() == {
        "indiana": "its FIPS columns name no county of the state"
    }
    # a whole file of another state's codes is the wrong file: it stops
    with pytest.raises(TilewiseError, match=r"p.parquet: no parcel's FIPS columns .*this state's parcel file"):
        assign_parcels(parcels.assign(county_fips="18001"), _counties_ab(), tmp_path / "p.parquet")
    # a county across the antimeridian (the Aleutians): distances are measured in metres around it
    aleutian = gpd.GeoDataFrame(
        {"county_fips": ["02016"], "name": ["Aleutians West"]},
        geometry=[shapely.MultiPolygon([shapely.box(178, 51, 180, 52), shapely.box(-180, 51, -179, 52)])],
        crs=4269,
    )
    d = 0.0007  # ~49 m of longitude at 51.5°N
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["west", "east", "near", "far"], "county_fips": ["02016"] * 4},
        geometry=[
            shapely.box(179.5, 51.5, 179.51, 51.51),
            shapely.box(-179.6, 51.5, -179.59, 51.51),
            shapely.box(-179 + d, 51.5, -178.99 + d, 51.51),
            shapely.box(-178.98, 51.5, -178.97, 51.51),  # ~1.4 km east of it
        ],
        crs=4269,
    )
    kept, dropped = assign_parcels(parcels, aleutian, tmp_path / "ak.parquet")
    assert kept["parcel_id"].tolist() == ["west", "east", "near"] and dropped["parcel_id"].tolist() == ["far"]


def test_parcels_and_counties_without_a_crs_stop_naming_the_file(tmp_path):
    parcels = gpd.GeoDataFrame({"parcel_id": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)])  # no CRS
    parcels.to_parquet(tmp_path / "parcels.parquet")
    with pytest.raises(TilewiseError, match=r"parcels.parquet: the parcels have no CRS.*ogr2ogr -a_srs"):
        read_vector(str(tmp_path / "parcels.parquet"), "parcels")
    _counties_ab().set_crs(None, allow_override=True).assign(STATEFP="99", COUNTYFP=["001", "003"]).to_file(
        tmp_path / "counties.gpkg"
    )
    with pytest.raises(TilewiseError, match=r"counties.gpkg: the counties have no CRS"):
        load_counties(str(tmp_path / "counties.gpkg"), "99")


@pytest.mark.parametrize("table, column", [("PLOT", "LAT"), ("COND", "CONDPROP_UNADJ"), ("TREE", "DRYBIO_AG")])
def test_fia_tables_without_a_needed_column_stop_naming_the_file(tmp_path, table, column):
    path = tmp_path / f"{table}.csv"
    path.write_text(",".join(c for c in REQUIRED[table] if c != column) + "\n")
    with pytest.raises(TilewiseError, match=rf"{table}.csv: the FIADB {table} table lacks columns \['{column}'\]"):
        read_table(path, table)


XYZ = "elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz"


def _new_version(xyz: bytes) -> bytes:
    """The same tile surveyed again: every height 100 m higher, same coordinates, same layout."""
    lines = xyz.decode().splitlines()
    out = [lines[0]] + [f"{x} {y} {float(z) + 100:.2f}" for x, y, z in (line.split() for line in lines[1:])]
    return ("\n".join(out) + "\n").encode()


def _heights(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_downloads_in_the_workflow_never_splice_truncate_or_hang(tmp_path, http):
    """XYZ text is where a splice or a cut is silent: rows of two versions, or fewer rows, still parse."""
    old = shared(XYZ).read_bytes()
    new = _new_version(old)
    http.if_range = False  # a server that serves a Range whatever If-Range says
    faults = {
        "changed.xyz": [Fault(times=1, drop_after=100_000), Fault(times=1, replace_with=new)],
        "wrong-range.xyz": [Fault(times=1, drop_after=100_000), Fault(times=1, content_range="bytes 0-{end}/{total}")],
        "unframed.xyz": [Fault(times=1, unframed=True, drop_after=100_000), Fault(times=2, unframed=True)],
        "gzip.xyz": [Fault(times=1, gzip=True, drop_after=20_000), Fault(times=1, gzip=True)],
        "trickle.xyz": Fault(times=100, trickle=0.5),
    }
    for name, fault in faults.items():
        http.files["/x/" + name], http.faults["/x/" + name] = old, fault
    make_entry(tmp_path / "catalog", "xyz", [http.url("x/" + n) for n in faults], recipe={"crs": "EPSG:2056"})
    work = tmp_path / "run"
    extra = {"download": {**FAST_DOWNLOADS, "max_seconds_per_file": 3}, "allow_incomplete": True}
    run(tmp_path, work, "xyz", extra)
    failed = failures(work, "xyz")
    assert set(failed) == {"trickle.xyz"}
    assert re.search(r"max_seconds_per_file \(3 s\) reached: got \d+ of [\d,]+ bytes", failed["trickle.xyz"]["error"])
    (tmp_path / "old.xyz").write_bytes(old)
    (tmp_path / "new.xyz").write_bytes(new)
    want = {"old": _heights(tmp_path / "old.xyz"), "new": _heights(tmp_path / "new.xyz")}
    store = work / "source-store" / "xyz"
    expected = {"changed": "new", "wrong-range": "old", "unframed": "old", "gzip": "old"}
    for stem, version in expected.items():
        got = _heights(store / f"{stem}.tif")
        assert got.shape == (100, 100), stem  # not a truncated grid
        np.testing.assert_allclose(got, want[version], atol=0.001, err_msg=stem)  # LERC's 1 mm
    assert [r[2] for r in http.requests_for("x/changed.xyz")] == [200, 206, 200]  # the 206 of the new version refused
    ledgers = [json.loads(p.read_text()) for p in (work / "work" / "xyz" / "chunks").glob("*.json")]
    remote = {r["file"]: r.get("remote") for ledger in ledgers for r in ledger["files"]}
    assert remote["gzip.xyz"]["md5"] == hashlib.md5(old).hexdigest()  # the decoded file's bytes
    assert remote["changed.xyz"]["etag"] == http.validators(new)["ETag"] and remote["trickle.xyz"] is None


def test_a_content_encoding_decodes_no_further_than_unpacks_cap_in_the_workflow(tmp_path, http):
    """Decoding a gzip Content-Encoding is unpacking: the cap on what a download unpacks to holds for
    it as for the same bytes in a `.gz` file (before, a bomb sent coded reached the disk uncounted)."""
    old = shared(XYZ).read_bytes()  # 240,007 bytes, over a cap of 0.0002 GB (214,748 bytes)
    faults = {"plain.xyz": None, "coded.xyz": Fault(times=9, gzip=True), "coded-x.xyz": Fault(times=9, gzip=True)}
    http.files["/x/file.xyz.gz"] = gzip.compress(old)  # the same bytes as a .gz file: unpack's cap refuses them
    for name, fault in faults.items():
        http.files["/x/" + name] = old
        if fault:
            http.faults["/x/" + name] = fault
    http.faults["/x/coded-x.xyz"].headers = {"Content-Encoding": "x-gzip"}
    urls = [http.url("x/" + n) for n in [*faults, "file.xyz.gz"]]
    make_entry(tmp_path / "catalog", "xyz", urls, recipe={"crs": "EPSG:2056"})
    work = tmp_path / "run"
    run(tmp_path, work, "xyz", {"unpack": {"max_unpacked_gb": 0.0002, "max_ratio": 10000}, "allow_incomplete": True})
    failed = failures(work, "xyz")
    assert set(failed) == {"coded.xyz", "coded-x.xyz", "file.xyz.gz"}
    for name in ("coded.xyz", "coded-x.xyz"):
        assert failed[name]["step"] == "download"
        assert "Content-Encoding decodes to more than 214,748 bytes" in failed[name]["error"]
        assert "unpack.max_unpacked_gb" in failed[name]["error"]
    assert "over the cap" in failed["file.xyz.gz"]["error"]
    assert (work / "source-store" / "xyz" / "plain.tif").exists()


def test_files_in_pieces_in_the_workflow_are_one_version_or_fetched_again(tmp_path, http):
    """The same XYZ tiles in 40 KB pieces over 4 connections, each file with one piece answered
    wrongly: every stored grid is one whole version, never pieces of two or shifted bytes; a dropped
    piece is asked again, any other wrong answer fetches the file again whole."""
    old = shared(XYZ).read_bytes()
    new = _new_version(old)
    http.if_range = False  # a server that serves a Range whatever If-Range says
    faults = {  # the file's third request (its second piece) misbehaves
        "changed.xyz": Fault(times=1, replace_with=new),
        "shifted.xyz": Fault(times=1, body_from=0),
        "wrong-range.xyz": Fault(times=1, content_range="bytes 0-{end}/{total}"),
        "gzip.xyz": Fault(times=1, gzip=True),
        "dropped.xyz": Fault(times=1, drop_after=5_000),
        "short.xyz": Fault(times=1, trim=10),
        "plain.xyz": Fault(times=0),
    }
    for name, fault in faults.items():
        http.files["/p/" + name], http.faults["/p/" + name] = old, [Fault(times=2), fault]
    make_entry(tmp_path / "catalog", "xyz", [http.url("p/" + n) for n in faults], recipe={"crs": "EPSG:2056"})
    work = tmp_path / "run"
    run(tmp_path, work, "xyz", {"download": {**FAST_DOWNLOADS, "connections": 4, "piece_mb": 0.04}})
    (tmp_path / "old.xyz").write_bytes(old)
    (tmp_path / "new.xyz").write_bytes(new)
    want = {"old": _heights(tmp_path / "old.xyz"), "new": _heights(tmp_path / "new.xyz")}
    store = work / "source-store" / "xyz"
    for name in faults:
        got = _heights(store / name.replace(".xyz", ".tif"))
        assert got.shape == (100, 100), name
        np.testing.assert_allclose(got, want["new" if name == "changed.xyz" else "old"], atol=0.001, err_msg=name)
        asked = http.requests_for("p/" + name)
        assert asked[0][1] is None and any(rng for _, rng, _ in asked), f"{name} came in pieces"
        if name == "dropped.xyz":  # a connection's trouble: that piece asked again
            assert [rng for _, rng, _ in asked].count(None) == 1, name
        elif name != "plain.xyz":  # a doubt about the bytes
            assert asked[-1][1] is None, f"{name}: the pieces dropped, the file fetched again whole"
    assert not [p for p in work.rglob("*") if p.name.endswith(".part")]


def test_a_write_that_fills_the_disk_fails_the_job_not_the_file(tmp_path):
    """GDAL does not pass ENOSPC on: a COG write that fails on a disk without room for it is not the
    file's failure. A local raster (copied into the job's scratch) whose COG cannot fit after the copy."""
    big = tmp_path / "big.tif"
    # elevations from trench to summit at random: LERC at 1 mm cannot shrink them much (3 MB of 4)
    noise = np.random.default_rng(5).uniform(-11_000, 8_800, (1000, 1000)).astype("float32")
    profile = dict(driver="GTiff", width=1000, height=1000, count=1, dtype="float32", crs="EPSG:25832")
    with rasterio.open(big, "w", transform=rasterio.transform.from_origin(500_000, 5_600_000, 1, 1), **profile) as ds:
        ds.write(noise, 1)
    make_entry(tmp_path / "catalog", "big", [str(big)])
    with small_disk(tmp_path / "disk", 6 << 20) as disk:  # room for the copy (4 MB), not for its COG too
        work = disk.path / "run"
        proc = run(tmp_path, work, "big", {"min_free_disk_gb": 0}, check=False)
        assert proc.returncode != 0
        log = (work / "logs" / "prepare_chunk" / "big" / "0000.log").read_text()
        assert "big.tif: writing the COG big.tif failed with only" in log and "free some space and rerun" in log
        assert not (work / "work" / "big" / "chunks" / "0000.json").exists()  # no ledger: no failure kept
        assert not (work / "work" / "big" / "scratch").exists() or not any(
            (work / "work" / "big" / "scratch").iterdir()
        )
        disk.grow(64 << 20)
        run(tmp_path, work, "big", {"min_free_disk_gb": 0})
        assert _heights(work / "source-store" / "big" / "big.tif").shape == (1000, 1000)


def test_disk_full_errors_are_told_from_others():
    for code in (errno.ENOSPC, errno.EDQUOT):
        try:
            try:
                raise OSError(code, os.strerror(code))
            except OSError as exc:
                raise RuntimeError("a library wrapped it") from exc
        except RuntimeError as wrapped:
            assert "the disk is full" in str(disk_full(wrapped, "t.zip (download)"))
    assert disk_full(OSError(errno.EIO, "I/O error"), "t.zip") is None
    assert disk_full(ValueError("bad"), "t.zip") is None


@pytest.mark.parametrize(
    "query, secret",
    [
        ("token=eyJhbGciOi.eyJzdWIi.SflKxw", "eyJhbGciOi"),  # a JWT: dots in the token
        ("X-Amz-Signature=ab12.cd34&X-Amz-Date=20261125T000000Z", "ab12"),
        ("version=2&sig=2026.11.25%2Fabc", "2026"),
    ],
)
def test_no_secret_of_a_urls_query_reaches_a_published_name(tmp_path, http, query, secret):
    """wget's name keeps a URL's query, and Mapterhorn's naming cuts only its last suffix: a token with a dot
    reached the store's file name, bounds.csv and the tarball's members. Its value is written *** first."""
    from tilewise_demo.source import geotiff_bytes

    http.files["/tiles/dem.tif"] = geotiff_bytes(3)
    make_entry(tmp_path / "catalog", "signed", [http.url("tiles/dem.tif") + "?" + query])
    run(tmp_path, tmp_path / "w", "signed")
    names = [p.name for p in (tmp_path / "w" / "source-store" / "signed").iterdir()]
    bounds = (tmp_path / "w" / "source-store" / "signed" / "bounds.csv").read_text()
    with tarfile.open(tmp_path / "w" / "tar-store" / "signed.tar") as tar:
        members = tar.getnames()
    for text in [*names, bounds, *members]:
        assert secret not in text, text
    assert len([n for n in members if n.startswith("files/")]) == 1


def test_no_secret_of_a_urls_query_reaches_a_prefixed_name(tmp_path, http):
    """`prefix_names_from` puts the download's stem before its rasters' names: the same rule for its query."""
    from tilewise_demo.source import geotiff_bytes

    http.files["/tiles/pack.zip"] = zipped("dem.tif", geotiff_bytes(4))
    url = http.url("tiles/pack.zip") + "?token=eyJhbGciOi.eyJzdWIi.SflKxw"
    make_entry(tmp_path / "catalog", "packed", [url], recipe={"prefix_names_from": ["pack.zip*"]})
    run(tmp_path, tmp_path / "w", "packed")
    with tarfile.open(tmp_path / "w" / "tar-store" / "packed.tar") as tar:
        (member,) = [n for n in tar.getnames() if n.startswith("files/")]
    assert member == "files/pack_dem.tif"  # as from …/pack.zip without a query


@pytest.mark.parametrize(
    "urls",
    [
        ["https://u:S3CRETPW@h.example/a/dem.tif", "https://u:S3CRETPW@h.example/b/dem.tif"],  # one name twice
        ["https://h.example/a/dem.tif?token=S3CRETPW", "https://h.example/b/dem.tif?token=S3CRETPW"],
        ["gopher://u:S3CRETPW@h.example/dem.tif"],  # a scheme no download takes
    ],
    ids=["same-name", "same-name-token", "scheme"],
)
def test_a_file_list_the_plan_refuses_is_named_without_its_secrets(tmp_path, urls):
    """The plan's refusal quotes the lines it refuses: their passwords and tokens were printed as they were."""
    make_entry(tmp_path / "catalog", "leaky", urls)
    done = run(tmp_path, tmp_path / "w", "leaky", check=False)
    assert done.returncode != 0 and "file_list.txt:" in done.stderr and "h.example" in done.stderr, done.stderr[-2000:]
    assert "S3CRETPW" not in done.stdout + done.stderr


def test_two_urls_that_differ_only_in_a_secret_are_one_name_and_refused(tmp_path, http):
    from tilewise_demo.source import geotiff_bytes

    http.files["/tiles/dem.tif"] = geotiff_bytes(3)
    urls = [http.url("tiles/dem.tif") + f"?token=a.b.{k}" for k in "xy"]
    make_entry(tmp_path / "catalog", "twice", urls)
    done = run(tmp_path, tmp_path / "w", "twice", check=False)
    assert done.returncode != 0
    assert not (tmp_path / "w" / "tar-store" / "twice.tar").exists()
