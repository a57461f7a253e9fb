"""The source tarball without Snakemake: md5 beside the copy, reproducible, nothing partial left."""

import hashlib
import os
import tarfile

import numpy as np
import pytest

from tilewise.shared.errors import TilewiseError
from tilewise.sources import changes_csv, ledger, store_index
from tilewise.sources.failures_csv import FIELDS as FAILURE_FIELDS
from tilewise.sources.tarball import COPY_BUFFER, build_tarball, damage, restore


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
    for chunk, names in (("0000", ["a.tif", "b.tif", "c.tif"]), ("0001", ["d.tif", "e.tif"])):
        outputs = [
            {"filename": n, "bytes": sizes[n], "md5": hashlib.md5((store / n).read_bytes()).hexdigest()}
            | {"staged": f"00000-{n}", "raster": n, "crs": "EPSG:3857", "coverage_wkb": ""}
            | {"left": 0, "bottom": 0, "right": 1, "top": 1, "width": 1, "height": 1}
            for n in names
        ]
        files = [
            {"url": f"http://h/{o['filename']}", "file": o["filename"], "status": "ok", "outputs": [o]} for o in outputs
        ]
        ledger.write(tmp_path / "chunks" / f"{chunk}.json", ledger.Ledger("s", chunk, {}, files))
    chunks = {
        c.stem: {"ledger": c, "files": [store / o["filename"] for f in ledger.read(c).files for o in f["outputs"]]}
        for c in sorted((tmp_path / "chunks").glob("*.json"))
    }
    store_index.write(tmp_path / "store-index.json", chunks, tmp_path / "coverage.gpkg", tmp_path / "bounds.csv")
    return tmp_path, sizes


