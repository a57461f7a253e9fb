"""The store through the real workflow: names, collisions, a store that cannot drift from its ledgers,
stale files that leave with their URL, and one URL one chunk."""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import rasterio
import yaml

from tilewise.sources.catalog import parse_file_list
from tilewise.sources.chunks import assign_chunks
from tilewise_demo.source import asc_text, geotiff_bytes

from conftest import snakemake
from support.catalog import make_entry, md5, serve_tiles

pytestmark = pytest.mark.workflow


def run(tmp_path, source, *extra, check=True, work=None):
    args = ["--config", f"catalog={tmp_path / 'catalog'}", f"source={source}", "state=[]", *extra]
    proc = snakemake(work or tmp_path / "run", *args, check=check)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def bounds_names(work, source):
    with open(work / "source-store" / source / "bounds.csv", newline="") as f:
        return [r["filename"] for r in csv.DictReader(f)]


def pixels(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def tar_member(work, source, name):
    with tarfile.open(work / "tar-store" / f"{source}.tar") as tar:
        return tar.extractfile(f"files/{name}").read()


def jobs(proc) -> dict[str, int]:
    """Job counts of a dry-run (`-n`)."""
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def test_a_name_made_by_two_archives_in_two_chunks_is_refused_before_the_store_changes(tmp_path, http):
    """dem.tif in A.zip and DEM.tif in B.zip (one name where case is ignored), in different chunks."""
    http.files["/A.zip"] = zip_of({"dem.tif": geotiff_bytes(0)})
    http.files["/B.zip"] = zip_of({"sub/DEM.tif": geotiff_bytes(1)})
    urls = [http.url("A.zip"), http.url("B.zip")] + serve_tiles(http, 2)
    (tmp_path / "list.txt").write_text("".join(u + "\n" for u in urls))
    chunk_of = {e.name: c for c, es in assign_chunks(parse_file_list(tmp_path / "list.txt"), 1).items() for e in es}
    assert chunk_of["A.zip"] != chunk_of["B.zip"]  # the point of the test
    entry = make_entry(tmp_path / "catalog", "clash", [u for u in urls if not u.endswith("B.zip")])
    work = tmp_path / "run"
    run(tmp_path, "clash", "files_per_chunk=1")
    store = work / "source-store" / "clash"
    a_pixels, a_tar = pixels(store / "dem.tif"), md5(work / "tar-store" / "clash.tar")

    (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls))
    proc = run(tmp_path, "clash", "files_per_chunk=1", check=False)
    assert proc.returncode != 0
    log = (work / "logs" / "merge_source" / "clash.log").read_text()
    assert "dem.tif in A.zip (line 1, chunk" in log and "sub/DEM.tif in B.zip (line 2, chunk" in log
    assert f"Nothing in {store}/ was changed" in log or "Nothing in source-store/clash/ was changed" in log
    assert "prefix_names_from" in log and "- A.zip" in log and "- B.zip" in log
    # the store still holds A's pixels and nothing of B
    assert np.array_equal(pixels(store / "dem.tif"), a_pixels) and not (store / "DEM.tif").exists()
    assert md5(work / "tar-store" / "clash.tar") == a_tar

    # the fix the message offers works: only the two chunks of A and B are prepared again
    (entry / "source.yaml").write_text(yaml.safe_dump({"prefix_names_from": ["A.zip", "B.zip"]}))
    assert jobs(run(tmp_path, "clash", "files_per_chunk=1", "-n"))["prepare_chunk"] == 2
    run(tmp_path, "clash", "files_per_chunk=1")
    assert bounds_names(work, "clash") == ["A_dem.tif", "B_sub_DEM.tif", "t000.tif", "t001.tif"]
    assert sorted(p.name for p in store.glob("*.tif")) == bounds_names(work, "clash")  # dem.tif left
    assert np.array_equal(pixels(store / "A_dem.tif"), a_pixels)
    with rasterio.MemoryFile(geotiff_bytes(1)) as mf, mf.open() as ds:
        assert np.allclose(pixels(store / "B_sub_DEM.tif"), ds.read(1), atol=0.001)


