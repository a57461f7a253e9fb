import bz2
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import py7zr
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

from tilewise.shared.errors import FileFailure
from tilewise.sources.convert_set import gdal_env
from tilewise.sources.names import safe_name
from tilewise.sources.raster_find import open_rasters
from tilewise.sources.raster_unread import UnreadableRasters, reading
from tilewise.sources.unpack import MEMBER_BYTES, unpack

from conftest import REPO, shared
from support.config import unpack_limits

LIMITS = unpack_limits()


def found_rasters(root):
    return [path for path, _ in open_rasters(root)]


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
    assert names(found_rasters(tmp_path / "x"), tmp_path / "x") == ["aigrid_sta_24bytes/teststa"]


AIG = "elevation/aig/aigrid_sta_24bytes/teststa"
AIG_BESIDE = {  # what a producer puts beside and below a grid's .adf files, and what each is found as
    "storml.tif": "elevation/geotiff/storml_elev_orig.tif",
    "bijou.asc": "elevation/asc/west_bijou_escarpment_snippet.asc",
    "tiles/t1/storml.tif": "elevation/geotiff/storml_elev_orig.tif",
}


def _aig_members(folder: str) -> dict[str, bytes]:
    """An Arc/Info grid in `folder` ("" for the archive's root), with its companions (`log`,
    `metadata.xml`), the rasters of AIG_BESIDE beside and below it, and a second grid below it."""
    prefix = f"{folder}/" if folder else ""
    grid = {p.name: p.read_bytes() for p in sorted(shared(AIG).iterdir())}
    members = {prefix + name: data for name, data in grid.items()}
    members |= {prefix + "log": b"Grid created\n", prefix + "metadata.xml": b"<metadata/>"}
    members |= {prefix + name: shared(rel).read_bytes() for name, rel in AIG_BESIDE.items()}
    members |= {f"{prefix}second/{name}": data for name, data in grid.items()}
    return members


@pytest.mark.parametrize("folder", ["", "dem", "a/b/dem"], ids=["root", "depth 1", "depth 3"])
@pytest.mark.parametrize("kind", ["zip", "7z", "tar"])
def test_an_arcinfo_grid_folder_hides_no_raster_beside_or_below_it(tmp_path, kind, folder):
    """The grid's folder is one raster; a GeoTIFF and an ASCII grid beside its .adf files, a folder of
    tiles and a second grid below it are found too (they were never looked at: not converted, not
    in failures.csv or skipped.csv). The grid's own files and companions are not rasters."""
    members = _aig_members(folder)
    (tmp_path / f"set.{kind}").write_bytes({"zip": _zip, "7z": _7z, "tar": _tar}[kind](members))
    root = tmp_path / "x"
    unpack([tmp_path / f"set.{kind}"], root, LIMITS)
    prefix = f"{folder}/" if folder else ""
    grid = folder or "."
    expected = [grid, *(prefix + name for name in AIG_BESIDE), f"{prefix}second"]
    assert names(found_rasters(root), root) == sorted(expected)


def test_a_damaged_raster_beside_an_arcinfo_grid_fails_its_download(tmp_path):
    root = tmp_path / "x"
    for name, data in _aig_members("dem").items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "dem" / "cut.tif").write_bytes((root / "dem" / "storml.tif").read_bytes()[:150])
    with pytest.raises(UnreadableRasters, match=r"dem/cut.tif: GDAL cannot read this raster"):
        found_rasters(root)


def test_7z_with_two_dted_cells(tmp_path):
    unpack([copy("archives/dted_n43_n00_e006.7z", tmp_path)], tmp_path / "x", LIMITS)
    assert names(found_rasters(tmp_path / "x"), tmp_path / "x") == ["n00_e006_3arc_v2.dt1", "n43.dt0"]


def test_multi_volume_7z(tmp_path):
    data = shared("archives/dted_n43_n00_e006.7z").read_bytes()
    cut = len(data) // 3
    vols = []
    for i, part in enumerate((data[:cut], data[cut : 2 * cut], data[2 * cut :]), start=1):
        vols.append(tmp_path / f"dted.7z.{i:03d}")
        vols[-1].write_bytes(part)
    unpack(vols, tmp_path / "x", LIMITS)
    assert names(found_rasters(tmp_path / "x"), tmp_path / "x") == ["n00_e006_3arc_v2.dt1", "n43.dt0"]
    assert not any(v.exists() for v in vols)


@pytest.mark.parametrize("listed", [1, 2])
def test_a_split_7z_without_its_last_volumes_names_the_next_one(tmp_path, listed):
    data = shared("archives/dted_n43_n00_e006.7z").read_bytes()
    cut = len(data) // 3
    vols = []
    for i, part in enumerate((data[:cut], data[cut : 2 * cut]), start=1):
        vols.append(tmp_path / f"dted.7z.{i:03d}")
        vols[-1].write_bytes(part)
    with pytest.raises(FileFailure, match="damaged 7z archive") as failure:
        unpack(vols[:listed], tmp_path / "x", LIMITS)
    last, after = f"dted.7z.{listed:03d}", f"dted.7z.{listed + 1:03d}"
    assert f"more volumes than {last}, add {after} (and any after it) to file_list.txt" in str(failure.value)


