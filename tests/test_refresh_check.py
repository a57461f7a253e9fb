"""The refresh's comparison and check against a real HTTP server of each kind (no Snakemake)."""

import dataclasses
import os
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest

from tilewise.shared.download import RemoteState, fetch, make_pool
from tilewise.sources import changes_csv, ledger, refresh, remote_state
from tilewise.sources.catalog import FileEntry

from support.config import download_settings
from support.httpserver import Fault

FAST = download_settings(attempts=2, backoff_seconds=0.01, max_backoff_seconds=0.01, read_timeout_seconds=5)
TOUCHED = "Tue, 01 Dec 2026 00:00:00 GMT"


def record(**remote):
    return {"url": "u", "file": "f", "etag": None, "last_modified": None, "content_length": None} | remote


@pytest.mark.parametrize(
    "before, now, result, by_length",
    [
        (record(etag='"a"'), RemoteState("u", "u", '"a"', "x", 5), "unchanged", False),
        (record(etag='"a"', last_modified="x"), RemoteState("u", "u", '"a"', TOUCHED), "unchanged", False),
        (record(etag='"a"'), RemoteState("u", "u", '"b"'), "changed", False),
        (record(etag='"a"'), RemoteState("u", "u", 'W/"a"'), "unchanged", False),  # weakened on the way
        (record(etag='W/"a"'), RemoteState("u", "u", 'W/"b"'), "changed", False),
        (record(etag='"a"', last_modified="x"), RemoteState("u", "u", None, "x"), "unchanged", False),
        (record(etag='"a"', last_modified="x"), RemoteState("u", "u", None, TOUCHED), "changed", False),
        (record(content_length=5), RemoteState("u", "u", content_length=5), "unchanged", True),
        (record(content_length=5), RemoteState("u", "u", content_length=6), "changed", True),
        (record(size=5), RemoteState("u", "u", content_length=6), "changed", True),  # a body without a length
        (record(content_length=5), RemoteState("u", "u"), "unknown", True),
        # a different length is always a change, whatever the validators say
        (record(etag='"a"', content_length=5), RemoteState("u", "u", '"a"', content_length=6), "changed", False),
        (record(etag='W/"a"', size=5), RemoteState("u", "u", 'W/"a"', content_length=6), "changed", False),
        (record(last_modified="x", content_length=5), RemoteState("u", "u", None, "x", 6), "changed", False),
        (record(etag='"a"', content_length=5), RemoteState("u", "u", '"a"', content_length=5), "unchanged", False),
        # a weak ETag vouches for the bytes only with an equal Last-Modified (when both give one)
        (record(etag='W/"a"', last_modified="x"), RemoteState("u", "u", 'W/"a"', TOUCHED), "changed", False),
        (record(etag='"a"', last_modified="x"), RemoteState("u", "u", 'W/"a"', TOUCHED), "changed", False),
        (record(etag='W/"a"', last_modified="x"), RemoteState("u", "u", 'W/"a"', "x"), "unchanged", False),
        (record(etag='W/"a"'), RemoteState("u", "u", 'W/"a"', TOUCHED), "unchanged", False),
    ],
)
def test_compare_uses_the_strongest_validator_both_answers_carry(before, now, result, by_length):
    assert refresh.compare(before, now)[0::2] == (result, by_length)


def prepared(tmp_path, http, names, chunk="0000", size=1000):
    """Serve `names` (`size` bytes and more), download them as a chunk job would and write the chunk's ledger."""
    entries, records = [], []
    pool = make_pool(FAST)
    for i, name in enumerate(names):
        http.files[f"/{name}"] = bytes([i]) * (size + i)
        e = FileEntry(None, http.url(name), name, name)
        state = fetch(e.url, tmp_path / "dl" / name, None, FAST, pool)
        entries.append(e)
        records.append({"url": e.url, "file": name, "status": "ok", "remote": dataclasses.asdict(state), "outputs": []})
    path = tmp_path / "chunks" / f"{chunk}.json"
    ledger.write(path, ledger.Ledger("s", chunk, {}, records))
    return {chunk: entries}, {chunk: path}, {chunk: tmp_path / "remote" / f"{chunk}.json"}


