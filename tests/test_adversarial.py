"""Inputs found by adversarial testing of issues 11 and 12: each test is one class of input that
main got wrong (exit 0 with wrong bytes, a failure without its real reason, or a wedge)."""

import csv
import gzip
import hashlib
import io
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import shared, snakemake
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


def test_a_web_mercator_raster_east_of_the_world_gets_bounds_inside_it(tmp_path):
    """EPSG:3857 coordinates past +X_MAX (a Pacific-centred mosaic) are the same places 2 X_MAX further
    west; bounds.csv must hold them inside ±X_MAX, as it promises. Main copied 30,000,000 m through."""
    from tilewise.sources.raster_describe import bounds_row

    path = geotiff(
        tmp_path / "pacific.tif", ramp(100, 100), from_origin(30_000_000, 5_000_000, 1000, 1000), "EPSG:3857"
    )
    with rasterio.open(path) as ds:
        row = bounds_row(ds)
    assert row["left"] == pytest.approx(30_000_000 - 2 * X_MAX, abs=1e-3)
    assert row["right"] == pytest.approx(30_100_000 - 2 * X_MAX, abs=1e-3)
    assert (row["bottom"], row["top"]) == pytest.approx((4_900_000, 5_000_000), abs=1e-3)


@pytest.mark.workflow
def test_coordinates_that_are_not_on_the_earth_fail_their_file_naming_the_crs(tmp_path):
    """A recipe CRS that does not fit a file's coordinates (LV95 metres read as degrees: latitude
    1,197,000°) fails that file, saying so; main skipped it as 'beyond 85.0511°' and exited 0 with the
    other file alone."""

    files = [
        shared("elevation/asc/west_bijou_escarpment_snippet.asc"),  # lon/lat without a CRS: EPSG:4326 fits
        shared("elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz"),  # LV95 metres: it does not
    ]
    make_entry(tmp_path / "catalog", "mixed", [str(f) for f in files], {"crs": "EPSG:4326"})
    work = tmp_path / "run"
    proc = snakemake(work, *config(tmp_path / "catalog", "mixed"), check=False)

    assert proc.returncode != 0
    (failure,) = rows(work / "reports/mixed/failures.csv")
    assert failure["file"] == files[1].name and failure["step"] == "convert"
    assert "EPSG:4326" in failure["error"] and "not on the Earth" in failure["error"], failure["error"]
    assert [r["filename"] for r in rows(work / "source-store/mixed/bounds.csv")] == [f"{files[0].stem}.tif"]


@pytest.mark.parametrize(
    "tagged, recipe, origin, fits",
    [
        ("EPSG:2056", None, (600_000, 200_000), False),  # Swiss LV03 coordinates tagged LV95: ~2,000 km off
        (None, "EPSG:2056", (600_000, 200_000), False),  # the same CRS set by the recipe
        ("EPSG:25832", None, (3_500_000, 5_600_000), False),  # Gauss-Krüger zone 3 tagged UTM 32N
        ("EPSG:25831", None, (150_000, 450_000), False),  # Dutch RD tagged UTM 31N
        ("EPSG:32633", "EPSG:3006", (2_600_000, 1_200_000), False),  # the recipe's CRS, not the tag, counts
        ("EPSG:2056", None, (2_600_000, 1_200_000), True),  # LV95 where it belongs
        ("EPSG:25833", None, (1_070_000, 7_790_000), True),  # Norway's east in UTM 33N, ~490 km past the zone
        ("EPSG:25833", None, (-30_000, 6_740_000), True),  # and its west coast
        ("EPSG:25833", None, (700_000, 8_910_000), True),  # Svalbard
        ("EPSG:25832", None, (910_000, 5_670_000), True),  # eastern Germany in UTM 32N
        ("EPSG:3832", None, (0, 1_000), True),  # a Pacific CRS across ±180°
        ("EPSG:32601", None, (166_000, 5_004_000), True),  # UTM zone 1 at the antimeridian
        ("EPSG:32637", None, (500_000, 9_990_000), False),  # southern UTM read as northern: past 85°N
        ("EPSG:32718", None, (500_000, 10_000), False),  # northern UTM read as southern: past 85°S
        ("EPSG:3413", None, (0, 1_000), True),  # polar stereographic at the pole: skipped, not a failure
    ],
)
def test_a_footprint_far_from_where_its_crs_is_defined_fails_its_file(tmp_path, tagged, recipe, origin, fits):
    """Coordinates of one CRS under another's tag (or the recipe's `crs:`) land thousands of km away,
    on the Earth: main shipped them there. A footprint more than 1,000 km from its CRS's area of use
    fails its file, naming the CRS; producers' stretches of a CRS past its area (Norway in UTM 33N) pass."""
    from tilewise.shared.errors import FileFailure
    from tilewise.sources.raster_find import judge

    path = geotiff(tmp_path / "t.tif", ramp(100, 100), from_origin(*origin, 10, 10), tagged)
    with rasterio.open(path) as ds:
        if fits:
            notes, elevation = judge(ds, "t.tif", recipe)
            assert elevation and all("outside Web Mercator" in n.reason for n in notes)
        else:
            with pytest.raises(FileFailure, match=r"t.tif: its footprint lies .* where its CRS .* is (not )?defined"):
                judge(ds, "t.tif", recipe)


