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
    from conftest import shared

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


@pytest.mark.workflow
def test_bounds_and_failures_edited_by_hand_never_reach_the_tarball(tmp_path):
    """The store edited between runs: a bounds.csv row changed by hand (its mtime makes Snakemake build
    the tarball again), or failures.csv emptied to get a tarball. Main shipped both; now the tarball is
    refused, the edited bounds.csv removed, and the next run gives the clean run's tarball again."""
    from conftest import shared

    files = [shared("elevation/geotiff/storml_elev_orig.tif"), shared("elevation/dted/n43.dt0")]
    make_entry(tmp_path / "catalog", "s", [str(f) for f in files] + [str(tmp_path / "missing.tif")])
    work = tmp_path / "run"
    args = config(tmp_path / "catalog", "s", "allow_incomplete=True")
    snakemake(work, *args)
    clean = (work / "tar-store/s.tar.md5").read_text()

    bounds = work / "source-store/s/bounds.csv"
    bounds.write_text(bounds.read_text().replace(",-12610593.", ",0.", 1))  # storml's left edge
    proc = snakemake(work, *args, check=False)
    assert proc.returncode != 0 and "bounds.csv" in proc.stderr and "differ" in proc.stderr
    assert not (work / "tar-store/s.tar").exists()  # Snakemake removes a failed job's outputs: none is wrong
    snakemake(work, *args)
    assert (work / "tar-store/s.tar.md5").read_text() == clean

    failures = work / "reports/s/failures.csv"
    failures.write_text(failures.read_text().splitlines()[0] + "\n")  # header only: "nothing failed"
    proc = snakemake(work, *config(tmp_path / "catalog", "s"), check=False)
    assert proc.returncode != 0 and "missing.tif" in proc.stderr and "incomplete" in proc.stderr
    assert not (work / "tar-store/s.tar").exists()


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