def check(chunks, ledgers, remotes, excluded=lambda name: False, folder=None):
    found = refresh.check(chunks, ledgers, remotes, excluded, FAST, 4, folder or ledgers["0000"].parent)
    return found, {f.file: f.result for f in found.findings}


def results(chunks, ledgers, remotes):
    return check(chunks, ledgers, remotes)[1]


@pytest.mark.parametrize("etag", ["strong", "weak", ""])
def test_new_bytes_are_found_and_a_touch_only_where_no_strong_etag_vouches_for_the_bytes(tmp_path, http, etag):
    http.etag = etag
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin", "c.bin"])
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged", "b.bin": "unchanged", "c.bin": "unchanged"}
    http.files["/a.bin"] = b"new bytes"
    http.modified["/b.bin"] = TOUCHED
    found = results(chunks, ledgers, remotes)
    assert found["a.bin"] == "changed" and found["c.bin"] == "unchanged"
    assert found["b.bin"] == ("unchanged" if etag == "strong" else "changed")  # a weak ETag does not vouch alone


@pytest.mark.parametrize("etag", ["strong", "weak", ""])
def test_a_new_length_is_a_change_whatever_the_validators_say(tmp_path, http, etag):
    """A producer (or a careless server) replaces a file's bytes and keeps its ETag and Last-Modified:
    the length differs, and a download would get other bytes, so its chunk runs again."""
    http.etag = etag
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    kept = {path: http.validators(data, path=path) for path, data in http.files.items()}
    http.validators = lambda data, coding="", path="": kept[path]  # the same ETag and Last-Modified for ever
    http.files["/a.bin"] = b"other bytes of another length"
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed", "b.bin": "unchanged"} and found.changed_chunks() == ["0000"]


def test_a_server_without_validators_is_compared_by_length_and_reported(tmp_path, http):
    http.etag, http.last_modified = "", False
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    http.files["/a.bin"] = b"shorter"
    http.files["/b.bin"] = bytes([9]) * 1001  # same length, new bytes: cannot be told (documented)
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed", "b.bin": "unchanged"}
    assert all(f.no_validator for f in found.findings)
    assert any("no validator" in line for line in refresh.summary("s", found))
    # no length from either request (a GET that ignores the range and sends chunks, a HEAD without
    # Content-Length): cannot tell, kept, said so
    http.head_length = False
    for name in ("a.bin", "b.bin"):
        http.faults[f"/{name}"] = Fault(times=99, method="GET", ignore_range=True, chunked=True)
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unknown", "b.bin": "unknown"} and found.changed_chunks() == []
    assert any("cannot tell" in line for line in refresh.summary("s", found))


@pytest.mark.parametrize("head", ["no length", "gzip length", "refused"])
def test_a_server_without_validators_is_asked_for_the_length_a_download_gets(tmp_path, http, head):
    """No ETag, no Last-Modified, and a HEAD with no usable length (none, or a gzip-coded one): the
    one-byte Range GET's Content-Range total tells the length, so a new length is found."""
    http.etag, http.last_modified = "", False
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    if head == "no length":
        http.head_length = False
    elif head == "gzip length":
        http.head_headers, http.head_content_length = {"Content-Encoding": "gzip"}, 17
    else:
        for name in ("a.bin", "b.bin"):
            http.faults[f"/{name}"] = Fault(times=99, method="HEAD", status=405)
    http.files["/a.bin"] = b"another length"
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed", "b.bin": "unchanged"} and found.changed_chunks() == ["0000"]
    assert ("/a.bin", "bytes=0-0", 206) in http.log


def test_a_server_that_refuses_head_is_asked_with_a_one_byte_range(tmp_path, http):
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    for name in ("a.bin", "b.bin"):
        http.faults[f"/{name}"] = Fault(times=99, method="HEAD", status=405)
    http.files["/a.bin"] = b"new"
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed", "b.bin": "unchanged"}
    assert ("/b.bin", "bytes=0-0", 206) in http.log