def test_stale_files_leave_with_their_url_found_by_provenance(tmp_path, http):
    """Two URLs in different chunks make x.tif; the user removes one: the store holds the other's
    pixels (and the tarball too), whichever chunk ran last."""
    http.files["/A.zip"] = zip_of({"x.tif": geotiff_bytes(3)})
    http.files["/B.zip"] = zip_of({"x.tif": geotiff_bytes(9)})
    urls = [http.url("A.zip"), http.url("B.zip")] + serve_tiles(http, 2)
    entry = make_entry(tmp_path / "catalog", "stale", urls)
    work = tmp_path / "run"
    assert run(tmp_path, "stale", "files_per_chunk=1", check=False).returncode != 0  # the collision
    for removed, kept in (("A.zip", 9),):  # (the other way round is the same code path, and slow)
        (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls if not u.endswith(removed)))
        run(tmp_path, "stale", "files_per_chunk=1")
        with rasterio.MemoryFile(geotiff_bytes(kept)) as mf, mf.open() as ds:
            expected = ds.read(1)
        store = work / "source-store" / "stale"
        assert np.allclose(pixels(store / "x.tif"), expected, atol=0.001)
        with rasterio.MemoryFile(tar_member(work, "stale", "x.tif")) as mf, mf.open() as ds:
            assert np.allclose(ds.read(1), expected, atol=0.001)
    # a URL that leaves takes every file it made out of the store
    (entry / "file_list.txt").write_text("".join(u + "\n" for u in urls[2:]))
    run(tmp_path, "stale", "files_per_chunk=1")
    assert sorted(p.name for p in (work / "source-store" / "stale").iterdir()) == ["bounds.csv", "t000.tif", "t001.tif"]
    assert not [p for p in (work / "work" / "stale" / "staging").rglob("*") if p.is_file()]


def test_two_rasters_of_one_archive_with_one_name(tmp_path, http):
    """X.tif beside X.asc (one stem) and a/y.tif beside b/y.tif: that file fails with a fix that works."""
    http.files["/same_stem.zip"] = zip_of({"X.tif": geotiff_bytes(0), "X.asc": asc_text(1).encode()})
    http.files["/folders.zip"] = zip_of({"a/y.tif": geotiff_bytes(2), "b/y.tif": geotiff_bytes(3)})
    entry = make_entry(
        tmp_path / "catalog", "inner", [http.url("same_stem.zip"), http.url("folders.zip")], {"crs": "EPSG:25832"}
    )
    work = tmp_path / "run"
    assert run(tmp_path, "inner", check=False).returncode != 0
    with open(work / "reports" / "inner" / "failures.csv", newline="") as f:
        failed = {r["file"]: r["error"] for r in csv.DictReader(f)}
    assert "X.asc and X.tif, would both be stored as X.tif" in failed["same_stem.zip"]
    # not 'X.tif': it would drop both (X.asc's output is X.tif too)
    assert "exclude: ['X.asc']" in failed["same_stem.zip"] and "prefix_names_from" not in failed["same_stem.zip"]
    assert "a/y.tif and b/y.tif, would both be stored as y.tif" in failed["folders.zip"]
    assert "prefix_names_from: ['folders.zip']" in failed["folders.zip"]
    assert not list((work / "source-store" / "inner").glob("*.tif"))
    (entry / "source.yaml").write_text(
        yaml.safe_dump({"crs": "EPSG:25832", "exclude": ["X.asc", "typo*.tif"], "prefix_names_from": ["folders.zip"]})
    )
    run(tmp_path, "inner")
    assert bounds_names(work, "inner") == ["X.tif", "folders_a_y.tif", "folders_b_y.tif"]
    assert "exclude pattern 'typo*.tif' matched no file" in (work / "logs" / "merge_source" / "inner.log").read_text()
    ledgers = [json.loads(p.read_text()) for p in (work / "work" / "inner" / "chunks").glob("*.json")]
    records = {r["file"]: r for led in ledgers for r in led["files"]}
    assert records["same_stem.zip"]["excluded"] == ["X.asc"]
    assert [o["raster"] for o in records["folders.zip"]["outputs"]] == ["a/y.tif", "b/y.tif"]


