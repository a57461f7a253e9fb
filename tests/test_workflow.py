"""The real workflow, run by snakemake in a temporary folder against a real HTTP server."""

import csv
import json
import os
import re
import shutil
import tarfile
import zipfile

import pyogrio
import pytest
import rasterio
import shapely
from pyogrio.raw import read as ogr_read

from conftest import REPO, shared, snakemake
from support.catalog import make_entry, md5, serve_tiles
from support.rasterchecks import assert_mapterhorn_cog, assert_same_pixels, expected_bounds_row, valid_area

pytestmark = pytest.mark.workflow


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def config(catalog, sources, *extra):
    src = sources if isinstance(sources, str) else "[" + ",".join(sources) + "]"
    return ["--config", f"catalog={catalog}", f"source={src}", "state=[]", *extra]


def test_real_formats_over_http(tmp_path, http):
    """Every elevation format of the shared data, plain and in archives, through the whole workflow."""
    served = {
        "mixed": [
            "elevation/geotiff/dem-hills.tiff",
            "elevation/geotiff/storml_elev_orig.tif",
            "elevation/hgt/N10W110.hgt.zip",
            "archives/aigrid_sta_24bytes.zip",
            "archives/dted_n43_n00_e006.7z",
        ],
        "swiss": [
            "elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz",
            "archives/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1197.xyz.zip",
        ],
        "srtm": ["elevation/asc/west_bijou_escarpment_snippet.asc", "archives/SRTMGL3_40.09_-105.56_asc.7z"],
    }
    recipes = {"mixed": None, "swiss": {"crs": "EPSG:2056"}, "srtm": {"crs": "EPSG:4326"}}
    for source, rels in served.items():
        for rel in rels:
            http.files[f"/{source}/{shared(rel).name}"] = shared(rel).read_bytes()
        # the ASC without its .prj needs its recipe CRS: serve it alone
        make_entry(
            tmp_path / "catalog", source, [http.url(f"{source}/{shared(r).name}") for r in rels], recipes[source]
        )
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", list(served)))

    originals = {
        "dem-hills.tif": shared("elevation/geotiff/dem-hills.tiff"),
        "storml_elev_orig.tif": shared("elevation/geotiff/storml_elev_orig.tif"),
        "teststa.tif": shared("elevation/aig/aigrid_sta_24bytes/teststa"),
        "n43.tif": shared("elevation/dted/n43.dt0"),
        "n00_e006_3arc_v2.tif": shared("elevation/dted/n00_e006_3arc_v2.dt1"),
        "SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.tif": shared(
            "elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz"
        ),
        "SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1197.tif": shared(
            "elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1197.xyz"
        ),
        "west_bijou_escarpment_snippet.tif": shared("elevation/asc/west_bijou_escarpment_snippet.asc"),
        "SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.tif": shared(
            "elevation/asc/SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.asc"
        ),
    }
    with zipfile.ZipFile(shared("elevation/hgt/N10W110.hgt.zip")) as zf:
        zf.extractall(tmp_path / "hgt")
    originals["N10W110.tif"] = tmp_path / "hgt" / "N10W110.hgt"

    expected_names = {
        "mixed": [
            "N10W110.tif",
            "dem-hills.tif",
            "n00_e006_3arc_v2.tif",
            "n43.tif",
            "storml_elev_orig.tif",
            "teststa.tif",
        ],
        "swiss": ["SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.tif", "SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1197.tif"],
        "srtm": ["SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.tif", "west_bijou_escarpment_snippet.tif"],
    }
    for source, names in expected_names.items():
        store = work / "source-store" / source
        bounds = rows(store / "bounds.csv")
        assert (store / "bounds.csv").read_text().splitlines()[0] == "filename,left,bottom,right,top,width,height"
        assert [r["filename"] for r in bounds] == names  # sorted by file name
        for r in bounds:
            cog = store / r["filename"]
            assert_mapterhorn_cog(cog)
            assert_same_pixels(cog, originals[r["filename"]])
            got = tuple(float(r[k]) for k in ("left", "bottom", "right", "top")) + (int(r["width"]), int(r["height"]))
            assert got == pytest.approx(expected_bounds_row(cog), rel=1e-12)
        # one layer, one CRS, valid geometry
        gpkg = work / "polygon-store" / f"{source}.gpkg"
        assert [layer[0] for layer in pyogrio.list_layers(gpkg)] == ["union"]
        meta, _, geoms, _ = ogr_read(gpkg)
        union = shapely.union_all([shapely.from_wkb(g) for g in geoms])
        assert union.is_valid and not union.is_empty
        # tarball: Mapterhorn's members in a fixed order, and its md5 file
        tar_path = work / "tar-store" / f"{source}.tar"
        with tarfile.open(tar_path) as tar:
            members = tar.getnames()
        assert members == [
            "LICENSE.pdf",
            "metadata.json",
            "bounds.csv",
            "coverage.gpkg",
            *(f"files/{n}" for n in names),
        ]
        assert (work / "tar-store" / f"{source}.tar.md5").read_text() == f"{md5(tar_path)} {source}.tar\n"
        assert rows(work / "reports" / source / "failures.csv") == []
        assert (work / "reports" / source / "coverage.png").stat().st_size > 10_000
    # the Swiss pair shares EPSG:2056: coverage stays in it and covers exactly the valid pixels (2 km²)
    meta, _, geoms, _ = ogr_read(work / "polygon-store" / "swiss.gpkg")
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 2056
    assert shapely.from_wkb(geoms[0]).area == pytest.approx(2_000_000, rel=1e-9)
    # mixed CRSs: one CRS for the whole source (Web Mercator)
    meta, _, _, _ = ogr_read(work / "polygon-store" / "mixed.gpkg")
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 3857
    # nothing temporary is left behind: downloads and unpacked files went with their chunk
    assert not [p for p in (work / "work").rglob("*") if "scratch" in p.parts and p.is_file()]
    assert not [p for p in work.rglob("*") if p.suffix in (".part", ".tmp")]