@pytest.mark.parametrize("head_etag", ['"from-head"', None])  # another ETag; none at all (Last-Modified decides)
def test_a_head_that_differs_from_the_get_does_not_decide(tmp_path, http, head_etag):
    """A server (or CDN) whose HEAD answers from elsewhere than its GET: what a download would get
    (a one-byte Range GET) decides, both ways: nothing runs until the file a download gets changes,
    and a change a download gets is found while the HEAD still gives the old version."""
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    old = http.validators(http.files["/a.bin"], path="/a.bin")
    http.head_headers = {"ETag": head_etag, "Last-Modified": TOUCHED}
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unchanged"} and found.entries == {"0000": {}}
    assert ("/a.bin", "bytes=0-0", 206) in http.log
    http.files["/a.bin"] = b"the next version"
    assert check(chunks, ledgers, remotes)[1] == {"a.bin": "changed"}
    http.head_headers, http.head_content_length = old, 1000  # a stale HEAD: the old version's answer
    assert check(chunks, ledgers, remotes)[1] == {"a.bin": "changed"}


@pytest.mark.parametrize("answer", ["405", "200 whole"])
def test_a_server_that_refuses_ranges_is_asked_with_head(tmp_path, http, answer):
    """A GET range refused (405) falls back to HEAD; a server that ignores Range (a 200 with the whole
    body) gives its headers, and its body is closed unread."""
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"], size=2 * 10**6)
    http.rate_bytes_per_s = 10**5  # paced: a body read whole would hold the check 20 s per file
    fault = (
        Fault(times=99, method="GET", status=405)
        if answer == "405"
        else Fault(times=99, method="GET", ignore_range=True)
    )
    for name in ("a.bin", "b.bin"):
        http.faults[f"/{name}"] = fault
    http.files["/a.bin"] = b"new"
    sent = http.written_bytes  # the files' first download
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed", "b.bin": "unchanged"}
    assert http.written_bytes - sent < 2 * 10**6  # the answers came before one whole body was sent


def rerun(tmp_path, http, ledgers, name="a.bin"):
    """The chunk ran again: its ledger records what its download got (as prepare would)."""
    state = fetch(http.url(name), tmp_path / "dl-again" / name, None, FAST, make_pool(FAST))
    rec = {"url": http.url(name), "file": name, "status": "ok", "remote": dataclasses.asdict(state)}
    ledger.write(ledgers["0000"], ledger.Ledger("s", "0000", {}, [rec]))


def test_a_rerun_that_still_got_the_old_version_runs_again_at_the_next_refresh(tmp_path, http):
    """HEAD and GET give version 2, but the chunk's own download then gets version 1 (a stale cache
    or an upload under way): the next refresh finds version 2 again and its entry differs, so the
    chunk runs again, until its ledger holds what the server gives."""
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    v1, v2 = http.files["/a.bin"], b"version 2"
    http.files["/a.bin"] = v2
    first, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed"}
    remote_state.write(remotes["0000"], first.entries["0000"])
    http.files["/a.bin"] = v1  # what the chunk's download got
    rerun(tmp_path, http, ledgers)
    http.files["/a.bin"] = v2
    second, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed"} and second.entries != first.entries  # new params: it runs again
    remote_state.write(remotes["0000"], second.entries["0000"])
    rerun(tmp_path, http, ledgers)  # this time it got version 2
    third, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unchanged"} and third.entries == second.entries  # settled