def test_a_nested_archive_is_named_by_its_stem_not_by_the_folder_it_was_unpacked_into(tmp_path, http):
    """kachel.zip > inner.zip > dgm/y.tif with prefix_names_from: the name is made of the archives' and
    their folders' names only (tilewise unpacks inner.zip into a folder of its own, `inner.zip-x`)."""
    inner = zip_of({"dgm/y.tif": geotiff_bytes(4)})
    http.files["/kachel.zip"] = zip_of({"inner.zip": inner, "top.tif": geotiff_bytes(5)})
    make_entry(tmp_path / "catalog", "nested", [http.url("kachel.zip")], {"prefix_names_from": ["kachel.zip"]})
    run(tmp_path, "nested")
    assert bounds_names(tmp_path / "run", "nested") == ["kachel_inner_dgm_y.tif", "kachel_top.tif"]


HOSTILE_MEMBERS = [
    "left,right.tif",
    "-rf.tif",
    ".hidden.tif",
    'quote"d.tif',
    "back\\slash.tif",
    "new\nline.tif",
    "tab\tname.tif",
    "bell\x07.tif",
    " space.tif",
    "n" * 250 + ".tif",
]


def test_names_that_would_break_bounds_csv_a_tar_or_a_file_system(tmp_path, http):
    http.files["/odd.zip"] = zip_of({name: geotiff_bytes(i) for i, name in enumerate(HOSTILE_MEMBERS)})
    http.files["/dl"] = geotiff_bytes(11)  # three URLs that differ only in their query: three files
    urls = [http.url("odd.zip")] + [http.url(f"dl?f={k}.tif&x=%2F") for k in (1, 2)] + [http.url("dl")]
    make_entry(tmp_path / "catalog", "names", urls)
    work = tmp_path / "run"
    run(tmp_path, "names")
    store = work / "source-store" / "names"
    names = bounds_names(work, "names")
    assert len(names) == len(HOSTILE_MEMBERS) + 3
    assert {"dl.tif", "dl?f=1.tif", "dl?f=2.tif"} <= set(names)  # {stem}.tif of wget's names dl?f=1.tif&x=%2F, …
    assert {"left%2Cright.tif", "%2Drf.tif", "%2Ehidden.tif", "quote%22d.tif", "back%5Cslash.tif"} <= set(names)
    assert {"new%0Aline.tif", "tab%09name.tif", "bell%07.tif", "%20space.tif"} <= set(names)
    assert all(len(n.encode()) <= 236 for n in names) and any(n.startswith("n" * 200) for n in names)
    # Mapterhorn's reader: one row per line, seven fields, the name is a file of the store
    lines = (store / "bounds.csv").read_text().split("\n")
    assert lines[-1] == "" and len(lines) == len(names) + 2
    for line in lines[1:-1]:
        fields = line.strip().split(",")
        assert len(fields) == 7 and (store / fields[0]).is_file()
    with tarfile.open(work / "tar-store" / "names.tar") as tar:
        assert sorted(tar.getnames()[4:]) == sorted(f"files/{n}" for n in names)