@pytest.mark.workflow
def test_bounds_and_failures_edited_by_hand_never_reach_the_tarball(tmp_path):
    """The store edited between runs: a bounds.csv row changed by hand, or failures.csv emptied to get a
    tarball. Main shipped both; now planning sees that bounds.csv is not the one the merge wrote (its md5
    in the store index) and merges again, so the run gives the clean run's bounds.csv and tarball, and the
    tarball refuses a report that hides a failure. A refused tarball never replaces the published one."""

    files = [shared("elevation/geotiff/storml_elev_orig.tif"), shared("elevation/dted/n43.dt0")]
    make_entry(tmp_path / "catalog", "s", [str(f) for f in files] + [str(tmp_path / "missing.tif")])
    work = tmp_path / "run"
    args = config(tmp_path / "catalog", "s", "allow_incomplete=True")
    snakemake(work, *args)
    clean = (work / "tar-store/s.tar.md5").read_text()

    bounds = work / "source-store/s/bounds.csv"
    clean_bounds = bounds.read_text()
    bounds.write_text(clean_bounds.replace(",-12610593.", ",0.", 1))  # storml's left edge
    proc = snakemake(work, *args)
    assert "bounds.csv is not the one the merge wrote" in proc.stderr
    assert bounds.read_text() == clean_bounds
    assert (work / "tar-store/s.tar.md5").read_text() == clean
    assert hashlib.md5((work / "tar-store/s.tar").read_bytes()).hexdigest() == clean.split()[0]

    failures = work / "reports/s/failures.csv"
    failures.write_text(failures.read_text().splitlines()[0] + "\n")  # header only: "nothing failed"
    proc = snakemake(work, *config(tmp_path / "catalog", "s"), check=False)
    assert proc.returncode != 0 and "missing.tif" in proc.stderr and "incomplete" in proc.stderr
    assert (work / "tar-store/s.tar.md5").read_text() == clean  # not one built from the edited report