def test_a_local_file_is_compared_by_its_bytes(tmp_path):
    """Same size, same time, other bytes (a copy that kept the producer's time): a refresh reads it."""
    folder = tmp_path / "entry"
    folder.mkdir()
    local = folder / "a.bin"
    local.write_bytes(b"version 1")
    e = FileEntry(None, "a.bin", "a.bin", "a.bin")  # a plain path, relative to the entry's folder
    state = fetch(e.url, tmp_path / "dl" / "a.bin", local, FAST, make_pool(FAST))
    rec = {"url": e.url, "file": "a.bin", "status": "ok", "remote": dataclasses.asdict(state)}
    ledgers, remotes = {"0000": tmp_path / "chunks" / "0000.json"}, {"0000": tmp_path / "remote" / "0000.json"}
    ledger.write(ledgers["0000"], ledger.Ledger("s", "0000", {}, [rec]))
    assert check({"0000": [e]}, ledgers, remotes, folder=folder)[1] == {"a.bin": "unchanged"}
    st = local.stat()
    local.write_bytes(b"version 2")
    os.utime(local, ns=(st.st_atime_ns, st.st_mtime_ns))
    found, by_file = check({"0000": [e]}, ledgers, remotes, folder=folder)
    assert by_file == {"a.bin": "changed"} and found.changed_chunks() == ["0000"]
    local.unlink()  # a deleted one left its chunk's inputs: Snakemake reruns the chunk, nothing to ask
    assert check({"0000": [e]}, ledgers, remotes, folder=folder)[1] == {}


def test_a_file_that_changes_and_changes_back_is_found_each_time(tmp_path, http):
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    original = http.files["/a.bin"]
    http.files["/a.bin"] = b"version 2"
    first, _ = check(chunks, ledgers, remotes)
    remote_state.write(remotes["0000"], first.entries["0000"])
    rerun(tmp_path, http, ledgers)  # its ledger now records version 2
    assert check(chunks, ledgers, remotes)[0].entries == first.entries  # nothing new: same params
    http.files["/a.bin"] = original  # back to version 1
    back, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed"} and back.entries != first.entries


def test_gone_unchecked_failed_and_excluded_files(tmp_path, http):
    chunks, ledgers, remotes = prepared(tmp_path, http, ["gone.bin", "refused.bin", "ok.bin", "dropped.bin"])
    del http.files["/gone.bin"]
    http.faults["/refused.bin"] = [Fault(times=99, method="HEAD", status=403), Fault(times=99, status=403)]
    led = ledger.read(ledgers["0000"])
    # ok.bin's download failed last time: its record has no remote state
    failed = {"status": "failed", "step": "download", "error": "HTTP 503"}
    files = [r if r["file"] != "ok.bin" else {"url": r["url"], "file": r["file"], **failed} for r in led.files]
    ledger.write(ledgers["0000"], dataclasses.replace(led, files=files))
    found, by_file = check(chunks, ledgers, remotes, excluded=lambda name: name == "dropped.bin")
    assert by_file == {"gone.bin": "gone", "refused.bin": "unchecked", "ok.bin": "changed"}
    assert not http.requests_for("dropped.bin")[1:]  # fetched once to set up, never asked again
    assert found.entries["0000"]["gone.bin"] == ["gone", ""]


@pytest.mark.parametrize("status", [403, 404, 405])
def test_a_head_refused_is_asked_as_a_download_asks(tmp_path, http, status):
    """Pre-signed GET URLs and some firewalls refuse HEAD (403, even 404) to a file a GET gets: the
    one-byte Range GET answers, so a later change of the file is found like any other."""
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    http.faults["/a.bin"] = Fault(times=99, method="HEAD", status=status)
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged"}
    http.files["/a.bin"] = b"the producer's next version"
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed"}


