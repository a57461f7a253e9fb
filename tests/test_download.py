import dataclasses
import gzip
import hashlib
import os
import time
from email.utils import formatdate
from urllib.parse import unquote

import pytest

from tilewise.shared.download import RemoteState, fetch, head, make_pool
from tilewise.shared.errors import FileFailure
from tilewise.shared.http_validators import instant

from support.config import download_settings
from support.httpserver import Fault

FAST = download_settings(
    attempts=4, backoff_seconds=0.05, max_backoff_seconds=0.5, connect_timeout_seconds=2, read_timeout_seconds=2
)
BODY = os.urandom(300_000)
NEW = os.urandom(280_000)  # the next version of the file
EDITED = os.urandom(1000) + BODY[1000:]  # a new version a resume at byte ~100,000 can only see by its validators
TEXT = b"".join(b"%d %d %.2f\n" % (x, y, (x * y) % 997 / 7) for x in range(60) for y in range(200))  # an XYZ grid


def drop() -> Fault:
    return Fault(times=1, drop_after=100_000)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def get(http, tmp_path, settings=FAST, path="f.bin") -> tuple[bytes, RemoteState]:
    dest = tmp_path / "out" / path.rpartition("/")[2]
    state = fetch(http.url(path), dest, None, settings, make_pool(settings))
    assert not list(dest.parent.glob("*.part"))
    return dest.read_bytes(), state


def statuses(http, path="f.bin") -> list[int]:
    return [r[2] for r in http.requests_for(path)]


def assert_fails(http, tmp_path, match, settings=FAST, path="f.bin") -> FileFailure:
    with pytest.raises(FileFailure, match=match) as err:
        get(http, tmp_path, settings, path)
    assert err.value.step == "download" and str(err.value).startswith(http.url(path))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # no file, no .part
    return err.value


# --- plain downloads, retries, time budget -------------------------------------------------------


def test_plain_download_returns_its_remote_state(http, tmp_path):
    http.files["/f.bin"] = BODY
    data, state = get(http, tmp_path)
    assert data == BODY
    v = http.validators(BODY)
    url = http.url("f.bin")
    assert state == RemoteState(url, url, v["ETag"], v["Last-Modified"], len(BODY), len(BODY), md5(BODY), state.date)
    assert abs(instant(state.date) - time.time()) < 5  # the answer's Date: was its Last-Modified settled?
    assert http.headers_for("f.bin")[0]["Accept-Encoding"] == "identity"


def test_dropped_connection_resumes_with_range_and_if_range(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, drop_after=100_000)
    data, state = get(http, tmp_path)
    assert data == BODY and state.md5 == md5(BODY) and state.content_length == len(BODY)
    assert http.requests_for("f.bin") == [("/f.bin", None, 200), ("/f.bin", f"bytes={100_000 - 4096}-", 206)]
    assert http.headers_for("f.bin")[1]["If-Range"] == http.validators(BODY)["ETag"]


def test_a_content_length_the_body_does_not_reach_is_not_trusted(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, claim_extra=1000)
    assert get(http, tmp_path)[0] == BODY
    # the resume's Content-Range total (300,000) contradicts the first Content-Length: start over
    assert statuses(http) == [200, 206, 200]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retryable_status_then_success(http, tmp_path, status):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=2, status=status)
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [status, status, 200]


def test_retry_after_is_honoured_but_capped(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, status=503, retry_after="0.4")
    t0 = time.monotonic()
    get(http, tmp_path)
    assert time.monotonic() - t0 >= 0.38  # waited as told (a lower bound: a loaded machine cannot break it)


def test_404_fails_at_once(http, tmp_path):
    assert_fails(http, tmp_path, r"HTTP 404", path="missing.bin")
    assert len(http.requests_for("missing.bin")) == 1


def test_a_failure_after_a_partial_body_leaves_nothing(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, status=404)]
    assert_fails(http, tmp_path, r"HTTP 404")


def test_attempts_are_bounded(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, status=503)
    assert_fails(http, tmp_path, r"gave up after 4 attempts: HTTP 503")
    assert len(http.requests_for("f.bin")) == 4


