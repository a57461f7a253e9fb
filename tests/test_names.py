"""Names: wget's name for a URL (Mapterhorn parity) and the one rule that makes an output name safe."""

import csv
import io
import os
import tarfile

import pytest

from tilewise.sources import bounds_csv
from tilewise.sources.names import MAX_NAME_BYTES, collision_key, is_safe, safe_name, wget_name

# What GNU Wget 1.21.3 saved each URL path as, with `wget --no-verbose --continue` under C.UTF-8
# (observed with the real binary against a loopback server: /work/proto/parity/wget_names*.out)
WGET_OBSERVED = {
    "/path/file.tif?x=1&y=2": "file.tif?x=1&y=2",
    "/download?id=5": "download?id=5",
    "/cloud/index.php/s/abc/download?path=%2FOD_DGM1_tiff_LK&files=DGM1_tif_MZG_25832.zip": (
        "download?path=%2FOD_DGM1_tiff_LK&files=DGM1_tif_MZG_25832.zip"
    ),
    "/dir/Glash%C3%BCtten%20-%20DGM1.zip": "Glashütten - DGM1.zip",
    "/dir/Gro%C3%9Fe.zip": "Große.zip",
    "/dir/%C3%84rger.zip": "Ärger.zip",
    "/dir/a%2Fb.tif": "a%2Fb.tif",
    "/dir/a%2fb.tif": "a%2Fb.tif",
    "/dir/a%0Ab.tif": "a%0Ab.tif",
    "/dir/a%7Fb.tif": "a%7Fb.tif",
    "/dir/a%25b.tif": "a%b.tif",
    "/dir/a%3Fb.tif": "a?b.tif",
    "/dir/a+b;c.tif": "a+b;c.tif",
    "/dir/file.tif#frag": "file.tif",
    "/dir/": "index.html",
    "/": "index.html",
    "/dir/..": "index.html",
    "/dir/%2E%2E": "%2E%2E",
    "/q?a=%20b&c=%2F&d=%C3%9F": "q?a= b&c=%2F&d=ß",
    "/q?x=%0A": "q?x=%0A",
    "/dir/x.tif?": "x.tif?",
    "/dir/a%zzb.tif": "a%zzb.tif",
    "/dir/a b.tif": "a b.tif",
}


@pytest.mark.parametrize("path, name", WGET_OBSERVED.items())
def test_wget_names_as_observed(path, name):
    assert wget_name("https://host.example" + path) == name


def test_wget_keeps_bytes_that_are_not_utf8_and_cuts_at_236_bytes():
    # observed: a%9Fb.tif → the 7 bytes a \x9f b . t i f; 0xE9 alone; U+0080 as its two bytes
    assert os.fsencode(wget_name("http://h/dir/a%9Fb.tif")) == b"a\x9fb.tif"
    assert os.fsencode(wget_name("http://h/dir/a%E9b.tif")) == b"a\xe9b.tif"
    assert os.fsencode(wget_name("http://h/dir/a%C2%80b.tif")) == b"a\xc2\x80b.tif"
    assert wget_name("http://h/dir/" + "a" * 300 + ".tif") == "a" * 236  # the suffix is lost, as in wget
    assert wget_name("http://h/q?" + "a" * 300) == "q?" + "a" * 234
    assert wget_name("http://h/" + "%0A" * 100) == "%0A" * 78  # an escape is never split
    assert wget_name("http://h") == "index.html" and wget_name("http://h/d/?x=1") == "index.html?x=1"


def test_query_strings_make_different_names():
    urls = [f"https://h/cloud/download?path=%2FOD&files=DGM1_{k}.zip" for k in ("MZG", "NK", "SB")]
    assert len({wget_name(u) for u in urls}) == 3


BREAKING = [
    "left,right.tif",
    "a\nb.tif",
    "a\r\nb.tif",
    "a\\b.tif",
    'a"b.tif',
    '"quoted".tif',
    "tab\there.tif",
    "-rf.tif",
    "--help.tif",
    ".hidden.tif",
    " leading.tif",
    "\u00a0nbsp.tif",
    "a\x00b.tif",
    "bell\x07.tif",
    "del\x7f.tif",
    "c1\x85.tif",
    "line\u2028sep.tif",
    "para\u2029sep.tif",
    "dir/name.tif",
    "..",
    ".",
    os.fsdecode(b"latin1-\xe9t\xe9.tif"),
    "\ud800lone.tif",
    "x" * 300 + ".tif",
    "é" * 200 + ".tif",
    "%0A" * 100 + ".tif",
]


@pytest.mark.parametrize("name", BREAKING)
def test_safe_names_survive_bounds_csv_a_tar_and_the_file_system(tmp_path, name):
    safe = safe_name(name)
    assert is_safe(safe) and safe_name(safe) == safe  # one rule, stable when applied again
    assert len(safe.encode()) <= MAX_NAME_BYTES and safe.isprintable() and safe not in (".", "..")
    assert not safe.startswith(("-", ".", " ")) and not any(c in safe for c in ',"\\/')
    # a file system takes it (with room for the .tmp and .part names beside it)
    (tmp_path / (safe + ".part")).write_bytes(b"x")
    # bounds.csv: Mapterhorn's reader (strip, split on commas) and the csv module read the name back
    rows = [{"filename": safe, "left": 1.5, "bottom": 2.0, "right": 3.0, "top": 4.0, "width": 5, "height": 6}]
    bounds_csv.write(rows, tmp_path / "bounds.csv")
    lines = (tmp_path / "bounds.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].strip().split(",")[0] == safe
    assert list(csv.DictReader(io.StringIO((tmp_path / "bounds.csv").read_text())))[0]["filename"] == safe
    # a tar member of that name is extracted under the same name
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"files/{safe}")
        tar.addfile(info, io.BytesIO(b""))
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        assert tar.getnames() == [f"files/{safe}"]


def test_safe_names_keep_ordinary_and_mapterhorn_names():
    for name in (
        "dgm1_32_374_5950_1_nw_2022.tif",
        "Glashütten - DGM1.tif",
        "download?path=%2FOD_DGM1_tiff_LK&files=DGM1_tif_MZG_25832.tif",
        "massen.php?id=2&live=2022&km=32570_5950&file=dgm1_32_578_5958_1_sh_2022.tif",
        "SRTMGL3_40.09_-105.56_40.209999999999994_-105.44.tif",
        "a-b.tif",
        "x.tif.tif",
    ):
        assert safe_name(name) == name


def test_long_names_keep_their_suffix_and_stay_distinct():
    a, b = safe_name("x" * 300 + "a.tif"), safe_name("x" * 300 + "b.tif")
    assert a != b and a.endswith(".tif") and b.endswith(".tif")


def test_bounds_csv_refuses_a_name_that_would_break_it(tmp_path):
    row = {"filename": "left,right.tif", "left": 0, "bottom": 0, "right": 1, "top": 1, "width": 1, "height": 1}
    with pytest.raises(ValueError, match="would break the CSV"):
        bounds_csv.write([row], tmp_path / "bounds.csv")
    assert not (tmp_path / "bounds.csv").exists()


def test_collision_keys_ignore_case_and_unicode_normalisation():
    assert collision_key("DEM.tif") == collision_key("dem.TIF")
    assert collision_key("Gr\u00fcn.tif") == collision_key("Gru\u0308n.tif")  # NFC vs NFD
    assert collision_key("a.tif") != collision_key("b.tif")