def test_failures_are_recorded_and_block_the_tarball(tmp_path, http):
    urls = serve_tiles(http, 6)
    http.files["/bad/html.tif"] = b"<html><body>Service unavailable</body></html>"
    http.files["/bad/cut.zip"] = serve_tiles.__globals__["zipped"]("x.tif", b"II*\x00" + b"\x00" * 100)[:60]
    urls += [http.url("bad/missing.tif"), http.url("bad/html.tif"), http.url("bad/cut.zip")]
    make_entry(tmp_path / "catalog", "flaky", urls)
    work = tmp_path / "run"
    proc = snakemake(work, *config(tmp_path / "catalog", "flaky"), check=False)
    assert proc.returncode != 0
    failed = {r["file"]: r for r in rows(work / "reports" / "flaky" / "failures.csv")}
    assert set(failed) == {"missing.tif", "html.tif", "cut.zip"}
    assert failed["missing.tif"]["step"] == "download" and "HTTP 404" in failed["missing.tif"]["error"]
    assert failed["html.tif"]["step"] == "convert" and "GDAL cannot read this raster" in failed["html.tif"]["error"]
    assert failed["cut.zip"]["step"] == "unpack"
    assert all(r["url"].startswith("http://127.0.0.1") and r["source"] == "flaky" for r in failed.values())
    assert len(rows(work / "source-store" / "flaky" / "bounds.csv")) == 6  # the others went on
    log = (work / "logs" / "build_tarball" / "flaky.log").read_text()
    assert "3 file(s) failed" in log and "missing.tif (download)" in log and "allow_incomplete" in log
    assert not (work / "tar-store" / "flaky.tar").exists()
    snakemake(work, *config(tmp_path / "catalog", "flaky", "allow_incomplete=True"))
    with tarfile.open(work / "tar-store" / "flaky.tar") as tar:
        assert len([n for n in tar.getnames() if n.startswith("files/")]) == 6


def test_bad_config_and_catalog_stop_before_any_work(tmp_path, http):
    make_entry(tmp_path / "catalog", "ok", serve_tiles(http, 1))
    work = tmp_path / "run"
    cases = [
        (config(tmp_path / "catalog", "ok", "chunk_size=3"), "chunk_size"),
        (config(tmp_path / "catalog", "ok", "allow_incomplete=maybe"), "allow_incomplete"),
        (config(tmp_path / "catalog", "nope"), "source 'nope': no folder"),
    ]
    for args, expected in cases:
        proc = snakemake(work, *args, check=False)
        assert proc.returncode != 0 and expected in proc.stdout + proc.stderr, proc.stderr[-2000:]
    (tmp_path / "catalog" / "ok" / "source.yaml").write_text("crs: EPSG:25832\nslice: 4096\n")
    proc = snakemake(work, *config(tmp_path / "catalog", "ok"), check=False)
    assert proc.returncode != 0
    assert "ok/source.yaml: the recipe does not match" in proc.stderr and "'slice' was unexpected" in proc.stderr
    assert not (work / "source-store").exists() and not (work / "work").exists()