def test_errors_state_the_bytes_read(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, drop_after=50_000)
    s = dataclasses.replace(FAST, attempts=3)
    # each resume re-reads 4,096 stored bytes: 50,000 → 95,904 → 141,808
    assert_fails(http, tmp_path, r"gave up after 3 attempts: connection broken: got 50,000 of 208,192 bytes "
                 r"from byte 91,808", s)  # fmt: skip


def test_connection_refused_is_a_recorded_failure(tmp_path):
    s = download_settings(attempts=2, backoff_seconds=0.01, connect_timeout_seconds=1)
    with pytest.raises(FileFailure, match="connection error"):
        fetch("http://127.0.0.1:9/x.tif", tmp_path / "x.tif", None, s, make_pool(s))


def test_local_copy(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(BODY)
    state = fetch(str(src), tmp_path / "o" / "a.bin", src, FAST, None)
    assert (tmp_path / "o" / "a.bin").read_bytes() == BODY
    assert (state.size, state.content_length, state.md5) == (len(BODY), len(BODY), md5(BODY))
    with pytest.raises(FileFailure, match="no such file"):
        fetch("x", tmp_path / "o" / "b.bin", tmp_path / "nope.bin", FAST, None)


def test_a_stalled_body_times_out_and_is_retried(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, stall=3.0)  # longer than the 2 s read timeout
    assert get(http, tmp_path)[0] == BODY
    assert len(http.requests_for("f.bin")) == 2


def test_a_body_that_always_stalls_is_a_bounded_failure(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, stall=3.0)
    s = download_settings(attempts=3, backoff_seconds=0.05, read_timeout_seconds=0.5, max_seconds_per_file=30)
    assert_fails(http, tmp_path, r"gave up after 3 attempts: connection broken: got 1,000 of [\d,]+ bytes", s)


def test_redirects_are_followed_and_the_final_url_kept(http, tmp_path):
    http.files["/real.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, redirect_to=http.url("real.bin"))
    data, state = get(http, tmp_path)
    assert data == BODY and state.url == http.url("f.bin") and state.final_url == http.url("real.bin")


@pytest.mark.parametrize(
    ("name", "absolute"),
    [("Höhe.tif", False), ("Höhe.tif", True), ("高程 2024.tif", False), ("dem-🗻.tif", True), ("H%C3%B6he.tif", False)],
)
def test_a_redirect_to_a_raw_utf8_location_is_followed_as_sent(http, tmp_path, name, absolute):
    # the server writes the Location's UTF-8 bytes as they are (send_header encodes this text as Latin-1)
    http.files["/" + unquote(name)] = BODY
    location = ("" if not absolute else http.url("")[:-1]) + "/" + name
    http.faults["/f.bin"] = Fault(times=1, redirect_to=location.encode().decode("latin-1"))
    data, state = get(http, tmp_path)
    assert data == BODY and state.final_url == http.url(name)
    assert [r[2] for r in http.log] == [302, 200]


def test_time_budget_stops_retries(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, status=503, retry_after="60")
    s = download_settings(attempts=10, backoff_seconds=0.1, max_backoff_seconds=60, max_seconds_per_file=1)
    assert_fails(http, tmp_path, r"HTTP 503", s)
    assert len(http.requests_for("f.bin")) == 1  # the 60 s wait was not taken: no second request


@pytest.mark.parametrize(
    "framing, limit", [({}, 2), ({"chunked": True}, 1), ({"unframed": True}, 1)], ids=["length", "chunked", "unframed"]
)
def test_a_trickling_body_stops_at_max_seconds_per_file(http, tmp_path, framing, limit):
    http.files["/f.bin"] = BODY[:100]
    http.faults["/f.bin"] = Fault(times=100, trickle=1.0, **framing)  # one byte a second
    s = dataclasses.replace(FAST, max_seconds_per_file=limit)
    t0 = time.monotonic()
    reached = rf"gave up after 1 attempt: max_seconds_per_file \({limit} s\) reached: got [1-3] (of 100 )?bytes"
    assert_fails(http, tmp_path, reached, s)
    assert time.monotonic() - t0 >= limit  # cut at the limit; "got 1-3 bytes" says not after the body's 100 s


# --- never splice two versions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "etag, last_modified, sent",
    [("strong", True, "ETag"), ("", True, "Last-Modified"), ("weak", True, "Last-Modified"), ("weak", False, None)],
)
@pytest.mark.parametrize("changed", [False, True])
def test_a_resume_sends_if_range_and_a_changed_file_comes_whole(http, tmp_path, etag, last_modified, sent, changed):
    http.etag, http.last_modified = etag, last_modified
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, replace_with=NEW if changed else None)]
    data, state = get(http, tmp_path)
    current = NEW if changed else BODY
    assert data == current and state.md5 == md5(current)
    assert state.etag == http.validators(current).get("ETag")
    resumed = http.headers_for("f.bin")[1]
    if sent is None:  # no validator If-Range may carry: never resumed
        assert "Range" not in resumed and statuses(http) == [200, 200]
    else:
        assert resumed["If-Range"] == http.validators(BODY)[sent]
        assert statuses(http) == [200, 200 if changed else 206]


