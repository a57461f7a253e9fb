"""Refresh through the real workflow: a producer that updates files in place at the same URLs."""

import csv
import re
import time
from email.utils import formatdate

import pytest

from tilewise.sources.catalog import parse_file_list
from tilewise.sources.chunks import assign_chunks
from tilewise_demo.source import geotiff_bytes

from conftest import snakemake
from support.catalog import make_entry, md5, serve_tiles, zipped
from support.httpserver import Fault

pytestmark = pytest.mark.workflow

TOUCHED = "Tue, 01 Dec 2026 00:00:00 GMT"


def run(tmp_path, work, *extra, source="src", options=()):
    config = [f"catalog={tmp_path / 'catalog'}", f"source={source}", "state=[]", "files_per_chunk=2"]
    args = [*options, "--config", *config, *extra]
    proc = snakemake(work, *args)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def prepared_chunks(proc, source="src") -> list[str]:
    """The chunks whose prepare_chunk job ran (or would run, in a dry-run), from Snakemake's job list."""
    text = proc.stdout + proc.stderr
    assert "Job stats" in text or "Nothing to be done" in text, text[-2000:]  # the job list is there to read
    return sorted(set(re.findall(rf"^(?:Job \d+: )?{source}: chunk (\d{{4}})$", text, re.M)))


def changes(work, source="src") -> dict[str, dict]:
    with open(work / "tar-store" / f"{source}.changes.csv", newline="") as f:
        return {r["filename"]: r for r in csv.DictReader(f)}


def chunks_of(tmp_path, urls) -> dict[str, str]:
    (tmp_path / "list.txt").write_text("".join(u + "\n" for u in urls))
    return {e.name: c for c, es in assign_chunks(parse_file_list(tmp_path / "list.txt"), 2).items() for e in es}