@pytest.mark.parametrize(
    "status, etag, length",
    [
        (304, "strong", None),
        (304, "weak", None),
        (304, "", None),  # Last-Modified alone
        (304, "strong", "0"),
        (204, "strong", None),
        (300, "", None),
    ],
)
def test_an_answer_about_no_version_is_not_taken_for_one(tmp_path, http, status, etag, length):
    """A one-byte Range GET (no If-None-Match, no If-Modified-Since) answered 304 Not Modified with
    the old version's validators (a cache revalidating on its own), or 204, or 300: a download fails
    on such an answer, so its headers are not the version a download gets. The HEAD answers instead;
    when it answers so too, the file is unchecked (reported, asked again), never unchanged. Before,
    the old ETag or Last-Modified of the 304 made a new version of the same length 'unchanged'."""
    http.etag = etag
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    old = http.validators(http.files["/a.bin"], path="/a.bin") | {"Content-Length": length}
    wrong_get = Fault(times=99, method="GET", status=status, headers=old)
    http.faults["/a.bin"] = wrong_get
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged"}  # the HEAD tells: no spurious rerun
    http.files["/a.bin"] = bytes([7]) * len(http.files["/a.bin"])  # a new version of the same length
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed"}
    http.faults["/a.bin"] = [Fault(times=99, method="HEAD", status=status, headers=old), wrong_get]
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unchecked"} and found.changed_chunks() == []
    assert any(f"HTTP {status}" in line for line in refresh.summary("s", found))


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_a_file_no_request_can_ask_keeps_its_chunk_and_is_asked_again(tmp_path, http, outage):
    """Unchecked (a 503 or a refused connection after the retries): nothing reruns, so a transient
    outage never drops a good output; the refresh says so loudly, and the next one asks again."""
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    remote_state.write(remotes["0000"], {"b.bin": ["etag", '"earlier"', "ledger 1"]})  # an earlier refresh's
    if outage == "503":
        http.faults["/a.bin"] = [Fault(times=99, method="HEAD", status=503), Fault(times=99, status=503)]
        http.files["/b.bin"] = b"changed meanwhile, asked when the server is back"
        found, by_file = check(chunks, ledgers, remotes)
        assert by_file == {"a.bin": "unchecked", "b.bin": "changed"} and found.changed_chunks() == ["0000"]
        assert "a.bin" not in found.entries["0000"]
    else:
        dead = {e.name: dataclasses.replace(e, url=f"http://127.0.0.1:1/{e.name}") for e in chunks["0000"]}
        led = ledger.read(ledgers["0000"])
        files = [{**r, "url": dead[r["file"]].url} for r in led.files]
        ledger.write(ledgers["0000"], dataclasses.replace(led, files=files))
        chunks = {"0000": list(dead.values())}
        found, by_file = check(chunks, ledgers, remotes)
        assert by_file == {"a.bin": "unchecked", "b.bin": "unchecked"} and found.changed_chunks() == []
        assert found.entries == {"0000": {"b.bin": ["etag", '"earlier"', "ledger 1"]}}  # what it had: no rerun
    lines = refresh.summary("s", found)
    assert any("WARNING" in line and "could not be asked" in line for line in lines)
    assert any("a.bin" in line and "asked again" in line for line in lines)
    if outage == "503":
        http.faults.clear()  # the server is back: the file is asked again, and is the same
        assert check(chunks, ledgers, remotes)[1]["a.bin"] == "unchanged"


def test_a_damaged_remote_state_reruns_its_chunk_once(tmp_path, http):
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"])
    remotes["0000"].parent.mkdir(parents=True)
    remotes["0000"].write_text('{"version": 1, "fil')
    assert remote_state.read(remotes["0000"]) == {"*": ["unreadable", str(remotes["0000"])]}
    found, _ = check(chunks, ledgers, remotes)
    assert found.entries["0000"] == {}  # differs from what the chunk was given: it runs again, then settles
    assert remote_state.write(remotes["0000"], {}) and not remote_state.write(remotes["0000"], {})


def test_changes_compare_by_md5_and_keep_both_bounds_rows(tmp_path):
    row = {"left": 1.5, "bottom": 2.0, "right": 3.0, "top": 4.0, "width": 10, "height": 10}
    before = {"same.tif": {"md5": "1", **row}, "edit.tif": {"md5": "2", **row}, "gone.tif": {"md5": "3", **row}}
    after = {"same.tif": {"md5": "1", **row}, "edit.tif": {"md5": "9", **row, "left": 0.5}}
    after["new.tif"] = {"md5": "4", **row}
    rows = changes_csv.compare(before, after)
    assert [(r["filename"], r["change"]) for r in rows] == [
        ("edit.tif", "changed"),
        ("gone.tif", "removed"),
        ("new.tif", "added"),
        ("same.tif", "unchanged"),
    ]
    assert rows[0]["left"] == "0.5" and rows[0]["left_before"] == "1.5"
    out, state = tmp_path / "s.changes.csv", tmp_path / "work" / "published.json"
    changes_csv.write_text(changes_csv.text(rows), out)
    changes_csv.save_state(state, "d" * 32, out.read_bytes().decode())
    assert changes_csv.load_state(state) == ("d" * 32, out.read_bytes().decode())
    assert set(changes_csv.published(out)) == {"edit.tif", "new.tif", "same.tif"}
    assert changes_csv.published(out)["edit.tif"]["md5"] == "9" and changes_csv.published(tmp_path / "none") == {}
    assert [dict(r) for r in changes_csv.read(out)] == rows  # as report_csv writes and reads a CSV
    assert changes_csv.load_state(tmp_path / "none") == (None, "")