@pytest.mark.parametrize("etag", ["strong", ""])
def test_a_changed_file_is_detected_when_the_server_ignores_if_range(http, tmp_path, caplog, etag):
    http.etag, http.if_range = etag, False
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, replace_with=EDITED)]  # spliced, it would be BODY
    data, state = get(http, tmp_path)
    assert data == EDITED and state.md5 == md5(EDITED)
    assert statuses(http) == [200, 206, 200]  # the 206 of the new version is refused
    assert "the file changed (" in caplog.text
    assert "Range" not in http.headers_for("f.bin")[2]


def test_a_file_that_shrank_below_the_stored_bytes_restarts(http, tmp_path):
    http.if_range = False
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, drop_after=200_000), Fault(times=1, replace_with=NEW[:50_000])]
    assert get(http, tmp_path)[0] == NEW[:50_000]
    assert statuses(http) == [200, 416, 200]


@pytest.mark.parametrize(
    "content_range",
    ["bytes 0-{end}/{total}", "bytes {start}-{end}/999999", "bytes {start}-250000/{total}", "", "bytes */{total}"],
)
def test_a_206_with_another_range_restarts_from_byte_0(http, tmp_path, caplog, content_range):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, content_range=content_range)]
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 206, 200] and "Range" not in http.headers_for("f.bin")[2]
    assert f"asked for bytes={100_000 - 4096}- of 300000 bytes, got Content-Range" in caplog.text


SHORT_206 = "body ended off its framing: got 203,096 of 204,096 bytes from byte 95,904"  # resumed at 100,000 - 4,096


@pytest.mark.parametrize(
    "wrong, reason",
    [
        ({"trim": 1000}, SHORT_206),  # its Content-Length is short of its Content-Range
        ({"trim": 1000, "chunked": True}, SHORT_206),  # only the end of the body tells
        ({"body_from": 0}, "the 206 body differs from the stored bytes"),  # restarts at byte 0 under a right range
    ],
    ids=["short-content-length", "short-chunked", "body-from-0"],
)
def test_a_206_whose_body_does_not_match_its_range_restarts_from_byte_0(http, tmp_path, caplog, wrong, reason):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, **wrong)]
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 206, 200] and "Range" not in http.headers_for("f.bin")[2]
    assert reason in caplog.text


def test_a_200_to_a_range_request_is_taken_whole(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, ignore_range=True)]
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 200] and "Range" in http.headers_for("f.bin")[1]


def test_a_file_changing_at_every_request_is_a_bounded_failure(http, tmp_path):
    http.if_range = False
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, drop_after=100_000, replace_with=os.urandom(300_000)) for _ in range(9)]
    assert_fails(http, tmp_path, r"gave up after 4 attempts: the file changed \(ETag")


# --- bodies without a length ---------------------------------------------------------------------


def test_a_chunked_body_is_verified_by_its_framing(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, chunked=True)
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length is None and state.md5 == md5(BODY)
    assert statuses(http) == [200]


def test_a_chunked_body_cut_short_is_resumed(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, chunked=True, drop_after=100_000)
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length == len(BODY)  # the 206 gave the total
    assert statuses(http) == [200, 206]