@pytest.mark.parametrize(
    "crs, epsg",
    [
        ("EPSG:2056+5728", 2056),  # compound (swissALTI3D, se, nlahn5lowresfilled): its horizontal part
        ("EPSG:25832+7837", 25832),
        # dem-hills.tiff's own CRS: a geographic CRS on the Delambre ellipsoid with no EPSG code
        (
            'GEOGCS["unknown",DATUM["unknown",SPHEROID["Delambre 1810",6376428,311.5]],PRIMEM["Greenwich",0],'
            'UNIT["degree",0.0174532925199433]]',
            3857,
        ),
    ],
    ids=["lv95+ln02", "utm32+dhhn2016", "no-epsg"],
)
def test_coverage_is_written_in_a_crs_with_an_epsg_code(tmp_path, crs, epsg):
    """Mapterhorn's coverage bundle (Coverage.java → planetiler's GeoPackageReader) reads a layer's CRS as
    `EPSG:{srs_id}`. A source whose files share a compound CRS or one without an EPSG code got srs_id
    100000, which it cannot decode (se and nlahn5lowresfilled fix that by hand with ogr2ogr -a_srs)."""
    import sqlite3

    import shapely

    from tilewise.sources import coverage_gpkg
    from tilewise.sources.merge import coverage_crs

    chosen = coverage_crs([{"crs": crs}, {"crs": crs}], None)
    assert chosen.to_epsg() == epsg
    path = tmp_path / "c.gpkg"
    coverage_gpkg.write(shapely.MultiPolygon([shapely.box(0, 0, 1, 1)]), chosen, path)
    with sqlite3.connect(path) as db:
        assert db.execute("select srs_id from gpkg_geometry_columns").fetchall() == [(epsg,)]


def test_a_coverage_crs_without_an_epsg_code_is_refused_at_planning(tmp_path):
    from tilewise.shared.errors import CatalogError
    from tilewise.sources.recipe import recipe_from_yaml

    (tmp_path / "source.yaml").write_text("coverage_crs: EPSG:2056+5728\n")
    with pytest.raises(CatalogError, match=r"source.yaml:1: coverage_crs: .*EPSG code.*EPSG:2056"):
        recipe_from_yaml(tmp_path / "source.yaml")


# ---- archives: other kinds, duplicate members, volumes inside an archive, Windows paths


def _unpacked(tmp_path, archive: Path, limits=None) -> list[str]:
    from tilewise.sources.raster_find import open_rasters
    from tilewise.sources.unpack import unpack

    from support.config import unpack_limits

    unpack([archive], tmp_path / "x", limits or unpack_limits())
    return sorted(str(p.relative_to(tmp_path / "x")) for p, _ in open_rasters(tmp_path / "x"))


def test_a_zip_with_two_members_of_one_name_fails_instead_of_keeping_the_last(tmp_path):
    """Two different files under one name in one zip (or 7z): main kept the last one silently (as unzip -o)."""
    import py7zr

    from tilewise.shared.errors import FileFailure

    one, two = shared("elevation/geotiff/storml_elev_orig.tif"), shared("elevation/geotiff/dem-hills.tiff")
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate, and writes it
        zf.write(one, "tiles/dem.tif")
        zf.write(two, "tiles/./dem.tif")
    with pytest.raises(FileFailure, match=r"dup.zip: .*'tiles/dem.tif' twice"):
        _unpacked(tmp_path, archive)
    archive7 = tmp_path / "dup.7z"
    with py7zr.SevenZipFile(archive7, "w") as z:
        z.write(one, "dem.tif")
        z.write(two, "dem.tif")
    with pytest.raises(FileFailure, match=r"dup.7z: .*'dem.tif' twice"):
        _unpacked(tmp_path / "7", archive7)


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "gz", "gz without .gz"])
def test_tar_and_compressed_downloads_are_unpacked(tmp_path, kind):
    """ArcticDEM/REMA tiles come as .tar.gz, some producers gzip single rasters: main said 'no raster GDAL
    can read was found in it'. A dem.tif stored gzipped on its server keeps its name (it was dem.tif.out,
    shipped as dem.tif.tif)."""

    tif = shared("elevation/geotiff/storml_elev_orig.tif")
    archive = tmp_path / f"tile.{kind}"
    if kind.startswith("gz"):
        archive = tmp_path / ("storml.tif.gz" if kind == "gz" else "storml.tif")
        archive.write_bytes(gzip.compress(tif.read_bytes()))
    else:
        with tarfile.open(archive, {"tgz": "w:gz"}.get(kind, "w:" + kind.removeprefix("tar").lstrip("."))) as tf:
            tf.add(tif, "tile/storml_dem.tif")
            tf.add(shared("elevation/asc/west_bijou_escarpment_snippet.asc"), "tile/bijou.asc")
    found = _unpacked(tmp_path, archive)
    if kind.startswith("gz"):
        assert found == ["storml.tif"]
        assert (tmp_path / "x" / "storml.tif").read_bytes() == tif.read_bytes()
    else:
        assert [Path(f).name for f in found] == ["bijou.asc", "storml_dem.tif"]