def test_a_store_that_drifts_from_its_ledgers_is_noticed_and_rebuilt(tmp_path, http):
    urls = serve_tiles(http, 8)
    make_entry(tmp_path / "catalog", "drift", urls)
    work = tmp_path / "run"
    run(tmp_path, "drift")
    clean = md5(work / "tar-store" / "drift.tar")
    store, chunks = work / "source-store" / "drift", work / "work" / "drift" / "chunks"
    # every COG's size and md5 are in its ledger
    outputs = {
        o["filename"]: o
        for p in chunks.glob("*.json")
        for r in json.loads(p.read_text())["files"]
        for o in r["outputs"]
    }
    for name, out in outputs.items():
        assert out["bytes"] == (store / name).stat().st_size
        assert out["md5"] == hashlib.md5((store / name).read_bytes()).hexdigest()

    def owner(name):
        return next(p.stem for p in chunks.glob("*.json") if name in p.read_text())

    damages = {  # each on its own chunk where possible; all at once, then one run repairs them
        "t001.tif was deleted": lambda: (store / "t001.tif").unlink(),
        "t002.tif changed size": lambda: (store / "t002.tif").open("ab").write(b"\0"),
        "t003.tif was modified": lambda: _overwrite_a_byte(store / "t003.tif"),
        "is truncated": lambda: (chunks / f"{owner('t005.tif')}.json").write_bytes(
            (chunks / f"{owner('t005.tif')}.json").read_bytes()[:200]
        ),
    }
    damaged_chunks = {owner(n) for n in ("t001.tif", "t002.tif", "t003.tif", "t005.tif")}
    assert len(damaged_chunks) == 4  # four chunks, so each damage is reported on its own
    for damage in damages.values():
        damage()
    dry = run(tmp_path, "drift", "-n")
    for what in damages:
        assert re.search(rf"chunk \d{{4}} is prepared again: .*{what}", dry.stderr), (what, dry.stderr[-2000:])
    assert jobs(dry)["prepare_chunk"] == len(damaged_chunks) and jobs(dry)["build_tarball"] == 1, dry.stdout
    run(tmp_path, "drift")
    assert md5(work / "tar-store" / "drift.tar") == clean
    assert "Nothing to be done" in run(tmp_path, "drift", "-n").stdout

    # same size, same modification time, other bytes: planning cannot see it; the md5 check while the
    # tarball is written does, fails it (no partial tar) and removes the chunk's ledger: the same
    # command again rebuilds that chunk
    cog, t006_ledger = store / "t006.tif", chunks / f"{owner('t006.tif')}.json"
    st = cog.stat()
    _overwrite_a_byte(cog)
    os.utime(cog, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "Nothing to be done" in run(tmp_path, "drift", "-n").stdout
    proc = run(tmp_path, "drift", "--forcerun", "build_tarball", check=False)
    assert proc.returncode != 0 and "t006.tif: md5" in proc.stderr and "run the same command again" in proc.stderr
    assert not list((work / "tar-store").glob("*.tmp")) and not t006_ledger.exists()
    run(tmp_path, "drift")
    assert md5(work / "tar-store" / "drift.tar") == clean


@pytest.mark.parametrize("lost", ["the store index", "the work folder"])
def test_a_store_nothing_vouches_for_is_merged_again_before_it_can_drift(tmp_path, http, lost):
    """The store index is what planning checks the store against: with it gone (the work folder
    cleaned), the merge runs again (and the chunks whose ledgers are gone), so a COG deleted later is
    still noticed."""
    make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 4))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    clean = md5(work / "tar-store" / "kept.tar")
    if lost == "the store index":
        (work / "work" / "kept" / "store-index.json").unlink()
    else:
        shutil.rmtree(work / "work")
    dry = run(tmp_path, "kept", "-n")
    assert "the merge runs again: its store index" in dry.stderr and jobs(dry)["merge_source"] == 1
    run(tmp_path, "kept")
    assert md5(work / "tar-store" / "kept.tar") == clean
    assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout
    (work / "source-store" / "kept" / "t002.tif").unlink()
    assert "t002.tif was deleted" in run(tmp_path, "kept", "-n").stderr


def test_a_tarball_changed_after_its_build_is_built_again(tmp_path, http):
    make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    tar, md5_file = work / "tar-store" / "kept.tar", work / "tar-store" / "kept.tar.md5"
    clean, clean_md5 = md5(tar), md5_file.read_text()
    damages = {
        "truncated": lambda: tar.write_bytes(tar.read_bytes()[:-10_000]),
        "a byte changed": lambda: _overwrite_a_byte(tar),
        "deleted": tar.unlink,
        "its md5 edited": lambda: md5_file.write_text("0" * 32 + " kept.tar\n"),
    }
    for what, damage in damages.items():
        damage()
        dry = run(tmp_path, "kept", "-n")
        assert jobs(dry).get("build_tarball") == 1, (what, dry.stdout + dry.stderr)
        run(tmp_path, "kept")
        assert md5(tar) == clean and md5_file.read_text() == clean_md5, what
        assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout, what


def _keep_time(path, edit):
    st = path.stat()
    edit()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_changes_file_edited_after_the_build_is_written_again(tmp_path, http):
    """An uploader follows changes.csv; an edit of it (by hand, cut, a copy that kept its time) was
    never seen: Snakemake does not rerun a job for an output edited after it (attack/a04 on attack38)."""
    make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    changes, tar = work / "tar-store" / "kept.changes.csv", work / "tar-store" / "kept.tar"
    clean, clean_tar = changes.read_bytes(), md5(tar)
    edits = {
        "edited": lambda: changes.write_text(changes.read_text().replace("added", "unchanged")),
        "cut to its header": lambda: changes.write_text(changes.read_text().splitlines()[0] + "\n"),
        "edited, its time kept": lambda: _keep_time(changes, lambda: changes.write_bytes(clean.replace(b"a", b"b"))),
        "CRLF line ends": lambda: changes.write_bytes(clean.replace(b"\n", b"\r\n")),
    }
    for what, edit in edits.items():
        edit()
        dry = run(tmp_path, "kept", "-n")
        assert f"{changes.name} was edited after the build" in dry.stderr, what
        run(tmp_path, "kept")
        assert changes.read_bytes() == clean and md5(tar) == clean_tar, what
        assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout, what