@pytest.mark.parametrize("head_length", [True, False])
def test_an_unframed_body_is_checked_against_head_or_read_twice(http, tmp_path, head_length):
    http.head_length = head_length
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=2, unframed=True)
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length == (len(BODY) if head_length else None)
    assert len(http.headers_for("f.bin", "GET")) == (1 if head_length else 2)
    assert len(http.headers_for("f.bin", "HEAD")) == 1


@pytest.mark.parametrize("head_length", [True, False])
def test_an_unframed_body_cut_short_is_never_accepted(http, tmp_path, head_length):
    http.head_length = head_length
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, unframed=True, drop_after=100_000), Fault(times=2, unframed=True)]
    assert get(http, tmp_path)[0] == BODY
    # with HEAD's length the cut is refused at once; without, two reads must agree
    assert len(http.headers_for("f.bin", "GET")) == (2 if head_length else 3)


def test_an_unframed_body_shorter_than_head_says_fails(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, unframed=True, drop_after=100_000)
    assert_fails(http, tmp_path, r"body without a length ended early: got 100,000 of 300,000 bytes \(HEAD\)")


def test_an_unframed_body_that_differs_between_reads_fails(http, tmp_path):
    http.head_length = False
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, unframed=True, drop_after=n) for n in (10_000, 20_000, 30_000, 40_000)]
    assert_fails(http, tmp_path, r"differs between two reads: got 30,000 then 40,000 bytes")


# --- Content-Encoding: gzip ----------------------------------------------------------------------


def test_a_gzip_body_is_stored_decoded(http, tmp_path):
    http.files["/f.xyz"] = TEXT
    http.faults["/f.xyz"] = Fault(times=1, gzip=True)
    data, state = get(http, tmp_path, path="f.xyz")
    assert data == TEXT and state.md5 == md5(TEXT) and state.size == len(TEXT)
    assert state.content_length is None  # the server gave only the gzip length


def test_a_gzip_body_cut_short_restarts_from_byte_0(http, tmp_path):
    http.files["/f.xyz"] = TEXT
    http.faults["/f.xyz"] = [Fault(times=1, gzip=True, drop_after=5_000), Fault(times=1, gzip=True)]
    assert get(http, tmp_path, path="f.xyz")[0] == TEXT
    assert [h.get("Range") for h in http.headers_for("f.xyz")] == [None, None]


@pytest.mark.parametrize("cut", [None, 5_000])
def test_an_unframed_gzip_body_is_verified_by_the_end_of_its_stream(http, tmp_path, cut):
    http.files["/f.xyz"] = TEXT
    http.faults["/f.xyz"] = [Fault(times=1, gzip=True, unframed=True, drop_after=cut), Fault(times=1, gzip=True)]
    assert get(http, tmp_path, path="f.xyz")[0] == TEXT
    assert statuses(http, "f.xyz") == [200] * (1 if cut is None else 2)  # and no HEAD


def test_a_gzip_206_is_not_spliced_onto_plain_bytes(http, tmp_path, caplog):
    http.etag, http.if_range = "", False  # only the coding tells the 206 from a continuation
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, gzip=True)]  # the server starts compressing
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 206, 200] and "a gzip 206 cannot continue decoded bytes" in caplog.text


@pytest.mark.parametrize("name", ["f.xyz.gz", "F.XYZ.GZ", "f.Tgz", "Dem.Tif.Gz", "f.tar.GZ"])
def test_a_gz_file_served_with_content_encoding_keeps_its_gzip_bytes(http, tmp_path, name):
    # its name in any case: unpack reads `.GZ` as `.gz`, and the decoded bytes would keep the `.GZ` name
    http.files[f"/{name}"] = TEXT  # on the wire as gzip(TEXT), as Apache serves a .gz file
    http.faults[f"/{name}"] = Fault(times=1, gzip=True)
    assert get(http, tmp_path, path=name)[0] == gzip.compress(TEXT, mtime=0)


# --- head(): the same fields, for a later refresh ------------------------------------------------