def snapshot(work, chunks) -> dict:
    """Bytes and modification times of the ledgers of `chunks`: what an untouched chunk keeps."""
    paths = [work / "work" / "src" / "chunks" / f"{c}.json" for c in chunks]
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_a_refresh_reruns_exactly_the_chunks_with_a_changed_file(tmp_path, http):
    """New bytes (new ETag) for t001, only a new Last-Modified for t002 (same bytes), t004 removed,
    t011 added: the chunks of t001, t004 and t011 run again, and the tarball is the one a run from
    scratch over the new files makes."""
    urls = serve_tiles(http, 12)
    before, after = urls[:11], [u for u in urls if not u.endswith("t004.zip")]
    old, new = chunks_of(tmp_path, before), chunks_of(tmp_path, after)
    assert len(set(old.values())) == len(set(new.values())) == 7  # the chunk count stays (8 slots)
    rerun = sorted({new["t001.zip"], old["t004.zip"], new["t011.zip"]})
    assert len(rerun) == 3 and new["t002.zip"] not in rerun and old["t004.zip"] == new["t005.zip"]
    untouched = sorted(set(new.values()) - set(rerun))
    entry = make_entry(tmp_path / "catalog", "src", before)
    work = tmp_path / "run"
    run(tmp_path, work)
    first = changes(work)
    assert {r["change"] for r in first.values()} == {"added"} and len(first) == 11

    # nothing changed on the server: HEADs only, no job, nothing rewritten
    kept, tar_mtime = snapshot(work, set(old.values())), (work / "tar-store" / "src.tar").stat().st_mtime_ns
    proc = run(tmp_path, work, "refresh=True")
    assert prepared_chunks(proc) == [] and "0 changed" in proc.stderr
    assert snapshot(work, set(old.values())) == kept
    assert (work / "tar-store" / "src.tar").stat().st_mtime_ns == tar_mtime

    old_md5 = {name: row["md5_after"] for name, row in first.items()}
    http.files["/tiles/t001.zip"] = zipped("t001.tif", geotiff_bytes(7))
    http.modified["/tiles/t002.zip"] = TOUCHED
    del http.files["/tiles/t004.zip"]
    (entry / "file_list.txt").write_text("".join(u + "\n" for u in after))
    kept = snapshot(work, untouched)

    dry = run(tmp_path, work, "refresh=True", "-n")
    assert prepared_chunks(dry) == rerun
    assert not (work / "work" / "src" / "remote").exists()  # a dry-run writes nothing
    # a refresh stopped after planning, before its chunks ran: the next run, even without
    # refresh, still prepares them (the versions found are written when the run is planned)
    proc = run(tmp_path, work, "refresh=True", options=["--omit-from", "prepare_chunk"])
    assert prepared_chunks(proc) == [] and ": 1 changed, 0 gone" in proc.stderr
    proc = run(tmp_path, work)
    assert prepared_chunks(proc) == rerun
    assert snapshot(work, untouched) == kept  # byte for byte, not even rewritten
    rows = changes(work)
    assert {n: r["change"] for n, r in rows.items() if r["change"] != "unchanged"} == {
        "t001.tif": "changed",
        "t004.tif": "removed",
        "t011.tif": "added",
    }
    assert rows["t002.tif"]["change"] == "unchanged" and rows["t002.tif"]["md5_after"] == old_md5["t002.tif"]
    assert rows["t001.tif"]["md5_before"] == old_md5["t001.tif"] != rows["t001.tif"]["md5_after"]
    assert rows["t004.tif"]["md5_after"] == "" and rows["t004.tif"]["left"] == "" and rows["t004.tif"]["left_before"]
    assert rows["t011.tif"]["md5_before"] == "" and rows["t011.tif"]["left_before"] == ""
    with open(work / "source-store" / "src" / "bounds.csv", newline="") as f:
        bounds = {r["filename"]: r for r in csv.DictReader(f)}
    assert all(rows[n][k] == bounds[n][k] for n in bounds for k in ("left", "bottom", "right", "top", "width"))
    with open(work / "reports" / "src" / "refresh.csv", newline="") as f:
        report = {r["file"]: r["result"] for r in csv.DictReader(f)}
    assert report["t001.zip"] == "changed" and report["t002.zip"] == "unchanged" and "t011.zip" not in report

    scratch = tmp_path / "scratch"
    run(tmp_path, scratch)
    assert md5(scratch / "tar-store" / "src.tar") == md5(work / "tar-store" / "src.tar")

    # a second change of the same file is found again, and nothing else (the chunks just prepared
    # again are not prepared a third time); a run without refresh then keeps everything
    http.files["/tiles/t001.zip"] = zipped("t001.tif", geotiff_bytes(9))
    assert prepared_chunks(run(tmp_path, work, "refresh=True")) == [new["t001.zip"]]
    assert changes(work)["t001.tif"]["change"] == "changed"
    assert prepared_chunks(run(tmp_path, work)) == []

    # one server that does not answer during a refresh (403 to every request here, at once; a 503
    # outage after the retries is the same, tests/test_refresh_check.py): its file is unchecked,
    # nothing reruns, its good COG and the tarball stay, the log warns and refresh.csv lists it; once
    # the server answers again, the next refresh asks again and finds it unchanged
    tar = md5(work / "tar-store" / "src.tar")
    http.faults["/tiles/t003.zip"] = [Fault(10**9, "HEAD", status=403), Fault(10**9, "GET", status=403)]
    proc = run(tmp_path, work, "refresh=True")
    assert prepared_chunks(proc) == [] and "WARNING" in proc.stderr and "1 unchecked" in proc.stderr
    assert md5(work / "tar-store" / "src.tar") == tar and (work / "source-store" / "src" / "t003.tif").exists()
    with open(work / "reports" / "src" / "refresh.csv", newline="") as f:
        assert {r["file"]: r["result"] for r in csv.DictReader(f)}["t003.zip"] == "unchecked"
    http.faults.clear()
    proc = run(tmp_path, work, "refresh=True")
    assert prepared_chunks(proc) == [] and "0 unchecked" in proc.stderr


