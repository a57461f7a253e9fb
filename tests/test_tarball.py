"""The source tarball without Snakemake: md5 beside the copy, reproducible, nothing partial left."""

import hashlib
import tarfile

import numpy as np
import pytest

from tilewise.shared.errors import TilewiseError
from tilewise.sources.failures_csv import FIELDS as FAILURE_FIELDS
from tilewise.sources.tarball import COPY_BUFFER, build_tarball


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(7)
    store = tmp_path / "store"
    store.mkdir()
    sizes = {"a.tif": 10, "b.tif": COPY_BUFFER + 12_345, "c.tif": 0, "d.tif": 3 * COPY_BUFFER - 1, "e.tif": 512}
    for name, size in sizes.items():
        (store / name).write_bytes(rng.bytes(size))
    (tmp_path / "LICENSE.pdf").write_bytes(b"%PDF-1.4 licence")
    (tmp_path / "metadata.json").write_text('{"name": "s"}')
    (tmp_path / "bounds.csv").write_text(
        "filename,left,bottom,right,top,width,height\n" + "".join(f"{n},0,0,1,1,1,1\n" for n in sizes)
    )
    (tmp_path / "coverage.gpkg").write_bytes(b"gpkg")
    (tmp_path / "failures.csv").write_text(",".join(FAILURE_FIELDS) + "\n")
    return tmp_path, sizes


def build(root, tar_name="s.tar", allow_incomplete=False):
    return build_tarball(
        "s",
        root / "LICENSE.pdf",
        root / "metadata.json",
        root / "bounds.csv",
        root / "coverage.gpkg",
        root / "failures.csv",
        root / "store",
        root / "out" / tar_name,
        root / "out" / f"{tar_name}.md5",
        allow_incomplete,
    )


def test_md5_is_the_tars_and_the_tar_is_reproducible(source):
    root, sizes = source
    digest = build(root)
    tar = root / "out" / "s.tar"
    assert digest == hashlib.md5(tar.read_bytes()).hexdigest()
    assert (root / "out" / "s.tar.md5").read_text() == f"{digest} s.tar\n"
    with tarfile.open(tar) as t:
        assert t.getnames() == ["LICENSE.pdf", "metadata.json", "bounds.csv", "coverage.gpkg"] + [
            f"files/{n}" for n in sorted(sizes)
        ]
        assert t.extractfile("files/d.tif").read() == (root / "store" / "d.tif").read_bytes()
    assert build(root, "again.tar") == digest


def test_a_failing_member_leaves_no_partial_tarball(source):
    root, _ = source
    (root / "store" / "d.tif").unlink()
    with pytest.raises(FileNotFoundError):
        build(root)
    assert not list((root / "out").iterdir())


def test_an_incomplete_source_is_refused_unless_allowed(source):
    root, _ = source
    with open(root / "failures.csv", "a") as f:
        f.write("s,x.zip,http://h/x.zip,3,download,HTTP 404,chunks/0001.json\n")
    with pytest.raises(TilewiseError, match="1 file\\(s\\) failed"):
        build(root)
    assert build(root, allow_incomplete=True)