@pytest.mark.parametrize("content_range", [None, ""], ids=["with Content-Range", "without Content-Range"])
@pytest.mark.parametrize("etag", ["strong", ""])
def test_a_one_byte_range_answered_200_is_not_taken_for_the_file_length(tmp_path, http, content_range, etag):
    """A server that sends the range asked with "200 OK" (one byte, the Content-Range or none): an
    unchanged file is unchanged, a new length is found."""
    http.etag = etag
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"])
    for name in ("a.bin", "b.bin"):
        http.faults[f"/{name}"] = Fault(times=99, range_as_200=True, content_range=content_range)
    http.files["/a.bin"] = b"another length"
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed", "b.bin": "unchanged"}


SEEN = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    "now, result",
    [
        ("Sunday, 06-Nov-94 08:49:37 GMT", "unchanged"),  # RFC 850
        ("Sun Nov  6 08:49:37 1994", "unchanged"),  # asctime (GMT)
        ("Sun, 06 Nov 1994 08:49:37 +0000", "unchanged"),
        ("Sun, 06 Nov 1994 03:49:37 -0500", "unchanged"),  # the same instant in another zone
        ("Sun, 06 Nov 1994 08:49:37 UTC", "unchanged"),
        ("Sunday, 06-Nov-94 08:49:38 GMT", "changed"),  # another second, whatever the format
        ("Sun Nov  6 09:49:37 1994", "changed"),
        ("not a date", "changed"),
    ],
)
@pytest.mark.parametrize("etag", [None, 'W/"a"'])
def test_a_last_modified_is_compared_as_the_instant_it_names(now, result, etag):
    """HTTP dates have three formats (RFC 9110 5.6.7) and a mirror or a CDN may write another than
    the download saw: the same instant is the same version; before, every refresh reran its chunk."""
    assert refresh.compare(record(etag=etag, last_modified=SEEN), RemoteState("u", "u", etag, now))[0] == result


def hours_ago(hours: float) -> str:
    return formatdate(time.time() - 3600 * hours, usegmt=True)


@pytest.mark.parametrize("etag", ["", 'W/"5f-1388"'], ids=["no ETag", "weak ETag of time and size"])
@pytest.mark.parametrize("after", [0, 30, 59], ids=lambda s: f"downloaded {s} s after")
def test_a_last_modified_not_settled_at_the_download_does_not_vouch_for_its_bytes(tmp_path, http, etag, after):
    """A file downloaded within the minute of its Last-Modified (RFC 9110 8.8.2.2: rewritten in that
    second, it keeps the date) and replaced by bytes of the same length under the same date: a
    download now gets the new bytes, so its chunk runs again. A rerun's download, made once the date
    is settled, vouches again: the refresh after it finds the file unchanged."""
    modified = hours_ago(1)
    at = formatdate(parsedate_to_datetime(modified).timestamp() + after, usegmt=True)
    http.etag, http.date = "", False  # the download's answer: the Date it came at
    http.modified = {"/a.bin": modified, "/b.bin": modified}
    http.faults = {f"/{n}": Fault(times=1, headers={"Date": at, "ETag": etag or None}) for n in ("a.bin", "b.bin")}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"], size=5000)
    http.date = True
    http.faults = {f"/{n}": Fault(times=99, headers={"ETag": etag or None}) for n in ("a.bin", "b.bin")}
    http.files["/a.bin"] = bytes([7]) * 5000  # same length, same Last-Modified, new bytes
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file["a.bin"] == "changed" and found.changed_chunks() == ["0000"]
    # the rerun downloads both now, an hour after their date: settled, it vouches
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"], size=5000)
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged", "b.bin": "unchanged"}