@pytest.mark.parametrize("member", ["../evil.tif", "/tmp/evil.tif", "link"])
def test_a_tar_member_outside_the_target_or_a_link_is_refused(tmp_path, member):
    from tilewise.shared.errors import FileFailure

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        else:
            info.size = 3
        tf.addfile(info, io.BytesIO(b"abc") if member != "link" else None)
    with pytest.raises(FileFailure, match="refused"):
        _unpacked(tmp_path, archive)
    assert not (tmp_path / "evil.tif").exists() and not list((tmp_path / "x").rglob("*"))


def test_a_gzip_bomb_stops_at_the_cap(tmp_path):
    from tilewise.shared.errors import FileFailure

    from support.config import unpack_limits

    archive = tmp_path / "zeros.xyz.gz"
    archive.write_bytes(gzip.compress(bytes(20_000_000)))
    with pytest.raises(FileFailure, match="decompression bomb"):
        _unpacked(tmp_path, archive, unpack_limits(max_ratio=100.0))
    assert sum(p.stat().st_size for p in (tmp_path / "x").rglob("*") if p.is_file()) <= 100 * archive.stat().st_size


def test_split_7z_volumes_inside_a_zip_are_joined(tmp_path):
    """A zip holding d.7z.001 and d.7z.002: main unpacked the first volume alone ('damaged 7z archive')."""

    data = shared("archives/dted_n43_n00_e006.7z").read_bytes()
    archive = tmp_path / "volumes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("d.7z.001", data[: len(data) // 2])
        zf.writestr("d.7z.002", data[len(data) // 2 :])
    assert [Path(f).name for f in _unpacked(tmp_path, archive)] == ["n00_e006_3arc_v2.dt1", "n43.dt0"]


def test_backslashes_of_a_windows_zip_are_folders_as_unzip_reads_them(tmp_path):
    """A zip made on Windows names `sub\\dem.tif`: unzip (Mapterhorn) extracts sub/dem.tif → dem.tif;
    main kept the backslash in the name (output `sub%5Cdem.tif`)."""

    archive = tmp_path / "win.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("sub\\dem.tif")
        info.create_system = 0  # MS-DOS/Windows
        zf.writestr(info, shared("elevation/geotiff/storml_elev_orig.tif").read_bytes())
    assert _unpacked(tmp_path, archive) == ["sub/dem.tif"]


def test_a_raster_without_crs_under_keep_original_names_a_fix_that_works(tmp_path):
    """An ASCII grid (no CRS, not a GeoTIFF) in a download-only entry is converted, and fails for its
    missing CRS; main told the user to set `crs:`, which keep_original refuses at planning."""
    import shutil

    from tilewise.shared.errors import FileFailure
    from tilewise.sources.rasters import plan_pieces, write_output
    from tilewise.sources.recipe import Recipe

    asc = tmp_path / "bijou.asc"
    shutil.copy(shared("elevation/asc/west_bijou_escarpment_snippet.asc"), asc)
    recipe = Recipe(keep_original=True)
    (piece,) = plan_pieces(asc, recipe)
    with pytest.raises(FileFailure, match="drop `keep_original`.*`crs:`"):
        write_output(piece, recipe, tmp_path / "out.tif", tmp_path / "scratch")


@pytest.mark.parametrize(
    "crs, box, moved",
    [
        ("EPSG:3857", (30_000_000, 4_900_000, 30_100_000, 5_000_000), -2 * X_MAX),
        ("EPSG:4326", (500, 45, 505, 50), -360),
    ],
    ids=["3857-east-of-the-world", "lonlat-500"],
)
def test_coverage_past_the_worlds_edge_is_moved_into_it(crs, box, moved):
    """The coverage of such a raster (see above) went into coverage.gpkg as it was, outside the world."""
    import shapely
    from pyproj import CRS

    from tilewise.shared.reproject import reproject

    got = reproject(shapely.box(*box), CRS.from_user_input(crs), CRS.from_user_input(crs))
    want = shapely.box(box[0] + moved, box[1], box[2] + moved, box[3])
    assert got.symmetric_difference(want).area < 1e-6 * want.area, got.bounds


@pytest.mark.parametrize(
    "value, message",
    [
        ("NaN", r"metadata.json:1: NaN is not JSON"),
        ("-Infinity", r"metadata.json:1: -Infinity is not JSON"),
        ("0", r"key 'resolution' is 0; it must be a number of metres above 0"),
        ("-10", r"key 'resolution' is -10; it must be a number of metres above 0"),
    ],
)
def test_a_resolution_that_is_no_length_stops_at_planning(tmp_path, value, message):
    """Python's json (and Mapterhorn's attribution.py) read NaN and Infinity, and the attribution.json it
    writes then is no JSON a browser reads; a resolution of 0 or below is no resolution. Main took them."""
    from tilewise.shared.errors import CatalogError
    from tilewise.sources.catalog import load_source

    entry = tmp_path / "s"
    entry.mkdir()
    (entry / "file_list.txt").write_text("https://a/x.tif\n")
    (entry / "metadata.json").write_text(
        f'{{"name": "x", "website": "w", "license": "l", "producer": "p", "resolution": {value}, "access_year": 2025}}'
    )
    with pytest.raises(CatalogError, match=message):
        load_source(tmp_path, "s")


def test_a_crs_that_cannot_give_longitudes_fails_its_file_saying_so(tmp_path):
    """A GeoTIFF in a local (engineering) CRS: main recorded 'ProjError: Error creating Transformer from CRS.'"""
    from rasterio.crs import CRS

    from tilewise.shared.errors import FileFailure
    from tilewise.sources.raster_find import outside_web_mercator

    local = CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1]]')
    path = geotiff(tmp_path / "site.tif", ramp(10, 10), from_origin(0, 10, 1, 1), local)
    with pytest.raises(FileFailure, match=r"site.tif: its CRS 'site grid' gives no longitudes.*set `crs:`"):
        outside_web_mercator(path, "site.tif", None)