def build(root, tar_name="s.tar", allow_incomplete=False):
    return build_tarball(
        "s",
        root / "LICENSE.pdf",
        root / "metadata.json",
        root / "bounds.csv",
        root / "coverage.gpkg",
        root / "store-index.json",
        root / "failures.csv",
        root / "store",
        sorted((root / "chunks").glob("*.json")),
        root / "out" / tar_name,
        root / "out" / f"{tar_name}.md5",
        root / "out" / f"{tar_name}.changes.csv",
        root / f"{tar_name}.published.json",
        allow_incomplete,
        root / f"{tar_name}.record.json",
        root / f"{tar_name}.kept",
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


def test_a_missing_or_resized_cog_fails_before_anything_is_written(source):
    root, _ = source
    build(root)
    old = (root / "out" / "s.tar").read_bytes()
    (root / "store" / "d.tif").unlink()
    with (root / "store" / "a.tif").open("ab") as f:
        f.write(b"x")
    with pytest.raises(TilewiseError, match=r"(?s)store/a.tif: 11 bytes, its ledger says 10.*store/d.tif: missing"):
        build(root)
    # the old tarball stays as it was, no partial one; both chunks' ledgers are gone, so a rerun redoes them
    assert sorted(p.name for p in (root / "out").iterdir()) == ["s.tar", "s.tar.changes.csv", "s.tar.md5"]
    assert (root / "out" / "s.tar").read_bytes() == old
    assert not list((root / "chunks").glob("*.json"))


@pytest.mark.parametrize("member", ["a.tif", "d.tif", "e.tif"])  # small, three copy buffers, the last one
def test_a_cog_changed_in_place_fails_while_it_is_copied(source, member):
    root, sizes = source
    path = root / "store" / member
    stat = path.stat()
    with path.open("r+b") as f:  # same size, same modification time: only its bytes differ
        f.seek(sizes[member] // 2)
        f.write(bytes([f.read(1)[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(TilewiseError, match=rf"store/{member}: md5 [0-9a-f]{{32}}, its ledger says"):
        build(root)
    assert not list((root / "out").iterdir())
    chunk = "0000.json" if member == "a.tif" else "0001.json"
    assert not (root / "chunks" / chunk).exists() and len(list((root / "chunks").iterdir())) == 1


def test_bounds_and_ledgers_must_name_the_same_cogs(source):
    root, _ = source
    with open(root / "bounds.csv", "a") as f:
        f.write("stray.tif,0,0,1,1,1,1\n")
    (root / "store" / "stray.tif").write_bytes(b"x")
    with pytest.raises(TilewiseError, match="(?s)differ.*stray.tif,0,0,1,1,1,1.*merge the source again"):
        build(root)
    assert not (root / "bounds.csv").exists()


def test_a_bounds_row_changed_after_the_merge_is_refused(source):
    root, _ = source
    bounds = root / "bounds.csv"
    bounds.write_text(bounds.read_text().replace("d.tif,0,", "d.tif,5,"))
    with pytest.raises(TilewiseError, match="(?s)differ.*d.tif,5,0,1,1,1,1.*merge the source again"):
        build(root)
    assert not bounds.exists() and not (root / "out").exists()


def test_an_incomplete_source_is_refused_unless_allowed(source):
    """Whatever failures.csv says (a report, which may be edited): the ledgers' failures decide."""
    root, _ = source
    path = root / "chunks" / "0001.json"
    led = ledger.read(path)
    failed = {"url": "http://h/x.zip", "file": "x.zip", "status": "failed", "step": "download", "error": "HTTP 404"}
    ledger.write(path, ledger.Ledger(led.source, led.chunk, led.recipe, [*led.files, failed]))
    with pytest.raises(TilewiseError, match="1 file\\(s\\) failed.*\n  x.zip \\(download\\): HTTP 404"):
        build(root)
    assert build(root, allow_incomplete=True)


def test_a_coverage_edited_after_the_merge_never_reaches_the_tarball(source):
    root, _ = source
    (root / "coverage.gpkg").write_bytes(b"gpkg, edited by hand")
    with pytest.raises(TilewiseError, match=r"coverage.gpkg is not the coverage the merge wrote.*run the same command"):
        build(root)
    assert not (root / "coverage.gpkg").exists() and not list((root / "out").glob("*.tar*"))  # merged again next run


def _change(root, name="a.tif", seed=1):
    """New bytes of the same size for `name`, and its ledger record says so (as a chunk run again)."""
    path = root / "store" / name
    path.write_bytes(np.random.default_rng(seed).bytes(path.stat().st_size))
    for chunk in sorted((root / "chunks").glob("*.json")):
        led = ledger.read(chunk)
        for f in led.files:
            for out in f["outputs"]:
                if out["filename"] == name:
                    out["md5"] = hashlib.md5(path.read_bytes()).hexdigest()
        ledger.write(chunk, led)


def _changes(root):
    return {r["filename"]: r["change"] for r in changes_csv.read(root / "out" / "s.tar.changes.csv")}


def _outputs(root):
    return [root / "out" / n for n in ("s.tar", "s.tar.md5", "s.tar.changes.csv")]


@pytest.mark.parametrize("gone", ["s.tar", "s.tar.md5", "s.tar.changes.csv", "all", "none"])
def test_the_same_tarball_built_again_gets_the_changes_file_its_first_build_wrote(source, gone):
    """A rebuild of the published tarball (its tar moved away to upload, its md5 or changes file
    deleted, --forcerun: Snakemake deletes every output first) writes the changes file the build that
    published it wrote, not one comparing the tarball with itself; a new tarball is compared with it."""
    root, _ = source
    first = build(root)
    _change(root)
    second = build(root)
    written = (root / "out" / "s.tar.changes.csv").read_bytes()
    assert second != first and _changes(root)["a.tif"] == "changed"
    for path in _outputs(root):  # Snakemake removes a job's outputs before it runs
        if gone in (path.name, "all"):
            path.unlink()
    assert build(root) == second
    assert (root / "out" / "s.tar.changes.csv").read_bytes() == written
    _change(root, "e.tif")  # a genuinely new tarball: compared with the published one, not the first
    build(root)
    assert _changes(root) == {"a.tif": "unchanged", "b.tif": "unchanged", "c.tif": "unchanged"} | {
        "d.tif": "unchanged",
        "e.tif": "changed",
    }


@pytest.mark.parametrize("killed", ["before the state", "after the state"])
def test_a_build_killed_before_snakemake_recorded_it_still_compares_with_the_tarball_before(
    source, monkeypatch, killed
):
    """A kill at any moment after the new tarball is in place: the rerun (same inputs) says the COG
    changed since the first tarball, whether the published state had moved on or not."""
    root, _ = source
    build(root)
    first_md5 = {r["filename"]: r["md5_after"] for r in changes_csv.read(root / "out" / "s.tar.changes.csv")}
    _change(root)
    save = changes_csv.save_state

    def killed_here(*args):
        if killed == "after the state":
            save(*args)
        raise KeyboardInterrupt  # SIGKILL: nothing after this point runs

    monkeypatch.setattr(changes_csv, "save_state", killed_here)
    with pytest.raises(KeyboardInterrupt):
        build(root)
    monkeypatch.setattr(changes_csv, "save_state", save)
    build(root)
    rows = {r["filename"]: r for r in changes_csv.read(root / "out" / "s.tar.changes.csv")}
    assert rows["a.tif"]["change"] == "changed" and rows["a.tif"]["md5_before"] == first_md5["a.tif"]
    assert all(r["change"] == "unchanged" for n, r in rows.items() if n != "a.tif")


def test_a_work_folder_of_an_earlier_version_keeps_its_changes_file(source):
    """Before the published state, only a copy of the changes file was kept: the tarball record's md5
    says which tarball it describes."""
    root, _ = source
    build(root)
    _change(root)
    build(root)
    written = (root / "out" / "s.tar.changes.csv").read_bytes()
    legacy = root / "published.changes.csv"
    legacy.write_bytes(written)
    (root / "s.tar.published.json").unlink()
    for path in _outputs(root):
        path.unlink()
    build_tarball(
        "s",
        *(root / n for n in ("LICENSE.pdf", "metadata.json", "bounds.csv", "coverage.gpkg", "store-index.json")),
        root / "failures.csv",
        root / "store",
        sorted((root / "chunks").glob("*.json")),
        *_outputs(root),
        root / "s.tar.published.json",
        False,
        root / "s.tar.record.json",
        root / "s.tar.kept",
        legacy,
    )
    assert (root / "out" / "s.tar.changes.csv").read_bytes() == written and not legacy.exists()
    assert changes_csv.load_state(root / "s.tar.published.json")[1] == written.decode()


def test_after_a_failed_build_the_previous_tarball_comes_back_and_is_built_again(source):
    """Snakemake removes a failed job's outputs: the tarball kept as a hard link is linked back with
    its md5 and changes file, and marked so that the next run builds it again."""
    root, _ = source
    build(root)
    _change(root)
    digest = build(root)
    kept = root / "s.tar.kept"
    assert [p.name for p in kept.iterdir()] == [f"{digest}.tar"]  # the first tarball's link is gone
    saved = {p.name: p.read_bytes() for p in _outputs(root)}
    record = root / "s.tar.record.json"
    assert damage(*_outputs(root)[:2], record, [], kept) is None
    for path in _outputs(root):
        path.unlink()
    state = root / "s.tar.published.json"
    assert restore(*_outputs(root), state, kept)
    assert {p.name: p.read_bytes() for p in _outputs(root)} == saved
    assert "linked back after a failed build" in damage(*_outputs(root)[:2], record, [], kept)
    assert not restore(*_outputs(root), state, kept)  # there: nothing to restore
    for path in _outputs(root):
        path.unlink()
    build(root)
    assert {p.name: p.read_bytes() for p in _outputs(root)} == saved
    assert damage(*_outputs(root)[:2], record, [], kept) is None


def test_nothing_is_restored_without_a_kept_tarball(source):
    root, _ = source
    assert not restore(*_outputs(root), root / "s.tar.published.json", root / "s.tar.kept")
    assert not (root / "out").exists()


def test_a_kept_tarball_changed_in_place_is_not_brought_back(source):
    """The kept link shares the published tarball's bytes: a byte rewritten in the published one is in
    the kept one too, and a restore would ship it."""
    root, _ = source
    digest = build(root)
    tar = _outputs(root)[0]
    with tar.open("r+b") as f:
        f.seek(600)
        byte = f.read(1)[0]
        f.seek(600)
        f.write(bytes([byte ^ 0xFF]))
    for path in _outputs(root):
        path.unlink()
    kept = root / "s.tar.kept"
    assert (kept / f"{digest}.tar").exists()
    assert not restore(*_outputs(root), root / "s.tar.published.json", kept)
    assert not tar.exists()


def test_a_lost_published_state_is_taken_back_only_from_the_tarball_its_md5_names(source):
    """recover_state (at planning): the state lost with the work folder comes back from the tarball in
    place and its changes file; not from a tarball whose bytes are not its md5's, nor over a state or
    a legacy changes file that is there, nor when one of the three files is missing."""
    root, _ = source
    build(root)
    _change(root)
    build(root)
    state, legacy = root / "s.tar.published.json", root / "published.changes.csv"
    kept = changes_csv.load_state(state)
    tar, md5_file, changes = _outputs(root)
    args = (state, legacy, tar, md5_file, changes)
    assert not changes_csv.recover_state(*args)  # the state is there
    state.unlink()
    legacy.write_text("x")
    assert not changes_csv.recover_state(*args) and not state.exists()  # load_state reads the legacy file
    legacy.unlink()
    changes.rename(changes.with_name("away"))
    assert not changes_csv.recover_state(*args) and not state.exists()
    changes.with_name("away").rename(changes)
    assert changes_csv.recover_state(*args) and changes_csv.load_state(state) == kept
    state.unlink()
    _overwrite_last_byte(tar)  # not the tarball its md5 and changes file describe
    assert not changes_csv.recover_state(*args) and not state.exists()


def _overwrite_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