def test_head_gives_the_fields_a_download_gives(http, tmp_path):
    http.files["/real.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, redirect_to=http.url("real.bin"), method=m) for m in ("GET", "HEAD")]
    _, fetched = get(http, tmp_path)
    assert head(http.url("f.bin"), FAST, make_pool(FAST)) == dataclasses.replace(fetched, size=None, md5=None)


def test_head_is_retried_and_falls_back_to_a_one_byte_get(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, status=503, method="HEAD"), Fault(times=1, status=405, method="HEAD")]
    state = head(http.url("f.bin"), FAST, make_pool(FAST))
    v = http.validators(BODY)
    assert (state.etag, state.last_modified, state.content_length) == (v["ETag"], v["Last-Modified"], len(BODY))
    assert http.requests_for("f.bin") == [("/f.bin", None, 503), ("/f.bin", None, 405), ("/f.bin", "bytes=0-0", 206)]


def test_head_of_a_missing_file_fails_at_once(http, tmp_path):
    with pytest.raises(FileFailure, match=r"missing.bin: HTTP 404") as err:
        head(http.url("missing.bin"), FAST, make_pool(FAST))
    assert err.value.step == "head" and len(http.requests_for("missing.bin")) == 1


# --- other servers' behaviours (review of the prototype) ------------------------------------------


def test_a_206_with_a_weak_etag_does_not_continue_a_strong_one(http, tmp_path, caplog):
    http.files["/f.bin"] = BODY
    weak = "W/" + http.validators(BODY)["ETag"]  # a CDN that weakens the tag on ranges
    http.faults["/f.bin"] = [drop(), Fault(times=1, headers={"ETag": weak})]
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 206, 200] and "the file changed (ETag" in caplog.text


def test_a_weak_etag_with_last_modified_resumes_by_last_modified(http, tmp_path):
    http.etag = "weak"
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = drop()
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 206]
    assert http.headers_for("f.bin")[1]["If-Range"] == http.validators(BODY)["Last-Modified"]


@pytest.mark.parametrize("honours_if_range", [True, False])
def test_a_redirect_to_a_changed_file_is_not_spliced(http, tmp_path, honours_if_range):
    http.if_range = honours_if_range
    http.files["/v1.bin"], http.files["/v2.bin"] = BODY, EDITED  # the mirror now points at a new version
    http.faults["/v1.bin"] = drop()
    http.faults["/f.bin"] = [
        Fault(times=1, redirect_to=http.url("v1.bin")),
        Fault(times=9, redirect_to=http.url("v2.bin")),
    ]
    data, state = get(http, tmp_path)
    assert data == EDITED and state.final_url == http.url("v2.bin") and state.md5 == md5(EDITED)


def test_a_relative_redirect_gives_an_absolute_final_url(http, tmp_path):
    http.files["/real/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, redirect_to="/real/f.bin")
    assert get(http, tmp_path)[1].final_url == http.url("real/f.bin")


def test_an_unframed_body_longer_than_head_says_is_checked_by_two_reads(http, tmp_path):
    http.head_content_length = 0  # a HEAD handler that answers every file with an empty body
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=2, unframed=True)
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length is None
    assert len(http.headers_for("f.bin", "GET")) == 2


def test_an_unframed_body_shorter_than_a_lying_head_fails_naming_both_lengths(http, tmp_path):
    http.head_content_length = len(BODY) + 1
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, unframed=True)
    assert_fails(http, tmp_path, r"got 300,000 of 300,001 bytes \(HEAD\)")


def test_a_head_of_another_version_is_not_used_for_the_length(http, tmp_path):
    http.files["/f.bin"] = BODY
    # the body comes unframed and cut short; the HEAD after it already sees a new version of that length
    http.faults["/f.bin"] = [
        Fault(times=1, unframed=True, drop_after=100_000),
        Fault(times=1, method="HEAD", replace_with=NEW[:100_000]),
        Fault(times=2, unframed=True),
    ]
    data, _ = get(http, tmp_path)
    assert data == NEW[:100_000]