def test_a_cog_put_into_the_store_by_hand_leaves_it(tmp_path, http):
    """A .tif no ledger names, copied into source-store/ after the merge, stayed in the store (exit 0,
    "Nothing to be done"): only a merge prunes, and nothing ran one (attack/a04 on attack38)."""
    make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    store = work / "source-store" / "kept"
    clean = sorted(p.name for p in store.iterdir())
    clean_bounds, clean_tar = md5(store / "bounds.csv"), md5(work / "tar-store" / "kept.tar")
    strays = {
        "a copy under a new name": lambda: shutil.copy2(store / "t001.tif", store / "t001 (copy).tif"),
        "another case": lambda: shutil.copy2(store / "t002.tif", store / "T002.tif"),
        "an empty file": lambda: (store / "zzz.tif").write_bytes(b""),
    }
    for what, put in strays.items():
        put()
        dry = run(tmp_path, "kept", "-n")
        assert "is in no ledger (put there after the merge)" in dry.stderr, what
        run(tmp_path, "kept")
        assert sorted(p.name for p in store.iterdir()) == clean, what
        assert md5(store / "bounds.csv") == clean_bounds and md5(work / "tar-store" / "kept.tar") == clean_tar, what
        assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout, what


def test_a_run_without_snakemakes_own_record_still_sees_an_edited_recipe_and_a_damaged_store(tmp_path, http):
    """.snakemake/ deleted (the usual cure for a lock): Snakemake no longer knows a job's params nor its
    inputs, so an edited recipe, a version a refresh found or a rebuild flag reruns nothing, and the COGs of
    the old recipe were shipped. Each ledger keeps a digest of what it was made from, and flags are made
    at planning, newer than the output they rerun."""
    entry = make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    store = work / "source-store" / "kept"
    with rasterio.open(store / "t000.tif") as ds:
        assert ds.block_shapes[0] != (256, 256)
    shutil.rmtree(work / ".snakemake")
    (entry / "source.yaml").write_text(yaml.safe_dump({"cog": {"BLOCKSIZE": 256}}))
    assert "was made from other files or another recipe" in run(tmp_path, "kept", "-n").stderr
    run(tmp_path, "kept")
    for name in ("t000.tif", "t001.tif", "t002.tif"):
        with rasterio.open(store / name) as ds:
            assert ds.block_shapes[0] == (256, 256), name
    with tarfile.open(work / "tar-store" / "kept.tar") as tar_file:
        member = tar_file.extractfile("files/t001.tif").read()
    assert member == (store / "t001.tif").read_bytes()
    tarball = md5(work / "tar-store" / "kept.tar")
    shutil.rmtree(work / ".snakemake")
    (store / "t002.tif").unlink()
    run(tmp_path, "kept")
    assert (store / "t002.tif").exists() and md5(work / "tar-store" / "kept.tar") == tarball
    assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout


@pytest.mark.parametrize("name", ["metadata.json", "LICENSE.pdf"])
def test_a_catalog_file_replaced_by_an_older_copy_is_shipped(tmp_path, http, name):
    """A catalog snapshot copied with its own times (cp -p, rsync -a, tar x): the new metadata.json or
    LICENSE.pdf is not newer than the tarball, yet the tarball must ship it."""
    entry = make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 2))
    os.utime(entry / name, (1.6e9, 1.6e9))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    new = (entry / name).read_bytes().replace(b"tilewise tests", b"the producer, renamed") + b"\n"
    (entry / name).write_bytes(new)
    os.utime(entry / name, (1.61e9, 1.61e9))
    dry = run(tmp_path, "kept", "-n")
    assert f"{entry / name} has other bytes than the tarball ships" in dry.stderr
    run(tmp_path, "kept")
    with tarfile.open(work / "tar-store" / "kept.tar") as tar:
        assert tar.extractfile(name).read() == new
    assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout


@pytest.mark.parametrize("product", ["bounds.csv", "coverage"])
@pytest.mark.parametrize("tarball", [True, False])
def test_bounds_or_coverage_replaced_after_the_merge_is_merged_again(tmp_path, http, product, tarball):
    """bounds.csv or the coverage GeoPackage edited by hand, or replaced by a copy that kept an older
    time (`cp -p` of a backup, `rsync -a`): Snakemake, comparing times, saw nothing when the copy was
    older than the tarball, or when the source has no tarball (no LICENSE.pdf: nothing reads them),
    and the store kept the wrong file, exit 0. The store index keeps their md5s: planning merges
    again, and the store equals a clean run's, byte for byte."""
    entry = make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    if not tarball:
        (entry / "LICENSE.pdf").unlink()
    work = tmp_path / "run"
    run(tmp_path, "kept")
    path = work / ("source-store/kept/bounds.csv" if product == "bounds.csv" else "polygon-store/kept.gpkg")
    tar = work / "tar-store" / "kept.tar"
    clean, clean_tar = path.read_bytes(), (md5(tar) if tarball else None)
    assert tar.exists() == tarball
    middle = len(clean) // 2
    edits = [  # (what, its bytes, a backup's older time)
        ("a byte changed in its middle", clean[:middle] + bytes([clean[middle] ^ 1]) + clean[middle + 1 :], True),
        ("cut off", clean[:middle], False),
        ("its last byte changed", clean[:-1] + bytes([clean[-1] ^ 1]), True),
    ]
    if product == "bounds.csv":
        edits[-1] = ("a row edited, same size", clean.replace(b",500\n", b",501\n", 1), True)
    for what, edited, older in edits:
        st = path.stat()
        path.write_bytes(edited)
        assert edited != clean, what
        if older:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
        dry = run(tmp_path, "kept", "-n")
        assert "the merge runs again" in dry.stderr and "is not the one the merge wrote" in dry.stderr, what
        run(tmp_path, "kept")
        assert path.read_bytes() == clean, what
        if tarball:
            assert md5(tar) == clean_tar, what
        assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout, what


def test_a_published_state_lost_with_the_work_folder_is_taken_back_from_the_tarball(tmp_path, http):
    """work/ deleted (to free space, to start clean), or only its published state: the next tarball's
    changes file still compares with the tarball in tar-store/ (its changes file describes it, its
    bytes give its md5). Before, every file was `added` and a URL that left the list had no `removed`
    row, so an uploader that follows the changes file kept the file it no longer ships."""
    urls = serve_tiles(http, 4)
    entry = make_entry(tmp_path / "catalog", "kept", urls)
    work = tmp_path / "run"
    tar, changes = work / "tar-store" / "kept.tar", work / "tar-store" / "kept.changes.csv"

    def rows():
        with open(changes, newline="") as f:
            return {r["filename"]: r["change"] for r in csv.DictReader(f)}

    run(tmp_path, "kept")
    first, first_md5 = changes.read_bytes(), md5(tar)
    shutil.rmtree(work / "work")  # nothing else changed: the same tarball keeps its changes file
    run(tmp_path, "kept")
    assert md5(tar) == first_md5 and changes.read_bytes() == first  # the first tarball's: every file added
    shutil.rmtree(work / "work")
    (entry / "file_list.txt").write_text("\n".join(urls[:3]) + "\n")  # t003 leaves the list
    proc = run(tmp_path, "kept")
    assert rows() == {"t000.tif": "unchanged", "t001.tif": "unchanged", "t002.tif": "unchanged", "t003.tif": "removed"}
    assert "published state was lost with the work folder" in proc.stderr
    (work / "work" / "kept" / "published.json").unlink()  # the state alone
    (entry / "file_list.txt").write_text("\n".join(urls[:3] + serve_tiles(http, 1, start=4)) + "\n")
    run(tmp_path, "kept")
    assert rows() == {"t000.tif": "unchanged", "t001.tif": "unchanged", "t002.tif": "unchanged", "t004.tif": "added"}
    assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout


def _overwrite_a_byte(path):
    with path.open("r+b") as f:  # same size; the modification time moves on, as with any write
        f.seek(1000)
        byte = f.read(1)[0]
        f.seek(1000)
        f.write(bytes([byte ^ 0xFF]))


def test_one_url_one_chunk_wherever_it_is_in_the_list(tmp_path, http):
    urls = serve_tiles(http, 16)
    gone = http.url("gone/missing.zip")
    entry = make_entry(tmp_path / "catalog", "order", [*urls[:5], gone, *urls[5:]])
    work = tmp_path / "run"
    run(tmp_path, "order", "allow_incomplete=True")

    def failure_line():
        with open(work / "reports" / "order" / "failures.csv", newline="") as f:
            return [int(r["line"]) for r in csv.DictReader(f)]

    assert failure_line() == [6]
    new = serve_tiles(http, 1, start=16)[0]
    edits = {
        "first line removed": ([*urls[1:5], gone, *urls[5:]], 5),
        "a URL inserted at the top": ([new, *urls[1:5], gone, *urls[5:]], 6),
    }
    for what, (listed, line) in edits.items():
        (entry / "file_list.txt").write_text("".join(u + "\n" for u in listed))
        proc = run(tmp_path, "order", "allow_incomplete=True")
        assert proc.stderr.count("(Rule: prepare_chunk)") == 1, what
        assert failure_line() == [line], what  # looked up when the source is merged
    # a line moved, blank lines and a comment: no chunk changes, the tarball is not rebuilt
    moved = [new, *urls[2:5], gone, *urls[5:], urls[1]]
    (entry / "file_list.txt").write_text("\n# a comment\n" + "".join(u + "\n\n" for u in moved))
    assert "Nothing to be done" in run(tmp_path, "order", "allow_incomplete=True", "-n").stdout