@pytest.mark.parametrize("etag", [None, 'W/"5f-1388"'], ids=["no ETag", "a weak ETag that stays"])
@pytest.mark.parametrize(
    "modified", ["Fri, 01 Jan 2100 00:00:00 GMT", "in an hour", "now"], ids=["constant 2100", "in an hour", "now"]
)
def test_a_last_modified_still_not_settled_is_no_validator(tmp_path, http, modified, etag):
    """A Last-Modified in the future (a producer's clock ahead, a constant date) or of this very
    minute vouches for nothing now, and a download now would not settle it: the file is compared by
    its length (and a weak tag, which does not vouch alone), as from a server without validators,
    and reported so (never silently unchanged)."""
    modified = {"in an hour": hours_ago(-1), "now": hours_ago(0)}.get(modified, modified)
    http.etag, http.modified = "", {"/a.bin": modified, "/b.bin": modified}
    http.faults = {f"/{n}": Fault(times=99, headers={"ETag": etag}) for n in ("a.bin", "b.bin")}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin"], size=5000)
    http.files["/a.bin"] = bytes([7]) * 5002  # another length
    http.files["/b.bin"] = bytes([7]) * 5001  # the same length: cannot be told (reported)
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed", "b.bin": "unchanged"}
    assert [f.no_validator for f in found.findings if f.file == "b.bin"] == [True]
    assert any("b.bin" in line and "vouches for nothing yet" in line for line in refresh.summary("s", found))


@pytest.mark.parametrize("date", [None, "0", "yesterday"], ids=["no Date", "Date 0", "Date not a date"])
def test_a_settled_last_modified_vouches_without_the_download_date(tmp_path, http, date):
    """A server without a clock (no Date, or one that is not a date), and a ledger written before
    downloads kept their Date: the ledger's own time stands for the download's, so a settled date
    still says unchanged (no rerun at every refresh)."""
    http.etag, http.date = "", False
    http.faults["/a.bin"] = Fault(times=99, headers={"Date": date})
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"], size=5000)
    assert ledger.read(ledgers["0000"]).files[0]["remote"]["date"] == date
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unchanged"} and not found.findings[0].no_validator
    old = ledger.read(ledgers["0000"])
    for rec in old.files:
        del rec["remote"]["date"]
    ledger.write(ledgers["0000"], old)
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "unchanged"} and not found.findings[0].no_validator


@pytest.mark.parametrize("etag", ["strong", "weak", ""])
@pytest.mark.parametrize("answer", ["206", "200 whole"])
def test_a_range_answer_without_validators_is_told_by_the_head(tmp_path, http, etag, answer):
    """A server (a gateway, a CDN's range cache) whose answers to a Range carry neither ETag nor
    Last-Modified while its downloads and HEAD do: the HEAD's validators tell a new version of the
    same length (before, the file was compared by its length alone and kept, as if the server had no
    validator); the GET's length still decides a new length, and an unchanged file stays unchanged."""
    http.etag = etag
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin", "b.bin", "c.bin"], size=5000)
    bare = Fault(times=99, ignore_range=answer != "206", headers={"ETag": None, "Last-Modified": None})
    http.faults = {f"/{n}": bare for n in ("a.bin", "b.bin", "c.bin")}
    http.files["/a.bin"] = bytes([7]) * 5000  # same length, new bytes
    http.files["/b.bin"] = bytes([7]) * 4000  # another length
    found, by_file = check(chunks, ledgers, remotes)
    assert by_file == {"a.bin": "changed", "b.bin": "changed", "c.bin": "unchanged"}
    assert not any(f.no_validator for f in found.findings)