@pytest.mark.parametrize("framing", [{}, {"unframed": True}], ids=["length", "unframed"])
def test_an_http_1_0_server(http, tmp_path, framing):
    http.http10 = True
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, drop_after=100_000, **framing), Fault(times=3, **framing)]
    data, state = get(http, tmp_path)
    assert data == BODY and state.md5 == md5(BODY)


def test_headers_that_trickle_stop_at_max_seconds_per_file(http, tmp_path):
    http.files["/f.bin"] = BODY[:100]
    http.faults["/f.bin"] = Fault(times=100, trickle_headers=0.5)  # each byte well inside the read timeout
    s = dataclasses.replace(FAST, max_seconds_per_file=2)
    assert_fails(http, tmp_path, r"max_seconds_per_file \(2 s\) reached", s)


@pytest.mark.parametrize(
    ("path", "coding", "cap", "stored"),
    [
        ("f.xyz", "gzip", len(TEXT) - 1, None),  # a bomb, or a mistake: refused
        ("f.xyz", "x-gzip", len(TEXT) - 1, None),
        ("f.xyz", "gzip", len(TEXT), TEXT),  # up to the cap: taken
        ("f.xyz.gz", "gzip", 100, "wire"),  # its gzip bytes are the file: unpack's cap counts them
        ("F.XYZ.GZ", "gzip", 100, "wire"),
    ],
)
def test_a_content_encoding_decodes_no_further_than_the_cap(http, tmp_path, path, coding, cap, stored):
    http.files["/" + path] = TEXT
    http.faults["/" + path] = Fault(times=9, gzip=True, headers={"Content-Encoding": coding})
    dest = tmp_path / "out" / path
    if stored is None:
        with pytest.raises(FileFailure, match=rf"decodes to more than {cap:,} bytes.*unpack.max_unpacked_gb"):
            fetch(http.url(path), dest, None, FAST, make_pool(FAST), max_decoded_bytes=cap)
        assert not list((tmp_path / "out").iterdir()) and len(statuses(http, path)) == 1  # not retried
    else:
        fetch(http.url(path), dest, None, FAST, make_pool(FAST), max_decoded_bytes=cap)
        assert dest.read_bytes() == (gzip.compress(TEXT, mtime=0) if stored == "wire" else stored)


def test_a_gz_file_gzipped_again_on_the_wire_is_stored_once_decoded(http, tmp_path):
    packed = gzip.compress(TEXT, mtime=0)
    http.files["/f.xyz.gz"] = packed  # the file is gzip; a proxy compresses it again and says so
    http.faults["/f.xyz.gz"] = Fault(times=1, gzip=True)
    assert get(http, tmp_path, path="f.xyz.gz")[0] == packed


def test_a_304_to_a_resume_starts_over(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, status=304)]  # If-Range taken for If-None-Match
    assert get(http, tmp_path)[0] == BODY
    assert statuses(http) == [200, 304, 200] and "Range" not in http.headers_for("f.bin")[2]


# --- re-sent bytes that cannot tell a shifted body ---------------------------------------------------