def test_one_added_url_reruns_one_chunk(tmp_path, http):
    urls = serve_tiles(http, 24)
    entry = make_entry(tmp_path / "catalog", "grow", urls)
    work = tmp_path / "run"
    proc = snakemake(work, *config(tmp_path / "catalog", "grow"), "--cores", "1")
    first = md5(work / "tar-store" / "grow.tar")
    # largest chunks start first (rule priority), so no big chunk is left alone at the end (one core:
    # the start order is the priority order)
    started = re.findall(r"grow: chunk (\d{4})", proc.stderr)
    sizes = [len(json.loads((work / f"work/grow/chunks/{c}.json").read_text())["files"]) for c in started]
    assert len(set(sizes)) > 1 and sizes == sorted(sizes, reverse=True), (started, sizes)
    (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls + serve_tiles(http, 1, start=24)))
    dry = snakemake(work, *config(tmp_path / "catalog", "grow"), "-n", "--quiet", "rules")
    counts = dict(
        line.split()[:2]
        for line in dry.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[0] in ("prepare_chunk", "merge_source", "build_tarball")
    )
    assert counts == {"prepare_chunk": "1", "merge_source": "1", "build_tarball": "1"}, dry.stdout
    snakemake(work, *config(tmp_path / "catalog", "grow"))
    assert len(rows(work / "source-store" / "grow" / "bounds.csv")) == 25
    assert md5(work / "tar-store" / "grow.tar") != first
    # removing it again: one chunk reruns, its COG leaves the store, the tarball is the first one again
    (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls))
    run = snakemake(work, *config(tmp_path / "catalog", "grow"))
    assert run.stderr.count("(Rule: prepare_chunk)") == 1
    assert not (work / "source-store" / "grow" / "t024.tif").exists()
    assert md5(work / "tar-store" / "grow.tar") == first


def test_demo_runs_offline(tmp_path):
    shutil.copytree(REPO / "catalog" / "demo", tmp_path / "catalog" / "demo", ignore=shutil.ignore_patterns("data"))
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", "demo"), "-n")
    assert not (work / "work" / "demo" / "chunk-count.txt").exists()  # a dry-run records no chunk count
    snakemake(work, *config(tmp_path / "catalog", "demo"))
    assert (work / "work" / "demo" / "chunk-count.txt").read_text() == "4\n"  # the run's plan (onstart)
    bounds = rows(work / "source-store" / "demo" / "bounds.csv")
    assert len(bounds) == 16 and rows(work / "reports" / "demo" / "failures.csv") == []
    total = sum(valid_area(work / "source-store" / "demo" / r["filename"]) for r in bounds)
    meta, _, geoms, _ = ogr_read(work / "polygon-store" / "demo.gpkg")
    assert shapely.from_wkb(geoms[0]).area == pytest.approx(total, rel=1e-9)  # tiles abut, never overlap
    # the report shows the workflow, the coverage map and the failure report with their captions
    snakemake(work, *config(tmp_path / "catalog", "demo"), "--report", str(work / "report.html"))
    html = (work / "report.html").read_text()
    for expected in (
        "prepared the selected elevation",
        "Valid-data coverage of source",
        "coverage.png",
        "failures.csv",
    ):
        assert expected in html, expected
    # an upgrade, a fresh checkout or a `touch` leaves the scripts newer than every output: that
    # reruns nothing (Snakemake's code trigger would prepare, and download, every chunk again)
    for path in tmp_path.rglob("*"):
        if ".snakemake" not in path.relative_to(tmp_path).parts:
            os.utime(path, (946684800, 946684800), follow_symlinks=False)  # 2000-01-01, all alike
    dry = snakemake(work, *config(tmp_path / "catalog", "demo"), "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]


@pytest.mark.parametrize("source, chunks", [("denrw", 64), ("glo30", 64)])
def test_dry_run_of_a_real_large_entry_lists_its_chunk_jobs(tmp_path, source, chunks):
    from conftest import CATALOG

    shared(f"catalogs/mapterhorn/{source}/file_list.txt")
    proc = snakemake(tmp_path, "-n", "--config", f"catalog={CATALOG}", f"source={source}")
    counts = dict(line.split()[:2] for line in proc.stdout.splitlines() if len(line.split()) == 2)
    assert counts["prepare_chunk"] == str(chunks) and counts["merge_source"] == "1"
    # this copy of the catalog has no LICENSE.pdf: everything but the tarball is planned, and said so
    assert "LICENSE.pdf is missing" in proc.stderr and "build_tarball" not in counts