def test_catalog_text_and_local_files(tmp_path, http):
    """A BOM is ignored; a local path that does not exist is that file's failure, not a stop."""
    tile = tmp_path / "local" / "here.tif"
    tile.parent.mkdir()
    tile.write_bytes(geotiff_bytes(5))
    entry = make_entry(tmp_path / "catalog", "local", [])
    (entry / "file_list.txt").write_bytes(
        b"\xef\xbb\xbf" + f"{tile}\r\n{tmp_path / 'local' / 'absent.tif'}\r\n{http.url('tiles/t000.zip')}\r\n".encode()
    )
    serve_tiles(http, 1)
    make_entry(tmp_path / "catalog", "other", serve_tiles(http, 2, start=1))
    work = tmp_path / "run"
    proc = run(tmp_path, "[local,other]", check=False)
    assert proc.returncode != 0 and "MissingInputException" not in proc.stderr + proc.stdout
    with open(work / "reports" / "local" / "failures.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["file"], row["line"], row["step"]) == ("absent.tif", "2", "download") and "no such file" in row["error"]
    assert bounds_names(work, "local") == ["here.tif", "t000.tif"]
    assert (work / "tar-store" / "other.tar").exists()  # the other source is not held up
    (tmp_path / "local" / "absent.tif").write_bytes(geotiff_bytes(6))  # the file appears: its chunk reruns
    run(tmp_path, "local")
    assert bounds_names(work, "local") == ["absent.tif", "here.tif", "t000.tif"]


def test_a_local_file_replaced_by_an_older_one_is_prepared_again(tmp_path):
    """cp -p, rsync -a and unzip keep the producer's time, so a new version can be older than the
    outputs made from the old one: planning compares each local file's size and time with what its
    copy recorded (Snakemake alone reruns only on a newer input)."""
    local = tmp_path / "local"
    local.mkdir()
    for i in range(3):
        (local / f"t{i}.tif").write_bytes(geotiff_bytes(i))
        os.utime(local / f"t{i}.tif", (1.6e9, 1.6e9))
    make_entry(tmp_path / "catalog", "local", [str(local / f"t{i}.tif") for i in range(3)])
    run(tmp_path, "local")
    work, replaced = tmp_path / "run", local / "t1.tif"
    with rasterio.open(replaced) as ds:
        profile, heights = ds.profile, ds.read(1)
    with rasterio.open(replaced, "w", **profile) as ds:  # the producer's next version: same grid, new heights
        ds.write(heights + 1, 1)
    os.utime(replaced, (1.65e9, 1.65e9))  # newer than the first version, older than the outputs
    dry = run(tmp_path, "local", "-n")
    assert jobs(dry)["prepare_chunk"] == 1 and f"its local file {replaced} is not the one" in dry.stderr
    run(tmp_path, "local")
    assert np.allclose(pixels(work / "source-store" / "local" / "t1.tif"), heights + 1, atol=0.001)
    assert "prepare_chunk" not in jobs(run(tmp_path, "local", "-n"))  # settled


@pytest.mark.parametrize(
    "files, message",
    [
        ({"metadata.json": b"null"}, r"metadata.json:1: the top level is null"),
        ({"file_list.txt": b"http://h/a.tif\n\xff\xfe\n"}, r"file_list.txt:2: not UTF-8 text"),
        (
            {"source.yaml": b"cog:\n  COMPRESS: NOSUCHCODEC\n"},
            r"source.yaml:2: cog.COMPRESS: 'NOSUCHCODEC' is not one of",
        ),
        ({"source.yaml": b"crs: EPSG:999999\n"}, r"source.yaml:1: crs: 'EPSG:999999' is not a CRS"),
        (
            {"Justfile": b"default:\n    uv run python source_set_crs.py bad EPSG:999999\n"},
            r"Justfile:2: crs: 'EPSG:999999'",
        ),
        (
            {"Justfile": b"default:\n    uv run python source_set_nodata.py bad 'minus\n"},
            r"Justfile:2: .*unclosed single quote",
        ),
        (
            {"Justfile": b"default:\n    uv run python source_set_nodata.py bad nine\n"},
            r"Justfile:2: .*'nine' is not a number",
        ),
        (  # a step before the unzip whose rasters it would never reach in Mapterhorn
            {
                "Justfile": b"default:\n    uv run python source_set_crs.py bad EPSG:25832\n"
                b"    uv run python source_unzip.py bad\n"
            },
            r"Justfile:2: cannot map .*source_unzip.py \(line 3\).*move this line after line 3",
        ),
        (  # a conversion after the tarball: Mapterhorn shipped the downloads unconverted
            {
                "Justfile": b"default:\n    uv run python source_download.py bad\n"
                b"    uv run python source_create_tarball.py bad\n    uv run python source_to_cog.py bad\n"
            },
            r"Justfile:4: cannot map .*after source_create_tarball.py \(line 3\).*in that order",
        ),
    ],
)
def test_bad_catalog_text_stops_at_planning_naming_file_and_line(tmp_path, http, files, message):
    entry = make_entry(tmp_path / "catalog", "bad", serve_tiles(http, 2))
    for name, data in files.items():
        (entry / name).write_bytes(data)
    proc = run(tmp_path, "bad", check=False)
    assert proc.returncode != 0 and re.search(message, proc.stderr), proc.stderr[-2000:]
    assert not http.log and not (tmp_path / "run" / "work").exists()  # nothing was downloaded or written


def test_a_failed_tarball_build_leaves_the_previous_tarball_and_builds_it_again(tmp_path, http):
    """Snakemake removes the outputs of a failed job; the run's end links the last tarball built back,
    with its md5 and changes file, and the next run builds it again."""
    make_entry(tmp_path / "catalog", "kept", serve_tiles(http, 3))
    work = tmp_path / "run"
    run(tmp_path, "kept")
    outputs = [work / "tar-store" / n for n in ("kept.tar", "kept.tar.md5", "kept.changes.csv")]
    saved = [p.read_bytes() for p in outputs]
    cog = work / "source-store" / "kept" / "t001.tif"  # changed keeping its size and time: the tarball refuses it
    st = cog.stat()
    _overwrite_a_byte(cog)
    os.utime(cog, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = run(tmp_path, "kept", "--forcerun", "build_tarball", check=False)
    assert proc.returncode != 0 and "t001.tif: md5" in proc.stderr
    assert "the previous one, its md5 and its changes file are back" in proc.stderr
    assert [p.read_bytes() for p in outputs] == saved
    dry = run(tmp_path, "kept", "-n")
    assert "linked back after a failed build" in dry.stderr and jobs(dry).get("build_tarball") == 1
    run(tmp_path, "kept")
    assert [p.read_bytes() for p in outputs] == saved
    assert "Nothing to be done" in run(tmp_path, "kept", "-n").stdout