def _repeating(kind: str, n: int) -> bytes:
    """`n` bytes that repeat themselves: zeros (a sea), one float32 nodata value, or identical raster
    rows of 1,000 float32 pixels (a ramp along x), as an uncompressed raster holds them."""
    if kind == "zeros":
        return bytes(n)
    if kind == "nodata":
        return (b"\x00\x3c\x1c\xc6" * (n // 4 + 1))[:n]  # -9999.0 as little-endian float32
    row = b"".join(int(v).to_bytes(4, "little") for v in range(1000))
    return (row * (n // len(row) + 1))[:n]


@pytest.mark.parametrize("kind", ["zeros", "nodata", "rows"])
@pytest.mark.parametrize("shift", [-4, 4, -4000, 1])
@pytest.mark.parametrize("cut_in_run", [8_000, 300_000], ids=["run 8 kB in", "run 300 kB in"])
def test_a_resumed_body_shifted_over_bytes_that_repeat_is_never_stored(http, tmp_path, kind, shift, cut_in_run):
    """The connection drops inside a run of repeating bytes; the resume's 206 names the right range but
    its body is a few bytes (or one period) off. Re-sent bytes of that run would match at any such
    shift: the resume asks from further back, or starts over, and the file is right."""
    body = os.urandom(50_000) + _repeating(kind, 400_000) + os.urandom(50_000)
    http.files["/f.bin"] = body
    http.faults["/f.bin"] = [Fault(times=1, drop_after=50_000 + cut_in_run), Fault(times=1, body_shift=shift)]
    data, state = get(http, tmp_path)
    assert data == body and state.md5 == md5(body)


@pytest.mark.parametrize("kind", ["zeros", "nodata", "rows"])
def test_a_resume_before_bytes_that_repeat_asks_from_where_they_stop_repeating(http, tmp_path, kind):
    body = os.urandom(50_000) + _repeating(kind, 40_000) + os.urandom(50_000)
    http.files["/f.bin"] = body
    http.faults["/f.bin"] = Fault(times=1, drop_after=80_000)
    assert get(http, tmp_path)[0] == body
    assert http.requests_for("f.bin") == [("/f.bin", None, 200), ("/f.bin", f"bytes={80_000 - 65_536}-", 206)]


def test_a_last_modified_of_the_same_second_is_no_validator_to_resume_by(http, tmp_path):
    """Without an ETag, a file rewritten within the second of its Last-Modified keeps the same date: a
    resume by it could splice two versions. Such a download starts over instead."""
    http.etag = ""
    http.files["/f.bin"] = BODY
    http.modified["/f.bin"] = formatdate(time.time(), usegmt=True)
    http.faults["/f.bin"] = [drop(), Fault(times=1, replace_with=EDITED)]
    data, _ = get(http, tmp_path)
    assert data == EDITED and http.requests_for("f.bin") == [("/f.bin", None, 200), ("/f.bin", None, 200)]


@pytest.mark.parametrize("period", [4_400, 70_000])
def test_a_resumed_body_from_an_earlier_copy_of_its_bytes_is_never_stored(http, tmp_path, period):
    """Rows of 1,100 float32 pixels that repeat (4,400 bytes), or a block of 70,000 bytes that does:
    the 4 KiB re-sent have no period of their own, but a body one period early re-sends them
    unchanged. Re-sent bytes must be found nowhere else in what is stored."""
    block = os.urandom(period)
    body = os.urandom(30_000) + block * (400_000 // period + 2) + os.urandom(30_000)
    http.files["/f.bin"] = body
    http.faults["/f.bin"] = [Fault(times=1, drop_after=30_000 + 3 * period + 1234), Fault(times=1, body_shift=-period)]
    data, state = get(http, tmp_path)
    assert data == body and state.md5 == md5(body)


# --- answers that contradict each other about the file's length or range ---------------------------
# A 200 is the whole file. One that says it is a part (a Content-Range of some of the bytes), or whose
# length differs from the one an earlier answer of the same version gave, contradicts it: the file
# starts over from byte 0 once, never resumed again, and a second contradiction fails it loudly.

VOUCHING = {"strong ETag": {"etag": "strong"}, "old Last-Modified": {"etag": ""}}
CONTENT_RANGE = {"with Content-Range": None, "without Content-Range": ""}


@pytest.mark.parametrize("server", VOUCHING.values(), ids=VOUCHING.keys())
@pytest.mark.parametrize("content_range", CONTENT_RANGE.values(), ids=CONTENT_RANGE.keys())
@pytest.mark.parametrize("framing", [{}, {"chunked": True}], ids=["content-length", "chunked"])
def test_a_resume_answered_200_with_only_the_tail_is_never_the_file(
    http, tmp_path, caplog, server, content_range, framing
):
    """A download script that forgot its 206: the resume's range comes as "200 OK", same validators."""
    for key, value in server.items():
        setattr(http, key, value)
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, range_as_200=True, content_range=content_range, **framing)]
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length == len(BODY)
    assert statuses(http) == [200, 200, 200] and "Range" not in http.headers_for("f.bin")[2]
    assert "300,000" in caplog.text and f"{len(BODY) - 100_000 + 4096:,}" in caplog.text


def test_a_file_whose_resume_was_answered_with_a_part_is_never_resumed_again(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, range_as_200=True), drop(), Fault(times=9, range_as_200=True)]
    data, _ = get(http, tmp_path)
    assert data == BODY
    assert [h.get("Range") for h in http.headers_for("f.bin")] == [None, f"bytes={100_000 - 4096}-", None, None]


@pytest.mark.parametrize("server", [*VOUCHING.values(), {"etag": "", "last_modified": False}])
def test_a_first_answer_200_with_a_content_range_of_a_part_fails_naming_both_lengths(http, tmp_path, server):
    """A portal that caps every answer and says so only in its Content-Range: never the whole file."""
    for key, value in server.items():
        setattr(http, key, value)
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=99, first_bytes=120_000, range_as_200=True)
    err = assert_fails(http, tmp_path, r"contradict")
    assert "bytes 0-119999/300000" in str(err) and "120,000" in str(err)
    assert statuses(http) == [200, 200], "started over once, then failed"


def test_a_first_answer_200_with_a_part_then_the_whole_file_is_the_whole_file(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, first_bytes=120_000, range_as_200=True)
    assert get(http, tmp_path)[0] == BODY and statuses(http) == [200, 200]


def test_a_200_of_the_same_version_and_another_length_is_not_the_file(http, tmp_path, caplog):
    """After a resume refused for its bytes, the next answer (no Range) has the ETag of the first and
    a chunked body that ends at 120,000 bytes of 300,000."""
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [
        drop(),
        Fault(times=1, body_from=0),  # a 206 refused for its bytes: starts over, not a contradiction
        Fault(times=1, first_bytes=120_000, range_as_200=True, content_range="", chunked=True),
    ]
    assert get(http, tmp_path)[0] == BODY and statuses(http) == [200, 206, 200, 200]
    assert "120,000" in caplog.text and "300,000" in caplog.text


def test_a_whole_200_that_says_so_in_its_content_range_is_the_file(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, headers={"Content-Range": f"bytes 0-{len(BODY) - 1}/{len(BODY)}"})
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length == len(BODY) and statuses(http) == [200]


def test_a_one_byte_range_answered_200_gives_no_false_length(http, tmp_path):
    """head(by_get): "200 OK" to bytes=0-0 with one byte: the file's length is its Content-Range total,
    or unknown without one (a one-byte body says nothing of the file)."""
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, range_as_200=True), Fault(times=1, range_as_200=True, content_range="")]
    assert head(http.url("f.bin"), FAST, make_pool(FAST), by_get=True).content_length == len(BODY)
    assert head(http.url("f.bin"), FAST, make_pool(FAST), by_get=True).content_length is None