def test_the_same_tarball_built_again_keeps_the_changes_file_that_published_it(tmp_path, http):
    """After a refresh found t001 changed, the operator moves the tar away to upload it, deletes its
    md5 or the changes file, or forces the tarball job: the tar built again is the same one, and its
    changes file still says t001 changed since the tarball before (not 'unchanged', against itself)."""
    urls = serve_tiles(http, 4)
    make_entry(tmp_path / "catalog", "src", urls)
    work = tmp_path / "run"
    run(tmp_path, work)
    http.files["/tiles/t001.zip"] = zipped("t001.tif", geotiff_bytes(7))
    run(tmp_path, work, "refresh=True")
    tar, published = work / "tar-store" / "src.tar", (work / "tar-store" / "src.changes.csv").read_bytes()
    digest = md5(tar)
    assert changes(work)["t001.tif"]["change"] == "changed"
    for name, extra in [
        ("src.tar", ()),
        ("src.tar.md5", ()),
        ("src.changes.csv", ()),
        (None, ("--forcerun", "build_tarball")),
    ]:
        if name == "src.tar":
            tar.rename(tmp_path / "upload.tar")
        elif name:
            (work / "tar-store" / name).unlink()
        proc = run(tmp_path, work, *extra)
        assert "build_tarball" in proc.stdout + proc.stderr, name
        assert md5(tar) == digest and (work / "tar-store" / "src.changes.csv").read_bytes() == published, name


def test_a_rewrite_under_a_date_not_settled_at_the_download_is_prepared_again(tmp_path, http):
    """A server without ETags: t001 was downloaded within the minute of its Last-Modified, then its
    producer rewrote it under the same date, with the same length. A refresh prepares its chunk again
    (the date did not vouch for the bytes), the tarball is the one a run from scratch makes, and the
    refresh after it finds nothing (the rerun's download came once the date was settled)."""
    http.etag, http.date = "", False
    urls = serve_tiles(http, 4)
    modified = formatdate(time.time() - 3600, usegmt=True)
    downloaded = formatdate(time.time() - 3590, usegmt=True)  # its Date: 10 s after its Last-Modified
    http.modified = {f"/tiles/t{i:03d}.zip": modified for i in range(4)}
    http.faults = {"/tiles/t001.zip": Fault(1, headers={"Date": downloaded})}  # the others: settled
    make_entry(tmp_path / "catalog", "src", urls)
    work = tmp_path / "run"
    run(tmp_path, work)
    http.date, http.faults = True, {}
    new = zipped("t001.tif", geotiff_bytes(7))
    assert len(new) == len(http.files["/tiles/t001.zip"])
    http.files["/tiles/t001.zip"] = new
    proc = run(tmp_path, work, "refresh=True")
    assert prepared_chunks(proc) == [chunks_of(tmp_path, urls)["t001.zip"]] and "not settled" in proc.stderr
    assert {n: r["change"] for n, r in changes(work).items()} == {
        "t000.tif": "unchanged",
        "t001.tif": "changed",
        "t002.tif": "unchanged",
        "t003.tif": "unchanged",
    }
    scratch = tmp_path / "scratch"
    run(tmp_path, scratch)
    assert md5(scratch / "tar-store" / "src.tar") == md5(work / "tar-store" / "src.tar")
    assert prepared_chunks(run(tmp_path, work, "refresh=True")) == []


def test_a_refreshs_summary_names_no_secret_of_a_urls_query(tmp_path, http):
    """wget's name keeps a URL's query: the summary a refresh prints named a changed file with its token."""
    http.files["/tiles/dem.tif"] = geotiff_bytes(3)
    make_entry(tmp_path / "catalog", "src", [http.url("tiles/dem.tif") + "?token=S3CRETTOK"])
    work = tmp_path / "run"
    run(tmp_path, work)
    http.files["/tiles/dem.tif"] = geotiff_bytes(7)
    proc = run(tmp_path, work, "refresh=True", "-n")
    ours = [line for line in proc.stderr.splitlines() if line.startswith(("tilewise", "  dem.tif"))]
    assert any("1 changed" in line for line in ours) and any("dem.tif?token=***" in line for line in ours), ours
    assert not [line for line in ours if "S3CRETTOK" in line]  # Snakemake's own "Params have changed" names it