def test_nested_zip_in_zip(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(shared("elevation/hgt/N10W110.hgt.zip"), "deeper/N10W110.hgt.zip")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("level1/inner.zip", inner.getvalue())
    unpack([outer], tmp_path / "x", LIMITS)
    found = names(found_rasters(tmp_path / "x"), tmp_path / "x")
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


def _tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz"])
@pytest.mark.parametrize(
    "stored, link",
    [("dem.tif", "copy/dem.tif"), ("./a/dem.tif", "./b/dem.tif"), ("a/dem.tif", "a/dem_again.tif")],
)
def test_a_tar_hard_link_is_a_copy_of_the_file_it_names(tmp_path, mode, stored, link):
    """GNU tar stores a file found twice (two hard links, tar -h) once, and a hard link to it after:
    both names get its bytes, as tar -x gives them."""
    data = os.urandom(5000)
    (tmp_path / "dl").mkdir()
    tar = _tar_with(
        tmp_path / "dl" / "t.tar", [(_member(stored), data), (_member(link, tarfile.LNKTYPE, stored), None)], mode
    )
    unpack([tar], tmp_path / "x", LIMITS)
    root = tmp_path / "x" if mode == "w" else tmp_path / "x" / "t.tar-x"  # a compressed tar's own folder
    assert (root / stored).read_bytes() == data
    assert (root / link).read_bytes() == data


def test_gnu_tar_of_two_hard_links_unpacks_both(tmp_path):
    if not shutil.which("tar"):
        pytest.skip("no tar here")
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    data = os.urandom(3000)
    (src / "a" / "dem.tif").write_bytes(data)
    os.link(src / "a" / "dem.tif", src / "a" / "dem_copy.tif")
    (tmp_path / "dl").mkdir()
    subprocess.run(["tar", "-cf", str(tmp_path / "dl" / "t.tar"), "-C", str(src), "a"], check=True)
    with tarfile.open(tmp_path / "dl" / "t.tar") as tf:
        assert any(m.islnk() for m in tf.getmembers())  # what this test is about
    unpack([tmp_path / "dl" / "t.tar"], tmp_path / "x", LIMITS)
    assert (tmp_path / "x" / "a" / "dem.tif").read_bytes() == data
    assert (tmp_path / "x" / "a" / "dem_copy.tif").read_bytes() == data


@pytest.mark.parametrize(
    "members, refusal",
    [
        ([("dem.tif", tarfile.LNKTYPE, "missing.tif")], "hard link to 'missing.tif', no member before it"),
        ([("b.tif", tarfile.LNKTYPE, "a.tif"), ("a.tif", tarfile.REGTYPE, "")], "no member before it"),
        ([("d", tarfile.DIRTYPE, ""), ("x.tif", tarfile.LNKTYPE, "d")], "not a regular file"),
        ([("x.tif", tarfile.LNKTYPE, "../outside.tif")], "outside the target folder"),
        ([("x.tif", tarfile.LNKTYPE, "/etc/passwd")], "outside the target folder"),
        ([("x.tif", tarfile.SYMTYPE, "y.tif")], "symlink or a device"),
        ([("x.tif", tarfile.CHRTYPE, "")], "symlink or a device"),
        ([("x.tif", tarfile.FIFOTYPE, "")], "symlink or a device"),
    ],
)
def test_a_tar_link_that_names_no_earlier_file_is_refused(tmp_path, members, refusal):
    (tmp_path / "dl").mkdir()
    built = [(_member(n, k, ln), b"x" * 10 if k == tarfile.REGTYPE else None) for n, k, ln in members]
    tar = _tar_with(tmp_path / "dl" / "t.tar", built)
    with pytest.raises(FileFailure, match=re.escape(refusal)):
        unpack([tar], tmp_path / "x", LIMITS)
    assert not any((tmp_path / "x").rglob("*.tif"))


def test_tar_hard_links_count_their_bytes_against_the_caps(tmp_path):
    """A thousand links to one file are a thousand copies on disk: a bomb in a small tar."""
    (tmp_path / "dl").mkdir()
    members = [(_member("z.bin"), bytes(1 << 20))]
    members += [(_member(f"z{i}.bin", tarfile.LNKTYPE, "z.bin"), None) for i in range(300)]
    tar = _tar_with(tmp_path / "dl" / "t.tar.gz", members, "w:gz")
    with pytest.raises(FileFailure, match="decompression bomb|over the cap"):
        unpack([tar], tmp_path / "x", unpack_limits(max_ratio=100.0))
    assert not any((tmp_path / "x").rglob("z*.bin"))


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


# --- the caps hold for the whole tree of archives inside one download ----------------------------


def _pack(kind: str, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with py7zr.SevenZipFile(buf, "w") as archive:
            for name, data in members.items():
                archive.writestr(data, name)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    return _pack("zip", members)


def _7z(members: dict[str, bytes]) -> bytes:
    return _pack("7z", members)


def _volumes(data: bytes, folder, n=3) -> list:
    cut = len(data) // n + 1
    paths = []
    for i in range(n):
        paths.append(folder / f"set.7z.{i + 1:03d}")
        paths[-1].write_bytes(data[i * cut : (i + 1) * cut])
    return paths


def _written_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


ZEROS = b"\0" * 20_000_000  # deflates ~1,000×, LZMA ~7,000×: each archive alone is within the 10,000× cap
NESTED = {
    "zip in zip": lambda: _zip({"inner.zip": _zip({"zeros.tif": ZEROS})}),
    "zip in zip in zip": lambda: _zip({"a/mid.zip": _zip({"b/inner.zip": _zip({"zeros.tif": ZEROS})})}),
    "7z in zip": lambda: _zip({"inner.7z": _7z({"zeros.tif": ZEROS})}),
    "zip in 7z": lambda: _7z({"inner.zip": _zip({"zeros.tif": ZEROS})}),
    "zip and 7z side by side in a 7z": lambda: _7z(
        {"one.zip": _zip({"zeros.tif": ZEROS}), "two.7z": _7z({"zeros.tif": ZEROS})}
    ),
}


@pytest.mark.parametrize("shape", list(NESTED))
def test_the_ratio_cap_counts_archives_inside_archives(tmp_path, shape):
    download = tmp_path / "dl" / "bomb"
    download.parent.mkdir()
    download.write_bytes(NESTED[shape]())
    cap_bytes = LIMITS.max_ratio * download.stat().st_size
    with pytest.raises(FileFailure, match=r"archives inside it included: .* a decompression bomb\? Refused") as err:
        unpack([download], tmp_path / "x", LIMITS)
    assert err.value.step == "unpack" and str(err.value).startswith("bomb: ")
    assert _written_bytes(tmp_path / "x") <= cap_bytes  # nothing over the cap reached the disk
    assert not list((tmp_path / "x").rglob("zeros.tif"))


def test_the_ratio_cap_counts_a_multi_volume_7z_as_its_volumes(tmp_path):
    (tmp_path / "dl").mkdir()
    volumes = _volumes(_7z({"inner.zip": _zip({"zeros.tif": ZEROS})}), tmp_path / "dl")
    cap_bytes = LIMITS.max_ratio * sum(v.stat().st_size for v in volumes)
    with pytest.raises(FileFailure, match="decompression bomb"):
        unpack(volumes, tmp_path / "x", LIMITS)
    assert _written_bytes(tmp_path / "x") <= cap_bytes


@pytest.mark.parametrize("pack", [_zip, _7z], ids=["zip", "7z"])
def test_the_size_cap_counts_archives_inside_archives(tmp_path, pack):
    noise = os.urandom(600_000)  # incompressible: only the size cap can stop it
    download = tmp_path / "dl" / "big"
    download.parent.mkdir()
    download.write_bytes(pack({"a.zip": _zip({"a.tif": noise}), "b.7z": _7z({"b.tif": noise})}))
    limits = unpack_limits(max_unpacked_bytes=1_500_000)
    with pytest.raises(FileFailure, match=r"over the cap of 1,500,000 \(unpack.max_unpacked_gb\)"):
        unpack([download], tmp_path / "x", limits)
    assert _written_bytes(tmp_path / "x") <= 1_500_000


def _lying_zip(real: bytes, declared: int) -> bytes:
    """A zip whose headers give `declared` as the member's unpacked size."""
    data = bytearray(_zip({"zeros.tif": real}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.index(signature) + offset
        data[at : at + 4] = declared.to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("declared", [1_000, 4_000_000_000])
def test_a_member_that_lies_about_its_size_stops_at_the_cap(tmp_path, declared):
    download = tmp_path / "dl" / "liar.zip"
    download.parent.mkdir()
    download.write_bytes(_lying_zip(b"\0" * 5_000_000, declared))
    limits = unpack_limits(max_unpacked_bytes=100_000)
    reason = "damaged zip archive" if declared < 100_000 else "over the cap of 100,000"
    with pytest.raises(FileFailure, match=reason):
        unpack([download], tmp_path / "x", limits)
    assert _written_bytes(tmp_path / "x") <= min(declared, 100_000)


@pytest.mark.parametrize("pack", [_zip, _7z], ids=["zip", "7z"])
def test_many_small_members_count_against_the_cap(tmp_path, pack):
    download = tmp_path / "dl" / "many"
    download.parent.mkdir()
    download.write_bytes(pack({f"d/e{i}.txt": b"x" for i in range(3000)}))  # 3,000 bytes of content
    with pytest.raises(FileFailure, match="over the cap of 1,000,000"):
        unpack([download], tmp_path / "x", unpack_limits(max_unpacked_bytes=1_000_000))
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())  # refused before writing


def _seven(members: dict[str, bytes], **options) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", **options) as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return buf.getvalue()


_GOOD_7Z = _seven({"a.bin": bytes(range(256)) * 2000})
_BAD_7Z = {
    "truncated": _GOOD_7Z[: len(_GOOD_7Z) // 2],
    "magic_and_garbage": _GOOD_7Z[:6] + bytes(range(256)) * 20,
    "magic_only": _GOOD_7Z[:6],
    "end_header_flipped": _GOOD_7Z[:-5] + bytes([_GOOD_7Z[-5] ^ 0xFF]) + _GOOD_7Z[-4:],
    "lying_next_header_offset": _GOOD_7Z[:12] + (2**62).to_bytes(8, "little") + _GOOD_7Z[20:],
    "encrypted": _seven({"a.bin": b"x" * 1000}, password="secret"),
}


@pytest.mark.parametrize("case", list(_BAD_7Z))
def test_a_bad_7z_is_its_files_failure_in_a_process_that_has_not_loaded_py7zr(tmp_path, case):
    # py7zr is imported only when a 7z is met: its errors must still be the file's failure, not the job's
    archive = tmp_path / f"{case}.7z"
    archive.write_bytes(_BAD_7Z[case])
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'src')!r})\n"
        "from pathlib import Path\n"
        "from tilewise.shared.errors import FileFailure\n"
        "from tilewise.sources.unpack import UnpackLimits, unpack\n"
        "assert 'py7zr' not in sys.modules\n"
        "try:\n"
        f"    unpack([Path({str(archive)!r})], Path({str(tmp_path / 'x')!r}), UnpackLimits(1 << 30, 1e6))\n"
        "except FileFailure as e:\n"
        "    print(e.step, e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"unpack {archive.name}: "), proc.stdout
    if case == "encrypted":
        assert "encrypted" in proc.stdout


# --- member names as Debian's unzip 6.00 extracts them --------------------------------------------


def _raw_names_zip(path, names: list[bytes], system: int, version: int, extra: bytes = b"") -> None:
    """A zip whose members' names are exactly `names` (no UTF-8 flag), made on host `system` by `version`."""
    holders = [bytes([ord("A") + i]) * len(n) for i, n in enumerate(names)]
    with zipfile.ZipFile(path, "w") as zf:
        for holder in holders:
            info = zipfile.ZipInfo(holder.decode())
            info.create_system, info.create_version, info.extra = system, version, extra
            zf.writestr(info, b"data")
    data = path.read_bytes()
    for holder, name in zip(holders, names, strict=True):
        data = data.replace(holder, name)
    path.write_bytes(data)


UMLAUT_NAMES = ["Höhe_DGM1.tif".encode(), "Höhe_cp.tif".encode("cp437"), "dir\\Höhe_l1.tif".encode("latin-1")]


@pytest.mark.parametrize(
    "system, version, expected",
    [
        (3, 30, ["Höhe_DGM1.tif", "H%94he_cp.tif", "dir\\H%F6he_l1.tif"]),  # Unix: the bytes as they are
        (19, 63, ["Höhe_DGM1.tif", "H%94he_cp.tif", "dir\\H%F6he_l1.tif"]),  # macOS (OS X)
        (11, 63, ["Höhe_DGM1.tif", "H%94he_cp.tif", "dir\\H%F6he_l1.tif"]),  # NTFS, not zip 5.0
        (0, 25, ["Höhe_DGM1.tif", "H%94he_cp.tif", "dir/H%F6he_l1.tif"]),  # MS-DOS by zip 2.5: not OEM
        (0, 20, ["H├╢he_DGM1.tif", "Höhe_cp.tif", "dir/H÷he_l1.tif"]),  # MS-DOS: CP437
        (11, 50, ["H├╢he_DGM1.tif", "Höhe_cp.tif", "dir\\H÷he_l1.tif"]),  # NTFS by zip 5.0: CP437
    ],
)
def test_zip_names_without_the_utf8_flag_follow_unzip(tmp_path, system, version, expected):
    archive = tmp_path / "names.zip"
    _raw_names_zip(archive, UMLAUT_NAMES, system, version)
    unpack([archive], tmp_path / "x", LIMITS)
    got = [p.relative_to(tmp_path / "x").parts for p in (tmp_path / "x").rglob("*") if p.is_file()]
    # bytes that are not UTF-8 stay bytes on disk, as unzip writes them; the output name escapes them
    assert sorted("/".join(safe_name(n).replace("%5C", "\\") for n in parts) for parts in got) == sorted(expected)


def test_a_unicode_path_field_names_the_member_as_unzip_reads_it(tmp_path):
    import struct
    import zlib

    raw = b"Hohe.tif"
    field = b"\x01" + struct.pack("<I", zlib.crc32(raw)) + "Höhe.tif".encode()
    _raw_names_zip(tmp_path / "u.zip", [raw], 0, 20, struct.pack("<HH", 0x7075, len(field)) + field)
    stale = b"\x01" + struct.pack("<I", 0) + b"Other.tif"  # for another name: ignored
    _raw_names_zip(tmp_path / "s.zip", [raw], 0, 20, struct.pack("<HH", 0x7075, len(stale)) + stale)
    unpack([tmp_path / "u.zip"], tmp_path / "x", LIMITS)
    unpack([tmp_path / "s.zip"], tmp_path / "y", LIMITS)
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["Höhe.tif"]
    assert [p.name for p in (tmp_path / "y").iterdir()] == ["Hohe.tif"]


@pytest.mark.skipif(not shutil.which("unzip"), reason="needs Info-ZIP unzip")
@pytest.mark.parametrize("system, version", [(3, 30), (0, 25), (11, 63)])
def test_zip_names_of_hosts_unzip_takes_as_bytes_equal_unzips(tmp_path, system, version):
    archive = tmp_path / "names.zip"
    _raw_names_zip(archive, UMLAUT_NAMES, system, version)
    (tmp_path / "u").mkdir()
    done = subprocess.run(["unzip", "-oq", str(archive)], cwd=tmp_path / "u", capture_output=True)
    assert done.returncode in (0, 1), done.stderr  # 1: a warning (backslashes read as folders)
    unpack([archive], tmp_path / "x", LIMITS)
    tree = lambda root: sorted(os.fsencode(p.relative_to(root)) for p in root.rglob("*"))  # noqa: E731
    assert tree(tmp_path / "x") == tree(tmp_path / "u")


def _good_tif(path, size=64):
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:25832")
    with rasterio.open(path, "w", transform=from_origin(500000, 5600000, 1, 1), **profile) as ds:
        ds.write(np.arange(size * size, dtype="float32").reshape(1, size, size))
    return path.read_bytes()


_ASC = "ncols 4\nnrows 4\nxllcorner 0\nyllcorner 0\ncellsize 1\nNODATA_value -9999\n" + "1 2 3 4\n" * 4
DAMAGED = {  # how a raster arrives damaged: each is its download's failure, named, never dropped
    "cut.tif": lambda good: good[:150],
    "garbage.tif": lambda good: b"<html>503 Service Unavailable</html>" * 8,
    "empty.tif": lambda good: b"",
    "cut.asc": lambda good: _ASC[:20].encode(),
    "cut.TIFF": lambda good: good[:150],  # no raster suffix GDAL knows the case of: GDAL's identification
}


@pytest.mark.parametrize("member", list(DAMAGED))
def test_a_damaged_raster_fails_its_download_naming_it(tmp_path, member):
    good = _good_tif(tmp_path / "good.tif")
    root = tmp_path / "x"
    (root / "dgm").mkdir(parents=True)
    (root / "a.tif").write_bytes(good)
    (root / "readme.txt").write_text("not a raster: never a failure")
    (root / "dgm" / member).write_bytes(DAMAGED[member](good))
    seen = []
    with pytest.raises(UnreadableRasters) as failure:
        for path, _ in open_rasters(root):
            seen.append(path.name)
    assert seen == ["a.tif"]  # the others are judged before the download fails
    message = str(failure.value)
    assert f"dgm/{member}: GDAL cannot read this raster (" in message and str(root) not in message
    assert f"exclude: [{member!r}]" in message and "download it again" in message and "readme" not in message


def test_a_macos_zips_finder_metadata_is_no_raster(tmp_path):
    """`__MACOSX/._dem.tif` (AppleDouble: the Finder's metadata of dem.tif) is neither a raster nor damaged."""
    root = tmp_path / "x"
    (root / "__MACOSX").mkdir(parents=True)
    (root / "dem.tif").write_bytes(_good_tif(tmp_path / "good.tif"))
    (root / "__MACOSX" / "._dem.tif").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(40))
    assert [path.name for path, _ in open_rasters(root)] == ["dem.tif"]