def test_a_file_replaced_under_the_same_validators_still_comes_whole(http, tmp_path):
    """A careless server keeps ETag and Last-Modified across a replacement: the resume's 200 of the new
    length contradicts the first answer, so the file is asked again from byte 0 and stored whole."""
    kept = http.validators(BODY, path="/f.bin")
    http.validators = lambda data, coding="", path="": kept
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [drop(), Fault(times=1, replace_with=NEW, ignore_range=True)]
    data, state = get(http, tmp_path)
    assert data == NEW and state.content_length == len(NEW) and statuses(http) == [200, 200, 200]


@pytest.mark.parametrize("framing", [{}, {"chunked": True}], ids=["content-length", "chunked"])
@pytest.mark.parametrize("dropped", [{"ETag": None, "Last-Modified": None}, {"ETag": '"other"'}], ids=["none", "other"])
def test_a_resume_answered_200_with_exactly_the_range_asked_is_asked_again_whole(http, tmp_path, framing, dropped):
    """The same script, whose 200 carries no validator or another one, so nothing ties it to the first
    answer: its length is exactly that of the range asked. A new version of that length would come
    again whole; this one does not, so the file is asked again from byte 0."""
    http.files["/f.bin"] = BODY
    tail = Fault(times=1, range_as_200=True, content_range="", headers=dropped, **framing)
    http.faults["/f.bin"] = [drop(), tail]
    data, state = get(http, tmp_path)
    assert data == BODY and state.content_length == len(BODY)
    assert statuses(http) == [200, 200, 200] and "Range" not in http.headers_for("f.bin")[2]