@pytest.mark.parametrize("suffix", ["-gzip", "--gzip", "-br", ";gzip", "-deflate", "-zstd"])
@pytest.mark.parametrize("weak", ["", "W/"])
def test_an_etag_that_names_a_content_coding_is_the_same_tag(suffix, weak):
    """Apache (DeflateAlterETag), Jetty and others append the coding of a compressed answer to its
    tag ("abc-gzip", "abc--gzip"): the same file's tag, coded or not. A server that compresses its
    whole answers (the download's) but not its answers to a Range (the refresh's) reran its chunk
    at every refresh. Another tag is still another version."""
    rec = record(etag=f'{weak}"abc{suffix}"')
    assert refresh.compare(rec, RemoteState("u", "u", '"abc"'))[0] == "unchanged"
    assert refresh.compare(record(etag='"abc"'), RemoteState("u", "u", f'{weak}"abc{suffix}"'))[0] == "unchanged"
    assert refresh.compare(rec, RemoteState("u", "u", '"abd"'))[0] == "changed"
    assert refresh.compare(rec, RemoteState("u", "u", f'"abd{suffix}"'))[0] == "changed"


def test_a_download_coded_by_the_server_settles_at_the_next_refresh(tmp_path, http):
    """The download's whole GET comes gzip-coded (whatever Accept-Encoding said) with the coded
    tag; the refresh's Range answer is not coded: unchanged, and new bytes are still found."""
    http.faults = {"/a.bin": Fault(times=1, gzip=True)}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"], size=5000)
    assert ledger.read(ledgers["0000"]).files[0]["remote"]["etag"].endswith('-gzip"')
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged"}
    http.files["/a.bin"] = bytes([7]) * 5000
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed"}


def nginx_tag(last_modified: str, length: int, weak: str = "") -> str:
    """nginx's ETag: its Last-Modified (seconds) and its length in hex, "5f5a1c2b-1388"."""
    return f'{weak}"{int(parsedate_to_datetime(last_modified).timestamp()):x}-{length:x}"'


@pytest.mark.parametrize("weak", ["", "W/"])
@pytest.mark.parametrize("after", [0, 59])
def test_a_strong_etag_made_of_the_date_and_the_length_vouches_no_more_than_they_do(tmp_path, http, weak, after):
    """nginx's ETag is its Last-Modified and its length in hex: strong by its syntax, but a rewrite
    of the same length in the second of the download keeps it. It vouches only as its date does
    (settled at the download): the chunk runs again once the date is settled, then settles."""
    modified = hours_ago(1)
    at = formatdate(parsedate_to_datetime(modified).timestamp() + after, usegmt=True)
    tag = nginx_tag(modified, 5000, weak)
    http.etag, http.date, http.modified = "", False, {"/a.bin": modified}
    http.faults = {"/a.bin": Fault(times=1, headers={"Date": at, "ETag": tag})}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"], size=5000)
    http.date = True
    http.faults = {"/a.bin": Fault(times=99, headers={"ETag": tag})}
    http.files["/a.bin"] = bytes([7]) * 5000  # same length, same date, so the same tag
    assert results(chunks, ledgers, remotes) == {"a.bin": "changed"}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"], size=5000)  # the rerun, an hour on
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged"}


@pytest.mark.parametrize(
    "tag",
    ['"5f5a1c2b-1388"', '"1388-5f5a1c2b"', '"abc"', '"5f5a1c2b-1389"'],
    ids=["of another date", "Apache", "opaque", "other length"],
)
def test_a_strong_etag_not_made_of_the_date_and_the_length_still_vouches(tmp_path, http, tag):
    """Only a tag that is exactly this answer's date and length in hex is judged by its date: any
    other strong tag vouches alone, downloaded in the second of its date or not."""
    modified = hours_ago(1)
    http.etag, http.date, http.modified = "", False, {"/a.bin": modified}
    http.faults = {"/a.bin": Fault(times=1, headers={"Date": modified, "ETag": tag})}
    chunks, ledgers, remotes = prepared(tmp_path, http, ["a.bin"], size=5000)
    http.date, http.faults = True, {"/a.bin": Fault(times=99, headers={"ETag": tag})}
    assert results(chunks, ledgers, remotes) == {"a.bin": "unchanged"}
