import io
import shutil
import stat
import zipfile

import py7zr
import pytest

from tilewise.shared.errors import FileFailure
from tilewise.sources.raster_find import find_rasters
from tilewise.sources.unpack import unpack

from conftest import shared
from support.config import unpack_limits

LIMITS = unpack_limits()


def copy(rel, tmp_path):
    dst = tmp_path / "dl" / shared(rel).name
    dst.parent.mkdir(exist_ok=True)
    shutil.copy(shared(rel), dst)
    return dst


def names(paths, root):
    return sorted(str(p.relative_to(root)) for p in paths)


def test_zip_with_aig_folder(tmp_path):
    archive = copy("archives/aigrid_sta_24bytes.zip", tmp_path)
    unpack([archive], tmp_path / "x", LIMITS)
    assert not archive.exists()  # the archive goes once unpacked
    assert names(find_rasters(tmp_path / "x"), tmp_path / "x") == ["aigrid_sta_24bytes/teststa"]


def test_7z_with_two_dted_cells(tmp_path):
    unpack([copy("archives/dted_n43_n00_e006.7z", tmp_path)], tmp_path / "x", LIMITS)
    assert names(find_rasters(tmp_path / "x"), tmp_path / "x") == ["n00_e006_3arc_v2.dt1", "n43.dt0"]


def test_multi_volume_7z(tmp_path):
    data = shared("archives/dted_n43_n00_e006.7z").read_bytes()
    cut = len(data) // 3
    vols = []
    for i, part in enumerate((data[:cut], data[cut : 2 * cut], data[2 * cut :]), start=1):
        vols.append(tmp_path / f"dted.7z.{i:03d}")
        vols[-1].write_bytes(part)
    unpack(vols, tmp_path / "x", LIMITS)
    assert names(find_rasters(tmp_path / "x"), tmp_path / "x") == ["n00_e006_3arc_v2.dt1", "n43.dt0"]
    assert not any(v.exists() for v in vols)


def test_nested_zip_in_zip(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(shared("elevation/hgt/N10W110.hgt.zip"), "deeper/N10W110.hgt.zip")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("level1/inner.zip", inner.getvalue())
    unpack([outer], tmp_path / "x", LIMITS)
    found = names(find_rasters(tmp_path / "x"), tmp_path / "x")
    assert found == ["level1/inner.zip-x/deeper/N10W110.hgt.zip-x/N10W110.hgt"]


def test_plain_file_is_moved(tmp_path):
    tif = copy("elevation/geotiff/storml_elev_orig.tif", tmp_path)
    unpack([tif], tmp_path / "x", LIMITS)
    assert (tmp_path / "x" / tif.name).exists() and not tif.exists()


@pytest.mark.parametrize("member", ["../evil.tif", "/tmp/evil.tif", "a/../../evil.tif", "C:/evil.tif"])
def test_zip_members_outside_target_are_refused(tmp_path, member):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(zipfile.ZipInfo(member), b"x")
    with pytest.raises(FileFailure, match="outside the target folder"):
        unpack([z], tmp_path / "x" / "y", LIMITS)
    assert not (tmp_path / "x" / "evil.tif").exists() and not (tmp_path / "evil.tif").exists()
    assert not (tmp_path / "x" / "y" / "ok.txt").exists()  # nothing at all is written


def test_zip_symlink_member_is_refused(tmp_path):
    z = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link.tif")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(FileFailure, match="symlink"):
        unpack([z], tmp_path / "x", LIMITS)


def test_truncated_archive_is_a_failure(tmp_path):
    data = shared("archives/SRTMGL3_40.09_-105.56_asc.7z").read_bytes()
    z = tmp_path / "cut.7z"
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFailure, match="damaged 7z archive") as err:
        unpack([z], tmp_path / "x", LIMITS)
    assert err.value.step == "unpack"


def _crafted_7z(tmp_path, member):
    z = tmp_path / "crafted.7z"
    with py7zr.SevenZipFile(z, "w") as archive:
        archive._writef(io.BytesIO(b"x" * 100), member)  # bypasses py7zr's own name check
    return z


@pytest.mark.parametrize("member", ["../evil.tif", "/tmp/evil7z.tif"])
def test_7z_members_outside_target_are_refused(tmp_path, member):
    with pytest.raises(FileFailure, match="outside the target folder"):
        unpack([_crafted_7z(tmp_path, member)], tmp_path / "x", LIMITS)
    assert not (tmp_path / "evil.tif").exists()
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())  # nothing written


def test_size_and_ratio_caps(tmp_path):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.tif", b"\0" * 5_000_000)
    with pytest.raises(FileFailure, match="over the cap of 1,000,000"):
        unpack([z], tmp_path / "a", unpack_limits(max_unpacked_bytes=1_000_000))
    with pytest.raises(FileFailure, match="decompression bomb"):
        unpack([z], tmp_path / "b", unpack_limits(max_ratio=50))
    unpack([z], tmp_path / "c", LIMITS)  # within the defaults
    assert (tmp_path / "c" / "zeros.tif").stat().st_size == 5_000_000