@pytest.mark.workflow
def test_joined_streams_grids_beside_an_arcinfo_grid_and_short_grids_through_the_workflow(tmp_path):
    """Found by adversarial testing (attack27): each exited 0 with a raster lost or wrong. Two bzip2 or
    xz streams in one file (only the first was converted); a GeoTIFF and a second grid beside and below
    an Arc/Info grid's .adf files (never looked at); an ASCII grid with a value missing (every pixel
    after it shifted); a classic netCDF and a PCRaster map cut short (read as 0 m elevations)."""
    import bz2
    import lzma

    import rasterio.shutil

    g = tmp_path / "gen"
    g.mkdir()
    a = geotiff(g / "a.tif", ramp(50, 60), from_origin(500000, 5600000, 10, 10), "EPSG:26912").read_bytes()
    b = geotiff(g / "b.tif", ramp(50, 60) + 7, from_origin(501000, 5600000, 10, 10), "EPSG:26912").read_bytes()
    (g / "joined.tif.bz2").write_bytes(bz2.compress(a) + bz2.compress(b))
    (g / "joined2.tif.xz").write_bytes(lzma.compress(a) + lzma.compress(b))
    grid = {p.name: p.read_bytes() for p in sorted(shared("elevation/aig/aigrid_sta_24bytes/teststa").iterdir())}
    with zipfile.ZipFile(g / "cover.zip", "w") as zf:
        for name, data in grid.items():
            zf.writestr(f"dem/{name}", data)
            zf.writestr(f"dem/second/{name}", data)
        # 8-bit as the grid (uint8): an 8-bit raster beside one of more bits is skipped as an image (test_rasters)
        beside = (ramp(50, 60) % 250).astype("uint8")
        zf.writestr(
            "dem/beside.tif",
            geotiff(g / "beside.tif", beside, from_origin(500000, 5600000, 10, 10), "EPSG:26912").read_bytes(),
        )
    lines = shared("elevation/asc/west_bijou_escarpment_snippet.asc").read_text().splitlines()
    lines[20] = " ".join(lines[20].split()[1:])  # a value missing (a NaN written as nothing)
    (g / "shifted.asc").write_text("\n".join(lines) + "\n")
    for name, driver in (("cutnc.nc", "netCDF"), ("cutmap.map", "PCRaster")):
        geotiff(g / "src.tif", ramp(300, 400, "float32") + 400, from_origin(500000, 5600000, 1, 1), "EPSG:26912")
        rasterio.shutil.copy(g / "src.tif", g / name, driver=driver)
        data = (g / name).read_bytes()
        (g / name).write_bytes(data[: len(data) * 2 // 3])
    # 300 km north of beside.tif, another data type: never in one of Mapterhorn's downstream mosaics (test_mosaic)
    geotiff(g / "fine.tif", ramp(50, 60), from_origin(502000, 5900000, 10, 10), "EPSG:26912")
    names = ["joined.tif.bz2", "joined2.tif.xz", "cover.zip", "shifted.asc", "cutnc.nc", "cutmap.map", "fine.tif"]
    # no recipe crs: the Arc/Info grid is in degrees (EPSG:4283), the GeoTIFFs tagged EPSG:26912
    make_entry(tmp_path / "catalog", "attack", [str(g / n) for n in names])
    work = tmp_path / "run"
    snakemake(work, *config(tmp_path / "catalog", "attack", "allow_incomplete=True"))

    failed = {r["file"]: r for r in rows(work / "reports/attack/failures.csv")}
    assert set(failed) == {"joined.tif.bz2", "joined2.tif.xz", "shifted.asc", "cutnc.nc", "cutmap.map"}, failed
    for name in ("joined.tif.bz2", "joined2.tif.xz"):
        assert failed[name]["step"] == "unpack" and "does not account for" in failed[name]["error"]
    assert "holds 8,642 values where its header describes 67 rows of 129" in failed["shifted.asc"]["error"]
    for name in ("cutnc.nc", "cutmap.map"):
        assert failed[name]["step"] == "convert" and "it is cut short" in failed[name]["error"]
    stored = sorted(r["filename"] for r in rows(work / "source-store/attack/bounds.csv"))
    assert stored == ["beside.tif", "dem.tif", "fine.tif", "second.tif"]


@pytest.mark.parametrize(
    "own, recipe, kind",
    [
        ("EPSG:4978", None, "Geocentric CRS"),  # X, Y, Z from the Earth's centre: landed at 84.9°E on the equator
        (None, "EPSG:4978", "Geocentric CRS"),  # assigned by the recipe (set_crs)
        (None, "+proj=geocent +datum=WGS84", "Geocentric CRS"),
        (None, "EPSG:5783", "Vertical CRS"),  # heights only: no place at all
    ],
)
def test_a_crs_without_a_horizontal_grid_fails_its_file(tmp_path, own, recipe, kind):
    """A raster's columns and rows lie in a projected or geographic CRS; under a geocentric CRS its
    coordinates read as X and Y from the Earth's centre (Z = 0) and landed silently on the equator."""
    from rasterio.crs import CRS

    from tilewise.shared.errors import FileFailure
    from tilewise.sources.raster_find import outside_web_mercator

    crs = CRS.from_user_input(own) if own else None
    path = geotiff(tmp_path / "dem.tif", ramp(10, 10), from_origin(500000, 5600000, 1, 1), crs)
    with pytest.raises(FileFailure, match=rf"dem.tif: its CRS .* is a {kind}, not .*projected or geographic.*`crs:`"):
        outside_web_mercator(path, "dem.tif", recipe)