def test_a_raster_cut_after_its_header_fails_when_read(tmp_path):
    good = _good_tif(tmp_path / "good.tif", size=300)
    (tmp_path / "dem.tif").write_bytes(good[: len(good) // 2])
    with pytest.raises(UnreadableRasters, match=r"^d/dem.tif: GDAL cannot read this raster \(.*IReadBlock"):
        with reading(tmp_path / "dem.tif", "d/dem.tif"), rasterio.open(tmp_path / "dem.tif") as ds:
            ds.read()
    with reading(tmp_path / "good.tif", "good.tif"), rasterio.open(tmp_path / "good.tif") as ds:
        assert ds.read().shape == (1, 300, 300)


def _containers(root):
    """A GeoPackage with two raster tables, a NetCDF with two variables, a NetCDF with one."""
    for i, table in enumerate(["dtm", "dsm"]):
        profile = dict(driver="GPKG", width=64, height=64, count=1, dtype="float32", crs="EPSG:3857")
        options = dict(RASTER_TABLE=table, APPEND_SUBDATASET="YES" if i else "NO", TILE_FORMAT="TIFF")
        with rasterio.open(root / "dem.gpkg", "w", transform=from_origin(1e6, 6e6, 10, 10), **profile, **options) as ds:
            ds.write(np.full((1, 64, 64), 100 + i, "float32"))
    for name, count in (("multi", 2), ("one", 1)):
        profile = dict(driver="GTiff", width=8, height=8, count=count, dtype="float32", crs="EPSG:4326")
        with rasterio.open(root / f"{name}.tif", "w", transform=from_origin(10, 50, 0.1, 0.1), **profile) as ds:
            ds.write(np.ones((count, 8, 8), "float32"))
        rasterio.shutil.copy(root / f"{name}.tif", root / f"{name}.nc", driver="netCDF")
        (root / f"{name}.tif").unlink()


def test_a_container_of_several_rasters_fails_its_download_naming_them(tmp_path):
    _containers(tmp_path)
    seen = []
    with pytest.raises(UnreadableRasters) as failure:
        for path, _ in open_rasters(tmp_path):
            seen.append(path.name)
    assert seen == ["one.nc"]  # one variable: GDAL opens it as the raster, converted as any other
    message = str(failure.value)
    assert "dem.gpkg holds 2 rasters (subdatasets GPKG:dem.gpkg:dtm, GPKG:dem.gpkg:dsm)" in message
    assert "gdal_translate GPKG:dem.gpkg:dtm dem.tif" in message and "exclude: ['dem.gpkg']" in message
    assert "multi.nc holds 2 rasters" in message and "multi.nc:Band2" in message and str(tmp_path) not in message
    assert "gdal_translate netcdf:multi.nc:Band1 multi.tif" in message.replace("NETCDF", "netcdf")


# drivers GDAL writes (with rasterio): name, creation options, data type
CUT_SHORT_FORMATS = {
    "GTiff": ("dem.tif", {}, "float32"),
    "ENVI": ("dem.dat", {}, "float32"),
    "ENVI BIP": ("dem.bip", {"INTERLEAVE": "BIP"}, "float32"),
    "PCIDSK": ("dem.pix", {}, "float32"),
    "EHdr": ("dem.bil", {}, "float32"),
    "EHdr BIP": ("dem.bip", {"INTERLEAVE": "PIXEL"}, "float32"),
    "HFA": ("dem.img", {}, "float32"),
    "GSBG": ("dem.grd", {}, "float32"),
    "GS7BG": ("dem7.grd", {}, "float32"),
    "BT": ("dem.bt", {}, "float32"),
    "RST": ("dem.rst", {}, "float32"),
    "ISIS3": ("dem.cub", {}, "float32"),
    "ISIS2": ("dem.cub", {}, "float32"),
    "VICAR": ("dem.vic", {}, "float32"),
    "PAux": ("dem.raw", {}, "float32"),
    "SAGA": ("dem.sdat", {}, "float32"),
    "ERS": ("dem.ers", {}, "float32"),
    "KRO": ("dem.kro", {}, "float32"),
    "GTX": ("dem.gtx", {}, "float32"),
    "MFF": ("dem.hdr", {}, "float32"),
    "ISCE": ("dem.isce", {}, "float32"),
    "ROI_PAC": ("dem.dem", {}, "int16"),
    "RRASTER": ("dem.grd", {}, "float32"),
    "LAN": ("dem.lan", {}, "int16"),
    "BYN": ("dem.byn", {}, "int16"),
}


@pytest.mark.parametrize("size", [(40, 30), (300, 200)], ids=["small", "large"])
@pytest.mark.parametrize("fmt", list(CUT_SHORT_FORMATS))
def test_a_raster_cut_short_never_reads_as_zeros(tmp_path, fmt, size):
    """Of every format, a raster whose largest file lost its last third either fails its download or
    reads back exactly what was written, as a chunk reads it (`gdal_env`): never as rows of zeros.
    ENVI and PCIDSK did at any size, and every raw format (EHdr, ISIS, VICAR, GTX, …) did up to ~16 KiB,
    GDAL filling the missing bytes of one big read."""
    name, options, dtype = CUT_SHORT_FORMATS[fmt]
    width, height = size
    root = tmp_path / "x"
    root.mkdir()
    path = root / name
    values = (np.arange(width * height).reshape(height, width) % 1000 + 100).astype(dtype)
    profile = dict(driver=fmt.split()[0], width=width, height=height, count=1, dtype=dtype, crs="EPSG:4326")
    with gdal_env():  # as a chunk reads: sidecars found whatever the environment (a test before may set it)
        with rasterio.open(path, "w", transform=from_origin(7, 51, 1 / 3600, 1 / 3600), **profile, **options) as ds:
            ds.write(values, 1)
        with rasterio.open(path) as ds:
            largest = max((Path(f) for f in ds.files), key=lambda f: f.stat().st_size)
        os.truncate(largest, largest.stat().st_size * 2 // 3)
        try:
            for found, ds in open_rasters(root):
                with reading(found, found.name):
                    read = ds.read(1)
                assert np.array_equal(read, values), f"{fmt}: a cut-short file read as other values"
        except FileFailure as exc:
            assert "cut short" in str(exc) or "cannot read" in str(exc)


def test_a_gzipped_envi_raster_is_not_cut_short(tmp_path):
    """ENVI's `file compression = 1`: the data file is a gzip stream, smaller than the pixels it holds."""
    root = tmp_path / "x"
    root.mkdir()
    values = (np.arange(300 * 200).reshape(200, 300) % 1000 + 100).astype("float32")
    profile = dict(driver="ENVI", width=300, height=200, count=1, dtype="float32", crs="EPSG:25832")
    with gdal_env():
        with rasterio.open(root / "dem.dat", "w", transform=from_origin(500000, 5600000, 1, 1), **profile) as ds:
            ds.write(values, 1)
        (root / "dem.dat").write_bytes(gzip.compress((root / "dem.dat").read_bytes(), mtime=0))
        hdr = root / "dem.hdr"
        hdr.write_text(hdr.read_text() + "file compression = 1\n")
        read = [ds.read(1) for _, ds in open_rasters(root)]
    assert len(read) == 1 and np.array_equal(read[0], values)


def _read_as_a_chunk_does(root: Path) -> list[np.ndarray]:
    """Every raster under `root` read as a chunk reads it; a damaged one raises UnreadableRasters."""
    with gdal_env():
        read = []
        for found, ds in open_rasters(root):
            with reading(found, str(found.relative_to(root))):
                read.append(ds.read(1))
        return read


# --- ASCII grids: exactly ncols × nrows values, however they are spread over lines ----------------

ASC_SHARED = {
    "bijou": "elevation/asc/west_bijou_escarpment_snippet.asc",  # one row a line
    "srtm": "elevation/asc/SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.asc",  # rows wrapped at 16 values
}


def _asc_parts(key: str) -> tuple[list[str], np.ndarray]:
    """A real grid's header lines and its values (as text, rows × columns)."""
    lines = shared(ASC_SHARED[key]).read_text().splitlines()
    header = [line for line in lines if line[:1].isalpha()]
    values = " ".join(lines[len(header) :]).split()
    cols, rows = (int(next(h.split()[1] for h in header if h.split()[0].lower() == k)) for k in ("ncols", "nrows"))
    return header, np.array(values).reshape(rows, cols)


def _asc(header: list[str], rows, per_line: int | None = None, newline: str = "\n", sep: str = " ") -> bytes:
    lines = []
    for row in rows:
        row = list(row)
        step = per_line or max(len(row), 1)
        lines += [sep.join(row[i : i + step]) for i in range(0, len(row), step)] or [""]
    return (newline.join(header + lines) + newline).encode()


def _set(header: list[str], key: str, value) -> list[str]:
    return [f"{key} {value}" if h.split()[0].lower() == key else h for h in header]


def _without(rows: np.ndarray, row: int, col: int) -> list[list[str]]:
    cut = [list(r) for r in rows]
    del cut[row][col]
    return cut


ASC_WRONG = {  # how a grid's values fail to fill its header's grid, each read by GDAL without an error
    "a value missing in a middle row": lambda h, v: _asc(h, _without(v, len(v) // 3, 5)),
    "a value missing in the first row": lambda h, v: _asc(h, _without(v, 0, 0)),
    "the last value missing": lambda h, v: _asc(h, _without(v, -1, -1)),
    "a value too many": lambda h, v: _asc(h, [*map(list, v[:-1]), [*v[-1], v[-1][-1]]]),
    "nrows one smaller": lambda h, v: _asc(_set(h, "nrows", len(v) - 1), v),
    "nrows a third smaller": lambda h, v: _asc(_set(h, "nrows", len(v) * 2 // 3), v),
    "ncols one smaller": lambda h, v: _asc(_set(h, "ncols", v.shape[1] - 1), v),
    "a row missing, wrapped lines": lambda h, v: _asc(h, v[1:], per_line=10),
    "a value missing, CRLF and tabs": lambda h, v: _asc(h, _without(v, 2, 3), newline="\r\n", sep="\t"),
}
ASC_RIGHT = {  # the same values laid out otherwise: all are the grid
    "as written": lambda h, v: _asc(h, v),
    "10 values a line": lambda h, v: _asc(h, v, per_line=10),
    "all values on one line": lambda h, v: _asc(h, [list(v.ravel())]),
    "CRLF, tabs, blank lines, no final newline": lambda h, v: _asc(h, v, newline="\r\n\r\n", sep="\t \t")[:-4],
    "xllcenter and lower-case keys": lambda h, v: _asc([x.lower().replace("corner", "center") for x in h], v),
}


@pytest.mark.parametrize("key", list(ASC_SHARED))
@pytest.mark.parametrize("layout", list(ASC_WRONG) + list(ASC_RIGHT))
def test_an_ascii_grid_whose_values_do_not_fill_its_header_fails(tmp_path, key, layout):
    """GDAL reads an ASCII grid's values as one stream, not line by line: a value missing shifted every
    pixel after it (the last read as 0), a header's nrows too small cut rows off, an ncols too small
    sheared every row, each without an error. Only exactly ncols × nrows values are the grid."""
    header, values = _asc_parts(key)
    root = tmp_path / "x"
    (root / "tiles").mkdir(parents=True)
    (root / "tiles" / "dem.asc").write_bytes({**ASC_WRONG, **ASC_RIGHT}[layout](header, values))
    if layout in ASC_RIGHT:
        [read] = _read_as_a_chunk_does(root)
        assert np.array_equal(read, values.astype(float).astype(read.dtype))
        return
    with pytest.raises(
        UnreadableRasters, match=r"^tiles/dem.asc: GDAL (would read this AAIGrid raster, but it holds|cannot)"
    ):
        _read_as_a_chunk_does(root)


GRASS_HEADER = ["north: 4000", "south: 3000", "east: 5000", "west: 4000", "rows: 10", "cols: 10"]
GRASS_VALUES = (np.arange(100).reshape(10, 10) + 100).astype(str)


def test_a_grass_ascii_grid_whose_values_do_not_fill_its_header_fails(tmp_path):
    """GRASS's ASCII grid is read by the same reader, values as one stream."""
    header, values = GRASS_HEADER, GRASS_VALUES
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.txt").write_bytes(_asc(header, values))
    assert np.array_equal(_read_as_a_chunk_does(root)[0], values.astype(int))
    (root / "dem.txt").write_bytes(_asc(header, _without(values, 4, 4)))
    with pytest.raises(UnreadableRasters, match=r"holds 99 values where its header describes 10 rows of 10"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("key", list(ASC_SHARED))
@pytest.mark.parametrize(
    "after, extra, said",
    [
        ("cellsize", ["cellsize 0.5"], "cellsize more than once"),
        ("xllcorner", ["XLLCORNER 123.25"], "xllcorner more than once"),
        ("yllcorner", ["yllcorner -5"], "yllcorner more than once"),
        ("nrows", ["NROWS 7"], "nrows more than once"),
        ("cellsize", ["nodata_value -9999", "NODATA_value -32768"], "nodata_value more than once"),
        ("cellsize", ["dx 0.5", "dy 0.25"], "both cellsize and dx/dy"),
        ("cellsize", ["dy 0.25"], "both cellsize and dx/dy"),
    ],
)
def test_an_ascii_grid_whose_header_says_one_thing_twice_fails(tmp_path, key, after, extra, said):
    """GDAL reads a key given twice, or cellsize beside dx/dy, without an error, taking one of them:
    which one the producer meant cannot be told (a second cellsize moved every pixel but the first)."""
    header, values = _asc_parts(key)
    header = [h for h in header if h.split()[0].lower() != "nodata_value"]
    at = next(i for i, h in enumerate(header) if h.split()[0].lower() == after) + 1
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_asc(header[:at] + extra + header[at:], values))
    with pytest.raises(UnreadableRasters, match=rf"^dem.asc: its header gives {said}.*exclude: \['dem.asc'\]"):
        _read_as_a_chunk_does(root)


def test_a_grass_ascii_grid_whose_header_says_one_thing_twice_fails(tmp_path):
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.txt").write_bytes(_asc([*GRASS_HEADER[:2], "north: 4500", *GRASS_HEADER[2:]], GRASS_VALUES))
    with pytest.raises(UnreadableRasters, match=r"^dem.txt: its header gives north more than once"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize(
    "header, said",
    [
        (["multiplier: 0.1"], "multiplier: 0.1"),  # decimetres: r.in.ascii multiplies, GDAL does not
        (["multiplier: 0.3048"], "multiplier: 0.3048"),  # feet
        (["type: int", "multiplier: 10"], "multiplier: 10"),
        (["north: 47:30:00N"], "north: 47:30:00N"),  # a lat/long location's bounds: GDAL reads 47 and 0-wide cells
        (["west: 8:00:00E", "east: 8:04:30E"], "west: 8:00:00E"),
        (["south: 1.5e3x"], "south: 1.5e3x"),
    ],
)
def test_a_grass_ascii_header_gdal_reads_otherwise_fails(tmp_path, header, said):
    """GDAL ignores a GRASS header's `multiplier:` (values shipped 10× or in feet) and reads a bound
    written as degrees:minutes:seconds as its degrees (a grid of cells 0 wide), without an error."""
    keys = {h.split(":")[0] for h in header}
    lines = [h for h in GRASS_HEADER if h.split(":")[0] not in keys] + header
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.txt").write_bytes(_asc(lines, GRASS_VALUES))
    fix = r".*(metres|decimal degrees).*exclude"
    with pytest.raises(UnreadableRasters, match=rf"^dem.txt: its header says {re.escape(said)}, which GDAL {fix}"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("extra", [["multiplier: 1"], ["multiplier: 1.0", "type: float"], ["null: -9999"], []])
def test_a_grass_ascii_header_gdal_reads_as_written_converts(tmp_path, extra):
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.txt").write_bytes(_asc(GRASS_HEADER + extra, GRASS_VALUES))
    assert np.array_equal(_read_as_a_chunk_does(root)[0], GRASS_VALUES.astype(float))


@pytest.mark.parametrize("key", list(ASC_SHARED))
@pytest.mark.parametrize(
    "cells, said",
    [
        (["cellsize -0.001"], "cellsize -0.001"),  # GDAL: a grid running east to west and south to north
        (["cellsize 0"], "cellsize 0"),  # GDAL: cells 0 wide, every pixel at one point
        (["dx 0.001", "dy -0.001"], "dy -0.001"),
        (["dx 0", "dy 0.001"], "dx 0"),
    ],
)
def test_an_ascii_grid_whose_cells_are_not_positive_fails(tmp_path, key, cells, said):
    """An ESRI header's cell size must be a positive number: GDAL reads `cellsize -0.001` or `dy -0.001`
    as a grid flipped about its corner (refused as not north-up, where `fix_orientation` would warp it
    flipped), and 0 as cells 0 wide, without an error."""
    header, values = _asc_parts(key)
    header = [h for h in header if h.split()[0].lower() != "cellsize"] + cells
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_asc(header, values))
    with pytest.raises(UnreadableRasters, match=rf"^dem.asc: its header says {said}; a cell size must be a positive"):
        _read_as_a_chunk_does(root)


def test_an_ascii_grid_is_counted_in_pieces(tmp_path, monkeypatch):
    """A grid larger than one counting piece: values cut across pieces are counted once."""
    from tilewise.sources import raw_headers

    header, values = _asc_parts("srtm")
    (tmp_path / "dem.asc").write_bytes(_asc(header, values))
    for piece in (1, 2, 3, 7, 4096):
        monkeypatch.setattr(raw_headers, "COUNT_BYTES", piece)
        assert raw_headers.ascii_grid_values(tmp_path / "dem.asc") == values.size


def _with_value(rows: np.ndarray, row: int, col: int, token: str) -> np.ndarray:
    rows = rows.copy().astype(object)
    rows[row, col] = token
    return rows


ASC_NO_NUMBER = {  # (a real grid's key or GRASS, a value written there, as GDAL reads it without an error)
    "a star for a void, no null key (GRASS r.out.ascii)": ("grass", "*"),  # 0
    "NA in an integer grid": ("bijou", "NA"),  # 0
    "N/A in a grid of decimals": ("dec", "N/A"),  # 0
    "nan in an integer grid": ("srtm", "nan"),  # 0: GDAL reads the grid as Int32
    "-nan in a grid of decimals": ("dec", "-nan"),  # 0
    "NAN in a grid of decimals": ("dec", "NAN"),  # 0: GDAL's NaN is `nan` or `NaN`
    "Nan in a grid of decimals": ("dec", "Nan"),  # 0
    "a number with a unit": ("bijou", "2345m"),  # 2345, the unit dropped: and 12abc as 12
    "two signs": ("srtm", "--2300"),  # 0
    "two decimal points": ("dec", "1234.5.6"),  # 1234.5
    "inf": ("dec", "inf"),  # 3.4e38
    "a hex number": ("bijou", "0x1A"),  # 0
}
ASC_NUMBERS = {  # values GDAL reads as written: each stays what it says
    "a void as the GRASS null key says (*)": ("grass", "*", "null: *"),
    "a void as the GRASS null key says (NA)": ("grass", "NA", "null: NA"),
    "nan in a grid of decimals": ("dec", "nan", None),
    "NaN in a grid of decimals": ("dec", "NaN", None),
    "an MSVC NaN (-1.#IND)": ("dec", "-1.#IND", None),
    "an MSVC NaN (1.#QNAN)": ("dec", "1.#QNAN", None),
    "a plus sign": ("dec", "+1234.5", None),
    "scientific notation": ("dec", "1.2345e3", None),
    "a leading point, an exponent": ("dec", ".5E1", None),
    "a trailing point": ("dec", "1234.", None),
}


def _grid_with(key: str, token: str, null: str | None = None) -> bytes:
    """A grid (real ESRI ones, GRASS, or one of decimals) with `token` as one value in its third row."""
    if key == "grass":
        header, values = GRASS_HEADER + ([null] if null else []), GRASS_VALUES
    elif key == "dec":
        header, values = _asc_parts("bijou")
        values = np.char.add(values, ".25")
    else:
        header, values = _asc_parts(key)
    return _asc(header, _with_value(values, 2, 3, token))


@pytest.mark.parametrize("case", list(ASC_NO_NUMBER))
def test_an_ascii_grid_value_that_is_no_number_fails_naming_its_line(tmp_path, case):
    """GDAL reads each value of an ASCII grid with atof/atoi and no check: a token that is no number
    (a GRASS `*` void without a `null:` key, NA, nan in a grid it reads as integers, `2345m`) becomes
    0 or a part of it, an elevation, without a word. Only numbers as written, NaN in a float grid, and
    the header's own nodata/null token are values."""
    key, token = ASC_NO_NUMBER[case]
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_grid_with(key, token))
    with pytest.raises(UnreadableRasters, match=rf"^dem.asc: line 9 holds {re.escape(repr(token))}, no number"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("case", list(ASC_NUMBERS))
def test_an_ascii_grid_of_numbers_and_its_own_void_token_converts(tmp_path, case):
    key, token, null = ASC_NUMBERS[case]
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_grid_with(key, token, null))
    [read] = _read_as_a_chunk_does(root)
    if null:
        assert read[2, 3] == 0  # GDAL's value for its null token, masked as nodata
        with rasterio.open(root / "dem.asc") as ds:
            assert ds.read_masks(1)[2, 3] == 0 and ds.read_masks(1).sum() == 255 * 99
    else:
        expected = float("nan") if "#" in token else float(token)
        assert read[2, 3] == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    "key, null, token, zero",
    [
        ("grass", "null: *", "*", "0"),  # GRASS r.out.ascii's default void
        ("grass", "null:*", "*", "-0.0"),
        ("grass", "null: NA", "NA", "000"),
        ("bijou", "NODATA_value NA", "NA", "0"),
        ("dec", "NODATA_value *", "*", "0.0"),
    ],
)
def test_a_void_token_that_is_no_number_beside_a_height_of_0_fails(tmp_path, key, null, token, zero):
    """GDAL reads a void token that is no number as 0, and takes 0 for the grid's nodata: its heights of
    0 m became voids too (a coast at sea level lost), exit 0. Without a 0, the grid converts."""
    header, values = (GRASS_HEADER, GRASS_VALUES) if key == "grass" else _asc_parts("bijou")
    if key == "dec":
        values = np.char.add(values, ".25")
    header = [h for h in header if h.split()[0].lower() != "nodata_value"] + [null]
    values = _with_value(values, 2, 3, token)
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_asc(header, _with_value(values, 4, 1, zero)))
    line = len(header) + 5
    with pytest.raises(
        UnreadableRasters, match=rf"^dem.asc: .*void token {re.escape(repr(token))} is no number.*line {line}"
    ):
        _read_as_a_chunk_does(root)
    (root / "dem.asc").write_bytes(_asc(header, values))
    [read] = _read_as_a_chunk_does(root)
    with rasterio.open(root / "dem.asc") as ds:
        assert ds.read_masks(1)[2, 3] == 0 and ds.read_masks(1).sum() == 255 * (values.size - 1)


def test_a_value_that_is_no_number_is_found_in_any_piece(tmp_path, monkeypatch):
    """Values cut across counting pieces are read whole: `1234.5` cut as `1234` and `.5` is no value
    twice, and a bad token at a piece's edge is found."""
    from tilewise.sources import raw_headers

    header, values = _asc_parts("srtm")
    (tmp_path / "dem.asc").write_bytes(_asc(header, values))
    (tmp_path / "bad.asc").write_bytes(_asc(header, _with_value(values, 100, 50, "--2300")))
    for piece in (1, 2, 3, 7, 4096):
        monkeypatch.setattr(raw_headers, "COUNT_BYTES", piece)
        assert raw_headers.ascii_grid_no_number(tmp_path / "dem.asc", float_band=False) is None
        assert raw_headers.ascii_grid_no_number(tmp_path / "bad.asc", float_band=False) == (6 + 101, "--2300")


SWISS_XYZ = "elevation/xyz/SWISSALTI3D_10_XYZ_CHLV95_LN02_2600_1196.xyz"  # "X Y Z", then x y z a line


def _xyz_with(field: str, layout: str) -> bytes:
    """The real swissALTI3D file, its 5th point's height written as `field`, laid out as `layout`."""
    lines = shared(SWISS_XYZ).read_text().splitlines()
    x, y, _ = lines[5].split()
    lines[5] = f"{x} {y} {field}"
    if layout == "semicolons, decimal commas":
        lines = [line.replace(".", ",").replace(" ", ";") for line in lines]
    elif layout == "commas":
        lines = [line.replace(" ", ",") for line in lines]
    elif layout == "tabs, CRLF, no header":
        return "\r\n".join(line.replace(" ", "\t") for line in lines[1:]).encode() + b"\r\n"
    return ("\n".join(lines) + "\n").encode()


XYZ_LAYOUTS = ["spaces", "semicolons, decimal commas", "commas", "tabs, CRLF, no header"]


@pytest.mark.parametrize("layout", XYZ_LAYOUTS)
@pytest.mark.parametrize("field", ["-", ".", "+", "--673", "673.6.4", "673-5", "e5", "1e"])
def test_an_xyz_field_that_is_no_number_fails_naming_its_line(tmp_path, field, layout):
    """GDAL's XYZ reader takes a height written `-`, `.`, `+` or `--673` as 0 m and `673.6.4` as 673.6,
    a grid it otherwise reads without a word (`NA`, `nan` or `*` it refuses)."""
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.xyz").write_bytes(_xyz_with(field, layout))
    line = 5 if layout.startswith("tabs") else 6
    written = field.replace(".", ",") if layout.startswith("semicolons") else field
    with pytest.raises(UnreadableRasters, match=rf"^dem.xyz: line {line} holds {re.escape(repr(written))}, no number"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("layout", XYZ_LAYOUTS)
@pytest.mark.parametrize("field", ["673.25", "+673.25", "6.7325e2", "673", "-0.5"])
def test_an_xyz_of_numbers_converts_in_every_layout(tmp_path, field, layout):
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.xyz").write_bytes(_xyz_with(field, layout))
    [read] = _read_as_a_chunk_does(root)
    assert float(field) in read


@pytest.mark.parametrize("side", [1201, 3601])
@pytest.mark.parametrize("name", ["tile_01.hgt", "N47E008_dem.hgt", "N47E8.hgt", "47N008E.hgt", "srtm.HGT"])
def test_an_hgt_named_after_no_corner_fails_saying_to_rename_it(tmp_path, name, side):
    """GDAL places an SRTM .hgt by its name alone: a renamed tile is no raster to GDAL, and failing it as
    damaged ("download it again") gave a fix that never works."""
    root = tmp_path / "x"
    root.mkdir()
    (root / name).write_bytes(np.full((side, side), 500, ">i2").tobytes())
    said = rf"^{re.escape(name)}: an SRTM .hgt of {side}×{side} heights.*rename it"
    with pytest.raises(UnreadableRasters, match=said):
        _read_as_a_chunk_does(root)


def test_an_hgt_of_no_srtm_size_is_damaged(tmp_path):
    root = tmp_path / "x"
    root.mkdir()
    (root / "N47E008.hgt").write_bytes(np.full((1200, 1201), 500, ">i2").tobytes())
    with pytest.raises(UnreadableRasters, match=r"^N47E008.hgt: GDAL cannot read this raster .*damaged or cut short"):
        _read_as_a_chunk_does(root)


def _xyz_points(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


XYZ_UNGRIDDED = {
    "degrees rounded to 6 decimals": [
        f"{8 + c / 1200:.6f} {47.5 - r / 1200:.6f} {500 + r + c}" for r in range(40) for c in range(50)
    ],
    "a point twice": [f"{c} {r} {500 + c}" for r in (2, 1, 0) for c in range(4)][:6] + ["1 1 501", "1 1 502"],
    "scattered points": [f"{x} {y} 500" for x, y in ((0, 0), (3, 1), (1, 7), (8, 2), (5, 5))],
}


@pytest.mark.parametrize("case", list(XYZ_UNGRIDDED))
def test_an_xyz_of_points_off_one_grid_fails_saying_so(tmp_path, case):
    """GDAL reads only XYZ points on one regular grid; one it refuses is no damaged download, and
    "download it again" was a fix that never works."""
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.xyz").write_bytes(_xyz_points(XYZ_UNGRIDDED[case]))
    with pytest.raises(UnreadableRasters, match=r"^dem.xyz: its points do not lie on one regular grid .*gdal_grid"):
        _read_as_a_chunk_does(root)


def _ehdr(root: Path, suffix: str, dtype: str, header: list[str]) -> np.ndarray:
    """A 3 × 4 EHdr raster (`dem.bil`, `dem.flt`) of heights 1 … 12 m written little-endian, as on
    every PC, and its .hdr."""
    heights = np.arange(1, 13).reshape(3, 4).astype(dtype)
    (root / f"dem{suffix}").write_bytes(heights.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
    grid = ["ncols 4", "nrows 3", "xllcorner 500000", "yllcorner 5600000", "cellsize 10"]
    bits = [f"NBITS {np.dtype(dtype).itemsize * 8}"] + (["PIXELTYPE SIGNEDINT"] if dtype == "int16" else [])
    (root / "dem.hdr").write_text("\n".join(grid + (bits if suffix == ".bil" else []) + header) + "\n")
    return heights


@pytest.mark.parametrize("suffix, dtype", [(".bil", "int16"), (".bil", "uint16"), (".flt", "float32")])
def test_an_ehdr_raster_without_byte_order_fails(tmp_path, suffix, dtype):
    """GDAL reads a BIL or FLT whose .hdr gives no byte order as big-endian; PCs write little-endian
    (ESRI: the default is the writer's machine), so heights of 1 … 12 m read as 256 … 3072 m, inside the
    Earth's range, exit 0. Which order the producer wrote cannot be told from the file."""
    root = tmp_path / "x"
    root.mkdir()
    _ehdr(root, suffix, dtype, [])
    with pytest.raises(UnreadableRasters, match=rf"^dem{suffix}: its dem.hdr gives no byte order .*BYTEORDER I"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("order", ["BYTEORDER", "BYTEORDER 0", "BYTEORDER 1", "byteorder PC", "BYTEORDER X"])
def test_an_ehdr_raster_whose_byte_order_says_none_gdal_knows_fails(tmp_path, order):
    """GDAL reads I… or L… as little-endian and any other BYTEORDER (none given, a number, PC) as big-endian:
    heights of 1 … 12 m written little-endian read as 256 … 3072 m, exit 0."""
    root = tmp_path / "x"
    root.mkdir()
    _ehdr(root, ".bil", "int16", [order])
    with pytest.raises(UnreadableRasters, match=r"^dem.bil: its dem.hdr gives BYTEORDER .*, which says no byte order"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("suffix, dtype", [(".bil", "int16"), (".flt", "float32"), (".bil", "uint8")])
@pytest.mark.parametrize(
    "order",
    ["BYTEORDER I", "byteorder LSBFIRST", "ByteOrder i", "BYTEORDER L", "BYTEORDER M", "BYTEORDER MSBFIRST", "none"],
)
def test_an_ehdr_raster_with_its_byte_order_converts(tmp_path, suffix, dtype, order):
    root = tmp_path / "x"
    root.mkdir()
    heights = _ehdr(root, suffix, dtype, [] if order == "none" else [order])
    if order == "none" and dtype != "uint8":
        return  # the case above
    big = order.split()[-1].upper().startswith("M")
    if big:  # the file as the header says: big-endian
        (root / f"dem{suffix}").write_bytes(heights.astype(np.dtype(dtype).newbyteorder(">")).tobytes())
    [read] = _read_as_a_chunk_does(root)
    assert np.array_equal(read, heights)


def _envi(root: Path, dtype: str, byte_order: str | None) -> np.ndarray:
    """An ENVI raster `dem.img` of heights 1 … 12 m as a PC writes them (little-endian), its .hdr written by
    hand with `byte_order` (None: no such line)."""
    heights = (np.arange(12) + 1).astype(dtype).reshape(3, 4)
    heights.astype(np.dtype(dtype).newbyteorder("<")).tofile(root / "dem.img")
    codes = {"int16": 2, "uint16": 12, "int32": 3, "float32": 4, "float64": 5, "uint8": 1}
    header = [
        "ENVI",
        "samples = 4",
        "lines = 3",
        "bands = 1",
        "header offset = 0",
        "file type = ENVI Standard",
        f"data type = {codes[dtype]}",
        "interleave = bsq",
        "map info = {UTM, 1, 1, 500000, 5600000, 1, 1, 32, North, WGS-84}",
    ]
    (root / "dem.hdr").write_text("\n".join(header + ([byte_order] if byte_order else [])) + "\n")
    return heights


@pytest.mark.parametrize("byte_order", [None, "byte  order = 0", "byteorder = 0"])  # GDAL reads neither key
@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32", "float32", "float64"])
def test_an_envi_raster_without_byte_order_fails(tmp_path, dtype, byte_order):
    """GDAL reads an ENVI raster whose .hdr gives no byte order in the reading machine's order: a file from a
    big-endian machine read 1 … 12 m as 256 … 3072 m here (and a PC's file would read so on a big-endian one)."""
    root = tmp_path / "x"
    root.mkdir()
    _envi(root, dtype, byte_order)
    with pytest.raises(UnreadableRasters, match=r"^dem.img: its dem.hdr gives no `byte order` .*byte order = 1"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("dtype", ["int16", "float32", "uint8"])
@pytest.mark.parametrize("order", ["byte order = 0", "BYTE ORDER = 0", "Byte Order=0", "none"])
def test_an_envi_raster_with_its_byte_order_converts(tmp_path, dtype, order):
    root = tmp_path / "x"
    root.mkdir()
    heights = _envi(root, dtype, None if order == "none" else order)
    if order == "none" and dtype != "uint8":
        return  # the case above
    [read] = _read_as_a_chunk_does(root)
    assert np.array_equal(read, heights)


ESRI_GRID_TEXT = "ncols 3\nnrows 2\nxllcorner 500000\nyllcorner 5600000\ncellsize 1\nNODATA_value -9999\n1 2 3\n4 5 6\n"
GRASS_GRID_TEXT = "north: 5600002\nsouth: 5600000\neast: 500003\nwest: 500000\nrows: 2\ncols: 3\n1 2 3\n4 5 6\n"


@pytest.mark.parametrize(
    "before, said",
    [
        (b"\xef\xbb\xbf", "a byte-order mark"),  # a Windows editor's UTF-8
        (b"  ", "blanks or blank lines"),
        (b"\t", "blanks or blank lines"),
        (b"\n", "blanks or blank lines"),
        (b"\r\n\r\n", "blanks or blank lines"),
    ],
)
@pytest.mark.parametrize("grid", [ESRI_GRID_TEXT, GRASS_GRID_TEXT])
def test_an_ascii_grid_whose_header_does_not_start_the_file_fails_saying_so(tmp_path, before, said, grid):
    # GDAL does not take it for an ASCII grid: "damaged or cut short, download it again" sent the user astray
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(before + grid.encode())
    with pytest.raises(UnreadableRasters, match=rf"^dem.asc: an ASCII grid whose header comes after {said}, .*remove"):
        _read_as_a_chunk_does(root)


# --- DTED: heights in signed magnitude, which some producers write in two's complement ------------

DTED_SHARED = ["elevation/dted/n43.dt0", "elevation/dted/n00_e006_3arc_v2.dt1"]  # the .dt1 has voids, 2 below 0 m
NEGATIVE_ZERO = 0x8000  # −0 m in signed magnitude, −32768 (the void) in two's complement


def _dted_with(tmp_path: Path, rel: str, words: dict[int, int], twos_complement: bool = False) -> tuple[Path, int]:
    """A copy of a real DTED file under tmp_path/x, written in two's complement (its voids as −32768) if
    `twos_complement`, whose first longitude line's first heights (from the south) are then the 16-bit
    `words` {index: word}; returns the folder and the file's number of rows."""
    root = tmp_path / "x"
    root.mkdir()
    dst = root / Path(rel).name
    with rasterio.open(shared(rel)) as ds:
        cols, rows = ds.width, ds.height
    data = bytearray(shared(rel).read_bytes())
    first_record = 80 + 648 + 2700  # UHL, DSI, ACC
    records = np.frombuffer(data, np.uint8, cols * (12 + 2 * rows), first_record).reshape(cols, -1)
    words_now = records[:, 8 : 8 + 2 * rows].copy().view(">u2")
    if twos_complement:
        magnitude = (words_now & 0x7FFF).astype(np.int32)
        negative = (words_now & 0x8000) > 0
        words_now = np.where(words_now == 0xFFFF, NEGATIVE_ZERO, np.where(negative, 0x10000 - magnitude, words_now))
    for i, word in words.items():
        words_now[0, i] = word
    heights = records.copy()
    heights[:, 8 : 8 + 2 * rows] = words_now.astype(">u2").view(np.uint8)
    data[first_record : first_record + heights.size] = heights.tobytes()
    dst.write_bytes(bytes(data))
    return root, rows


@pytest.mark.parametrize(
    "rel, words, zeros, said",
    [
        (DTED_SHARED[1], {}, 4072, r"its 2 other negative heights are in two's complement, so these are voids"),
        (DTED_SHARED[1], {9: 0xFFF6}, 4072, r"its 3 other negative heights are in two's complement"),
        (DTED_SHARED[0], {0: NEGATIVE_ZERO, 2: 0xFFFB}, 1, r"its 1 other negative heights are in two's complement"),
        (DTED_SHARED[0], {3: NEGATIVE_ZERO, 4: NEGATIVE_ZERO}, 2, r"its other negative heights do not say which"),
        (DTED_SHARED[0], {0: NEGATIVE_ZERO, 1: 0x8005, 2: 0xFFFB}, 1, r"its other negative heights do not say which"),
    ],
)
def test_a_dted_whose_heights_may_be_twos_complement_voids_fails(tmp_path, rel, words, zeros, said):
    """GDAL reads a DTED height stored as 0x8000 as 0 m (−0 in DTED's signed magnitude); in the two's
    complement some producers write it is −32768, their void, which shipped as 0 m with exit 0 (the
    .dt1's 4,072 voids, written so, became 0 m; its other negatives GDAL reads right in either coding)."""
    root, _ = _dted_with(tmp_path, rel, words, twos_complement=True)
    name = Path(rel).name
    with pytest.raises(
        UnreadableRasters, match=rf"^{re.escape(name)}: {zeros:,} of its heights are stored as 0x8000.*{said}.*{name}"
    ):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("rel", DTED_SHARED)
def test_a_dted_in_signed_magnitude_with_a_rounded_negative_zero_converts(tmp_path, rel):
    """A file whose negative heights are in signed magnitude wrote −0 m: 0 m, as GDAL reads it."""
    root, rows = _dted_with(tmp_path, rel, {0: NEGATIVE_ZERO, 1: 0x8005, 2: 0x8000 | 12, 3: 0xFFFF})
    [read] = _read_as_a_chunk_does(root)
    assert list(read[rows - 4 :, 0][::-1]) == [0, -5, -12, -32767]


def _surfer(values: list[str], newline: str = "\n") -> bytes:
    """A Surfer ASCII grid (DSAA) of 4 columns and 3 rows (rows from the south), `values` after its header."""
    header = ["DSAA", "4 3", "500005 500035", "5600005 5600025", "100 111"]
    rows = [" ".join(values[i : i + 4]) for i in range(0, len(values), 4)]
    return newline.join(header + rows).encode() + newline.encode()


SURFER = [str(100 + i) for i in range(12)]


@pytest.mark.parametrize(
    "values, said",
    [
        (SURFER[:5] + ["105.2.5"] + SURFER[6:], r"line 7 holds '105.2.5', no number"),  # read as 105.2 and .5
        (SURFER[:5] + ["105-3"] + SURFER[6:], r"line 7 holds '105-3', no number"),  # 105 and -3
        ([*SURFER, "112"], r"holds 13 values where its header describes 3 rows of 4"),  # one dropped
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_surfer_ascii_grid_whose_values_gdal_reads_otherwise_fails(tmp_path, values, said, newline):
    """GDAL's Surfer ASCII reader takes values with strtod as one stream: `105.2.5` became two values,
    shifting every pixel after it, and a value too many was dropped, without an error."""
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.grd").write_bytes(_surfer(values, newline))
    with pytest.raises(UnreadableRasters, match=rf"^dem.grd: (GDAL would read this GSAG raster, but it )?{said}"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_surfer_ascii_grid_of_numbers_converts(tmp_path, newline):
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.grd").write_bytes(_surfer([*SURFER[:4], "1.04e2", "+105", *SURFER[6:]], newline))
    [read] = _read_as_a_chunk_does(root)
    assert read[::-1].ravel().tolist() == list(range(100, 112))


# --- formats whose header tells their size, read as zeros where they are cut short -----------------


def _classic_netcdf(values: np.ndarray, version: int, record: bool) -> bytes:
    """A classic netCDF file written by hand (GDAL writes no record variable, nor CDF-5): coordinate
    variables x(x), y(y), then elevation(time, y, x) float32, `time` unlimited (one record) when
    `record`. Counts are 4 bytes (8 in CDF-5), offsets 4 (8 from CDF-2)."""
    height, width = values.shape
    count, offset = (">Q" if version == 5 else ">I"), (">I" if version == 1 else ">Q")
    dims = [("time", 0 if record else 1), ("y", height), ("x", width)]
    variables = [("x", [2], 6, width * 8), ("y", [1], 6, height * 8), ("elevation", [0, 1, 2], 5, values.size * 4)]

    def name(text: str) -> bytes:
        return struct.pack(count, len(text)) + text.encode() + bytes(-len(text) % 4)

    def header(begins):
        absent = struct.pack(">I", 0) + struct.pack(count, 0)
        out = b"CDF" + bytes([version]) + struct.pack(count, 1)
        out += struct.pack(">I", 0x0A) + struct.pack(count, len(dims))
        out += b"".join(name(n) + struct.pack(count, length) for n, length in dims)
        out += absent + struct.pack(">I", 0x0B) + struct.pack(count, len(variables))
        for (var, ids, nc_type, size), begin in zip(variables, begins, strict=True):
            out += name(var) + struct.pack(count, len(ids)) + b"".join(struct.pack(count, i) for i in ids)
            out += absent + struct.pack(">I", nc_type) + struct.pack(count, size) + struct.pack(offset, begin)
        return out

    start = len(header([0, 0, 0]))
    begins = [start, start + width * 8, start + width * 8 + height * 8]
    data = np.arange(width, dtype=">f8").tobytes() + np.arange(height, dtype=">f8").tobytes()
    return header(begins) + data + values[::-1].astype(">f4").tobytes()  # rows south first: GDAL turns them


def _gdal_written(driver: str, values: np.ndarray, tmp_path: Path, name: str, **options) -> bytes:
    profile = dict(width=values.shape[1], height=values.shape[0], count=1, dtype=values.dtype, crs="EPSG:25832")
    with rasterio.open(
        tmp_path / "src.tif", "w", driver="GTiff", transform=from_origin(5e5, 6e6, 1, 1), **profile
    ) as ds:
        ds.write(values, 1)
    rasterio.shutil.copy(tmp_path / "src.tif", tmp_path / name, driver=driver, **options)
    return (tmp_path / name).read_bytes()


def _values(dtype: str, shape=(200, 300)) -> np.ndarray:
    return (np.arange(shape[0] * shape[1]).reshape(shape) % 977 + 100).astype(dtype)


SIZED_BY_HEADER = {  # name: how to write it (values → file bytes), the values
    "cdf1 float32.nc": lambda v, t: _gdal_written("netCDF", v, t, "w.nc"),
    "cdf1 int16.nc": lambda v, t: _gdal_written("netCDF", v, t, "w.nc"),
    "cdf2 float32.nc": lambda v, t: _gdal_written("netCDF", v, t, "w.nc", FORMAT="NC2"),
    "cdf1 record.nc": lambda v, t: _classic_netcdf(v, 1, record=True),
    "cdf2 record.nc": lambda v, t: _classic_netcdf(v, 2, record=True),
    "cdf2 fixed.nc": lambda v, t: _classic_netcdf(v, 2, record=False),
    "pcraster float32.map": lambda v, t: _gdal_written("PCRaster", v, t, "w.map"),
    "pcraster int32.map": lambda v, t: _gdal_written("PCRaster", v, t, "w.map"),
    "pcraster uint8.map": lambda v, t: _gdal_written("PCRaster", v % 2, t, "w.map"),  # a boolean map: 1-byte cells
}
CUTS = {  # where the file ends: bytes kept of its whole size
    "one byte short": lambda size, header: size - 1,
    "a third short": lambda size, header: size * 2 // 3,
    "after its first row": lambda size, header: header + 300,
    "whole": lambda size, header: size,
}


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("fmt", list(SIZED_BY_HEADER))
def test_a_raster_whose_header_tells_its_size_never_reads_as_zeros_when_cut(tmp_path, fmt, cut):
    """A classic netCDF file (CDF-1, CDF-2; fixed and record variables) or a PCRaster map that lost its
    end read as zeros, a full COG of 0 m elevations; each is compared with the size its header gives."""
    dtype = {"int16": "int16", "int32": "int32", "uint8": "uint8"}.get(fmt.split()[1].split(".")[0], "float32")
    values = _values(dtype) % (2 if dtype == "uint8" else 1000)
    data = SIZED_BY_HEADER[fmt](values, tmp_path)
    root = tmp_path / "x"
    (root / "a" / "b").mkdir(parents=True)
    member = root / "a" / "b" / ("dem" + Path(fmt).suffix)
    header = len(data) - values.size * values.dtype.itemsize
    member.write_bytes(data[: CUTS[cut](len(data), max(header, 0))])
    if cut == "whole":
        [read] = _read_as_a_chunk_does(root)
        assert np.array_equal(read, values)
        return
    with pytest.raises(UnreadableRasters, match=rf"^a/b/{member.name}: GDAL .*(cut short|cannot)"):
        _read_as_a_chunk_does(root)


@pytest.mark.parametrize("record", [True, False], ids=["record", "fixed"])
@pytest.mark.parametrize("version", [1, 2, 5])
def test_a_classic_netcdf_header_gives_the_size_of_its_file(tmp_path, version, record):
    """The size check's reading of every classic header (CDF-5 too, which this GDAL does not open)."""
    from tilewise.sources.raw_headers import classic_netcdf_bytes

    data = _classic_netcdf(_values("float32", (20, 30)), version, record)
    (tmp_path / "dem.nc").write_bytes(data)
    assert classic_netcdf_bytes(tmp_path / "dem.nc") == len(data)


def _joined(kind: str) -> bytes:
    north, south = _pack(kind, {"north.tif": b"n" * 5000}), _pack(kind, {"south.tif": b"s" * 5000})
    return north + south


@pytest.mark.parametrize(
    "name, data",
    [
        ("joined.zip", _joined("zip")),
        ("joined.7z", _joined("7z")),
        ("three.zip", _joined("zip") + _zip({"west.tif": b"w" * 5000})),
        ("tail.7z", _7z({"dem.tif": b"d" * 5000}) + b"\0" * 100),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bytes_an_archive_does_not_account_for_are_refused(tmp_path, name, data):
    """Two archives joined into one file: zipfile reads only the last, py7zr only the first (unzip
    warns and exits 1). Bytes of the file the archive's directory does not account for are refused."""
    (tmp_path / name).write_bytes(data)
    with pytest.raises(FileFailure, match="does not account for") as refused:
        unpack([tmp_path / name], tmp_path / "x", LIMITS)
    assert refused.value.step == "unpack" and str(refused.value).startswith(name)


def _comment_holding_an_end_record(members: dict[str, bytes], before: bytes = b"", after: bytes = b"") -> bytes:
    """A zip whose comment holds a bare end-of-central-directory record of no member (a note's bytes, a zip
    tool's marker): zipfile and unzip take it for the end record and read an empty archive."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
        zf.comment = before + b"PK\x05\x06" + bytes(18) + after
    return data.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _comment_holding_an_end_record({"dem.tif": b"d" * 5000}),
        _comment_holding_an_end_record({"dem.tif": b"d" * 5000}, before=b"made by tool 1.0 "),
        _comment_holding_an_end_record({"n.tif": b"n" * 300, "s.tif": b"s" * 300}, after=b"\0\0"),
    ],
)
def test_a_zip_whose_comment_hides_its_members_is_refused(tmp_path, data):
    # zipfile read no member and unpacked nothing, exit 0: "no raster in it" named no cause
    (tmp_path / "dem.zip").write_bytes(data)
    with pytest.raises(FileFailure, match=r"^dem.zip: [\d,]+ bytes before its first member .*does not account for"):
        unpack([tmp_path / "dem.zip"], tmp_path / "x", LIMITS)


def test_an_empty_zip_with_or_without_a_comment_is_unpacked_empty(tmp_path):
    for i, comment in enumerate([b"", b"no files here"]):
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as zf:
            zf.comment = comment
        (tmp_path / f"e{i}.zip").write_bytes(data.getvalue())
        assert unpack([tmp_path / f"e{i}.zip"], tmp_path / f"x{i}", LIMITS) == {}


def test_joined_volumes_with_bytes_after_the_archive_are_refused(tmp_path):
    data = _7z({"dem.tif": os.urandom(9000)}) + _7z({"other.tif": os.urandom(3000)})
    with pytest.raises(FileFailure, match="bytes after its end"):
        unpack(_volumes(data, tmp_path), tmp_path / "x", LIMITS)


@pytest.mark.parametrize("outer", ["zip", "7z"])
def test_an_archive_inside_beside_volumes_of_its_name_is_refused(tmp_path, outer):
    whole = _7z({"north.tif": b"n" * 3000})
    split = _7z({"south.tif": os.urandom(9000)})
    cut = len(split) // 2 + 1
    members = {"d/a.7z": whole, "d/a.7z.001": split[:cut], "d/a.7z.002": split[cut:]}
    (tmp_path / f"set.{outer}").write_bytes(_pack(outer, members))
    with pytest.raises(FileFailure, match="one archive and the split of another"):
        unpack([tmp_path / f"set.{outer}"], tmp_path / "x", LIMITS)


@pytest.mark.parametrize("clash", ["a.zip-x/dem.tif", "a.zip-x"])
def test_a_member_where_a_nested_archive_would_be_unpacked_is_refused(tmp_path, clash):
    """a.zip unpacks into a.zip-x/: a member of the outer archive there would be overwritten or mixed in."""
    members = {"a.zip": _zip({"dem.tif": b"inner" * 1000}), clash: b"outer" * 1000}
    (tmp_path / "set.zip").write_bytes(_zip(members))
    with pytest.raises(FileFailure, match="where that archive would be unpacked"):
        unpack([tmp_path / "set.zip"], tmp_path / "x", LIMITS)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


NORTH, SOUTH = {"north.tif": b"n" * 5000}, {"south.tif": b"s" * 5000}


@pytest.mark.parametrize(
    "name, data",
    [
        ("joined.tar", _tar(NORTH) + _tar(SOUTH)),
        ("joined.tar.gz", gzip.compress(_tar(NORTH) + _tar(SOUTH), mtime=0)),
        ("members.tar.gz", gzip.compress(_tar(NORTH), mtime=0) + gzip.compress(_tar(SOUTH), mtime=0)),
        ("members.tif.gz", gzip.compress(b"n" * 5000, mtime=0) + gzip.compress(b"s" * 5000, mtime=0)),
        ("tar_after.zip", _zip(NORTH) + _tar(SOUTH)),
        ("zip_after.zip", _zip(NORTH) + _zip(SOUTH)[:-22] + b"PK"),  # a cut zip after the end record
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_archives_and_streams_joined_after_their_end_are_refused(tmp_path, name, data):
    """tar stops at its first end blocks, zipfile at the end record it finds in the last 64 KiB,
    Python's gzip reads every member as one stream: what follows would be dropped, or glued on."""
    (tmp_path / name).write_bytes(data)
    with pytest.raises(FileFailure, match="does not account for"):
        unpack([tmp_path / name], tmp_path / "x", LIMITS)


@pytest.mark.parametrize(
    "name, data",
    [
        ("padded.tar", _tar(NORTH) + bytes(20480)),  # tar pads to its record size with zeros
        ("padded.tif.gz", gzip.compress(b"n" * 5000, mtime=0) + bytes(512)),  # some writers pad with zeros
        ("commented.zip", _zip(NORTH)[:-2] + (7).to_bytes(2, "little") + b"comment"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_archives_with_padding_or_a_comment_after_their_end_are_unpacked(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    unpack([tmp_path / name], tmp_path / "x", LIMITS)
    assert [p.name for p in (tmp_path / "x").rglob("*") if p.is_file()] in (["north.tif"], ["padded.tif"])


COMPRESS = {"gz": lambda data: gzip.compress(data, mtime=0), "bz2": bz2.compress, "xz": lzma.compress}


def _two_streams(suffix: str, first: bytes, second: bytes) -> bytes:
    """`cat a.{suffix} b.{suffix}`: two whole streams in one file."""
    return COMPRESS[suffix](first) + COMPRESS[suffix](second)


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize(
    "name, first, second",
    [
        ("dem.tif", b"n" * 5000, b"s" * 5000),
        ("dem.asc", _ASC.encode(), _ASC.encode()),  # the same grid twice: still two files
        ("tiles.tar", _tar(NORTH), _tar(SOUTH)),  # a .tar.bz2 of two tars: the second is not a padding
        ("big.tif", os.urandom(3 << 20), b"s" * 100),  # the first stream spans several reads
        ("tiny.tif", b"n", b"s"),
    ],
    ids=["tif", "asc", "tar", "big-first", "tiny"],
)
def test_every_compressed_stream_joined_to_another_is_refused(tmp_path, suffix, name, first, second):
    """gzip, bzip2 and xz alike: one stream is one file; a second one after it (Python's bz2 and lzma
    read it as more bytes of the first file, GDAL ignores them) fails the download, naming it."""
    download = tmp_path / f"{name}.{suffix}"
    download.write_bytes(_two_streams(suffix, first, second))
    with pytest.raises(FileFailure, match=r"does not account for") as refused:
        unpack([download], tmp_path / "x", LIMITS)
    assert refused.value.step == "unpack" and str(refused.value).startswith(download.name)


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("outer", ["zip", "7z", "tar"])
def test_joined_streams_inside_an_archive_are_refused(tmp_path, suffix, outer):
    """The same one level down (a producer's zip of `dem.tif.bz2` files), and two levels down."""
    joined = _two_streams(suffix, b"n" * 5000, b"s" * 5000)
    inner = {"zip": _zip, "7z": _7z, "tar": _tar}[outer]({f"tiles/dem.tif.{suffix}": joined})
    for depth, data in enumerate([inner, _zip({"deeper/set." + outer: inner})]):
        (tmp_path / f"set{depth}.{outer}").write_bytes(data)
        with pytest.raises(FileFailure, match=rf"dem.tif.{suffix}: .*does not account for"):
            unpack([tmp_path / f"set{depth}.{outer}"], tmp_path / f"x{depth}", LIMITS)


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("size", [1, 5000, 3 << 20], ids=["one byte", "small", "several reads"])
def test_one_stream_is_unpacked_whole_also_with_zero_padding(tmp_path, suffix, size):
    data = os.urandom(size)
    for padding in (b"", bytes(512)):
        (tmp_path / f"dem.tif.{suffix}").write_bytes(COMPRESS[suffix](data) + padding)
        unpack([tmp_path / f"dem.tif.{suffix}"], tmp_path / "x", LIMITS)
        assert (tmp_path / "x" / "dem.tif").read_bytes() == data
        (tmp_path / "x" / "dem.tif").unlink()


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_compressed_stream_cut_short_is_damaged(tmp_path, suffix):
    stream = COMPRESS[suffix](os.urandom(50_000))
    (tmp_path / f"dem.tif.{suffix}").write_bytes(stream[: len(stream) * 2 // 3])
    with pytest.raises(FileFailure, match=rf"dem.tif.{suffix}: damaged"):
        unpack([tmp_path / f"dem.tif.{suffix}"], tmp_path / "x", LIMITS)


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_compressed_bomb_stops_at_the_cap(tmp_path, suffix):
    (tmp_path / f"zeros.xyz.{suffix}").write_bytes(COMPRESS[suffix](bytes(20_000_000)))
    with pytest.raises(FileFailure, match="decompression bomb"):
        unpack([tmp_path / f"zeros.xyz.{suffix}"], tmp_path / "x", unpack_limits(max_ratio=100.0))
    assert _written_bytes(tmp_path / "x") <= 100 * (tmp_path / f"zeros.xyz.{suffix}").stat().st_size + MEMBER_BYTES


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek back in: it then writes data descriptors after each member."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, data):
        self.buf += data
        return len(data)


def _streamed_zip(members: dict[str, bytes], zip64: bool) -> bytes:
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=zip64) as member:
                member.write(data)
    return bytes(out.buf)


@pytest.mark.parametrize("zip64", [False, True])
def test_zips_with_data_descriptors_are_unpacked(tmp_path, zip64):
    """A zip written as a stream (data descriptors after each member, in zip64 with 8-byte sizes)
    leaves no bytes its directory does not list."""
    members = {"a/north.tif": os.urandom(5000), "b/south.tif": os.urandom(7000), "c/empty.txt": b""}
    (tmp_path / "streamed.zip").write_bytes(_streamed_zip(members, zip64))
    unpack([tmp_path / "streamed.zip"], tmp_path / "x", LIMITS)
    out = tmp_path / "x"
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == members


def test_a_member_left_out_of_a_zips_directory_is_refused(tmp_path):
    """unzip and zipfile read only what the central directory lists: a member whose local header and
    data are in the file but not in the directory would be dropped without a word."""
    data = _zip({"north.tif": b"n" * 5000, "south.tif": b"s" * 5000})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        south = zf.getinfo("south.tif")
        directory = zf.start_dir
    entries = data[directory:]
    first_entry = entries.index(b"PK\x01\x02", 4)  # the directory's second entry is south.tif
    cut = entries[:first_entry]
    end = bytearray(entries[entries.index(b"PK\x05\x06") :])
    end[8:10] = end[10:12] = (1).to_bytes(2, "little")  # one entry
    end[12:16] = len(cut).to_bytes(4, "little")
    assert south.header_offset > 0
    (tmp_path / "left_out.zip").write_bytes(data[:directory] + cut + bytes(end))
    with pytest.raises(FileFailure, match="that its directory does not list"):
        unpack([tmp_path / "left_out.zip"], tmp_path / "x", LIMITS)


def _replace_origin(header: list[str], keys: dict[str, str | None]) -> list[str]:
    """The header with its xll/yll lines renamed (`None`: dropped)."""
    out = []
    for line in header:
        key, *rest = line.split()
        if key.lower() in keys:
            if keys[key.lower()] is not None:
                out.append(" ".join([keys[key.lower()], *rest]))
        else:
            out.append(line)
    return out


@pytest.mark.parametrize("key", list(ASC_SHARED))
@pytest.mark.parametrize(
    "origin, placed",
    [
        ({"xllcorner": "xllcorner", "yllcorner": "yllcenter"}, False),
        ({"xllcorner": "XLLCENTER", "yllcorner": "yllcorner"}, False),
        ({"xllcorner": None}, False),
        ({"xllcorner": None, "yllcorner": None}, False),
        ({"xllcorner": "xllcorner", "yllcorner": "yll_corner"}, False),
        ({"xllcorner": "XLLCORNER", "yllcorner": "YLLCORNER"}, True),
        ({"xllcorner": "xllcenter", "yllcorner": "yllcenter"}, True),
    ],
)
def test_an_ascii_grid_whose_header_places_it_by_no_pair_fails(tmp_path, key, origin, placed):
    """GDAL places an ESRI ASCII grid by xllcorner and yllcorner, or xllcenter and yllcenter; with a mix of
    the two, or one missing, it read the grid at 0, 0 without an error, and a recipe's `crs: EPSG:4326`
    shipped it in the Gulf of Guinea."""
    header, values = _asc_parts(key)
    root = tmp_path / "x"
    root.mkdir()
    (root / "dem.asc").write_bytes(_asc(_replace_origin(header, origin), values))
    if placed:
        [read] = _read_as_a_chunk_does(root)
        assert np.array_equal(read, values.astype(float).astype(read.dtype))
        return
    with pytest.raises(UnreadableRasters, match=r"^dem.asc: its header places the grid by .*exclude: \['dem.asc'\]"):
        _read_as_a_chunk_does(root)


def _pages(path, pages):
    """A GeoTIFF of several full images (pages), each (width, dtype, value); not overviews."""
    for width, dtype, value in pages:
        extra = {"APPEND_SUBDATASET": "YES"} if path.exists() else {}
        profile = dict(driver="GTiff", width=width, height=width, count=1, dtype=dtype, crs="EPSG:25832")
        with rasterio.open(path, "w", transform=from_origin(5e5, 5.6e6, 1, 1), **profile, **extra) as ds:
            ds.write(np.full((1, width, width), value, dtype))
    return path


@pytest.mark.parametrize(
    "pages",
    [
        [(16, "float32", 100), (16, "float32", 130)],  # a DTM and a DSM on one grid
        [(16, "int16", 100), (16, "int16", 101), (16, "int16", 102)],  # three epochs
        [(16, "float32", 100), (8, "float32", 3)],  # a second, smaller image (no overview: no reduced-image flag)
        [(16, "float32", 100), (16, "uint8", 1)],  # a quality layer
    ],
)
def test_a_geotiff_of_several_images_fails_its_download_naming_them(tmp_path, pages):
    """GDAL opens a GeoTIFF's first image and lists every image as a subdataset (GTIFF_DIR:n): which of them
    is the elevation is the user's choice, as for any container, and the others were dropped without a word
    (Mapterhorn's gdal_translate converts the first too)."""
    _pages(tmp_path / "dem.tif", pages)
    with pytest.raises(UnreadableRasters) as failure:
        list(open_rasters(tmp_path))
    message = str(failure.value)
    assert f"dem.tif holds {len(pages)} rasters (subdatasets GTIFF_DIR:1:dem.tif, GTIFF_DIR:2:dem.tif" in message
    assert "gdal_translate GTIFF_DIR:1:dem.tif dem_elevation.tif" in message and "exclude: ['dem.tif']" in message


def test_a_geotiff_with_overviews_and_a_mask_is_one_raster(tmp_path):
    path = tmp_path / "dem.tif"
    profile = dict(driver="GTiff", width=64, height=64, count=1, dtype="float32", crs="EPSG:25832", tiled=True)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", transform=from_origin(5e5, 5.6e6, 1, 1), **profile) as ds:
            ds.write(np.full((1, 64, 64), 100, "float32"))
            ds.write_mask(np.full((64, 64), 255, "uint8"))
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews([2, 4])
    assert [p.name for p, _ in open_rasters(tmp_path)] == ["dem.tif"]


def _bare_tif() -> bytes:
    """A GeoTIFF without geotags: its grid, CRS and nodata are its sidecars'."""
    with rasterio.io.MemoryFile() as mem:
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            mem.open(driver="GTiff", width=8, height=8, count=1, dtype="float32") as ds,
        ):
            ds.write(np.full((1, 8, 8), 250.0, "float32"))
        return mem.read()


_SIDECARS = {
    "world file": ("dem.tfw", "2\n0\n0\n-2\n600001\n5700001\n", (2, 0, 600000, 0, -2, 5700002), None),
    "aux.xml": (
        "dem.tif.aux.xml",
        "<PAMDataset><SRS>EPSG:25832</SRS><GeoTransform>600000, 2, 0, 5700000, 0, -2</GeoTransform>"
        '<PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand></PAMDataset>',
        (2, 0, 600000, 0, -2, 5700000),
        0.0,
    ),
}


@pytest.mark.parametrize("sidecar", list(_SIDECARS))
@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("outer", ["zip", "7z", "tar"])
def test_a_compressed_raster_inside_an_archive_lies_beside_its_sidecars(tmp_path, outer, suffix, sidecar):
    """A producer's archive of `dem.tif.gz` (or .bz2, .xz) beside `dem.tfw` or `dem.tif.aux.xml`: gunzip leaves
    dem.tif beside them. Unpacked into a folder of its own, GDAL read it without them: not georeferenced
    (skipped beside other rasters, the download failing alone), or georeferenced without the sidecar's nodata."""
    name, text, grid, nodata = _SIDECARS[sidecar]
    members = {f"tiles/dem.tif.{suffix}": COMPRESS[suffix](_bare_tif()), f"tiles/{name}": text.encode()}
    (tmp_path / f"set.{outer}").write_bytes({"zip": _zip, "7z": _7z, "tar": _tar}[outer](members))
    unpack([tmp_path / f"set.{outer}"], tmp_path / "x", LIMITS)
    assert sorted(str(p.relative_to(tmp_path / "x")) for p in (tmp_path / "x").rglob("*")) == sorted(
        ["tiles", "tiles/dem.tif", f"tiles/{name}"]
    )
    with gdal_env():
        ((path, ds),) = list(open_rasters(tmp_path / "x"))
        assert (path.name, tuple(ds.transform)[:6], ds.nodata) == ("dem.tif", grid, nodata)


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_compressed_file_that_decompresses_onto_a_member_is_refused(tmp_path, suffix):
    """`dem.tif` beside `dem.tif.gz` in one archive: decompressed beside it, one would replace the other."""
    members = {"dem.tif": _bare_tif(), f"dem.tif.{suffix}": COMPRESS[suffix](b"other bytes")}
    (tmp_path / "set.zip").write_bytes(_zip(members))
    with pytest.raises(FileFailure, match=r"set.zip: holds dem.tif and a compressed file that decompresses to it"):
        unpack([tmp_path / "set.zip"], tmp_path / "x", LIMITS)


def test_a_compressed_tar_inside_an_archive_keeps_its_folder(tmp_path):
    """A `.tar.gz` inside a zip is an archive, not a raster: its members stay in its own folder."""
    (tmp_path / "set.zip").write_bytes(_zip({"inner.tar.gz": gzip.compress(_tar(NORTH), mtime=0)}))
    nested = unpack([tmp_path / "set.zip"], tmp_path / "x", LIMITS)
    files = [str(p.relative_to(tmp_path / "x")) for p in (tmp_path / "x").rglob("*") if p.is_file()]
    assert files == ["inner.tar.gz-x/inner.tar-x/north.tif"]
    assert nested == {Path("inner.tar.gz-x"): "inner.tar.gz", Path("inner.tar.gz-x/inner.tar-x"): "inner.tar"}
