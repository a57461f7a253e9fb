"""A file in byte ranges over several connections (shared/download.py `Pieces`): the pieces of one
version, each checked, or the whole file over one connection; never bytes spliced from two answers.

Each misbehaviour is served to whichever piece request comes at that point, so a test holds
whatever order the connections take the pieces in."""

import dataclasses
import http.server
import os
import threading
import time
from email.utils import formatdate

import pytest

from tilewise.shared.download import Offer, fetch, make_pool
from tilewise.shared.errors import FileFailure

from support.config import download_settings
from support.httpserver import Fault

FAST = download_settings(
    attempts=4, backoff_seconds=0.05, max_backoff_seconds=0.5, connect_timeout_seconds=2, read_timeout_seconds=2
)
PIECE = 64_000
BODY = os.urandom(5 * PIECE + 1234)  # 6 pieces
NEW = os.urandom(len(BODY))  # the next version, of the same length


def get(http, tmp_path, helpers: int = 3, piece: int = PIECE, settings=FAST):
    """Fetch /f.bin with `helpers` idle connections that take pieces as they come; returns the bytes,
    the state, the requests' Range headers (None: a whole body) and whether the file was split."""
    answers, threads = [], []

    def on_answer(pieces):
        answers.append(pieces)
        if pieces is not None:
            for _ in range(helpers):
                threads.append(threading.Thread(target=_help, args=(pieces,)))
                threads[-1].start()

    dest = tmp_path / "out" / "f.bin"
    pool = make_pool(settings, maxsize=helpers + 1)
    try:
        state = fetch(http.url("f.bin"), dest, None, settings, pool, Offer(piece, on_answer))
    finally:
        for t in threads:
            t.join()
    assert len(answers) == 1, "an offer is answered exactly once"
    assert not list(dest.parent.glob("*.part"))
    return dest.read_bytes(), state, [r[1] for r in http.requests_for("f.bin")], answers[0] is not None


def _help(pieces) -> None:
    while span := pieces.claim():
        pieces.run(span)


def ranged(ranges) -> list[str]:
    return [r for r in ranges if r]


def test_a_large_file_comes_in_pieces_each_asked_from_4_kib_before_it(http, tmp_path):
    http.files["/f.bin"] = BODY
    data, state, ranges, split = get(http, tmp_path)
    assert split and data == BODY
    assert state.size == state.content_length == len(BODY)
    whole, whole_state, _, _ = get(http, tmp_path / "whole", piece=len(BODY))  # too small to split: one body
    assert whole == BODY and whole_state == state
    assert ranges[0] is None and sorted(ranged(ranges)) == sorted(
        f"bytes={a - 4096}-{min(a + PIECE, len(BODY)) - 1}" for a in range(PIECE, len(BODY), PIECE)
    )
    etag = http.validators(BODY)["ETag"]
    assert all(h.get("If-Range") == etag for h in http.headers_for("f.bin") if h.get("Range"))


@pytest.mark.parametrize(
    "server",
    [
        {"etag": "weak", "last_modified": False},  # no validator a Range request may carry
        {"etag": "", "last_modified": False},
        {"etag": "", "date": False},  # a Last-Modified, but no Date to compare it with
    ],
)
def test_a_file_without_a_strong_validator_comes_whole(http, tmp_path, server):
    for key, value in server.items():
        setattr(http, key, value)
    http.files["/f.bin"] = BODY
    data, _, ranges, split = get(http, tmp_path)
    assert data == BODY and not split and ranges == [None]


@pytest.mark.parametrize("header", [{"Accept-Ranges": None}, {"Accept-Ranges": "none"}])
def test_a_server_that_does_not_offer_ranges_is_not_asked_for_pieces(http, tmp_path, header):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, headers=header)
    data, _, ranges, split = get(http, tmp_path)
    assert data == BODY and not split and ranges == [None]


def test_an_encoded_or_chunked_first_answer_is_not_split(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, chunked=True)
    data, _, ranges, split = get(http, tmp_path)
    assert data == BODY and not split and ranges == [None]


# Every misbehaviour of one piece request: the pieces are dropped and the file comes again whole.
PIECE_FAULTS = {
    "200 to a Range (ranges forgotten)": Fault(times=1, ignore_range=True),
    "another Content-Range": Fault(times=1, content_range="bytes {start}-{end}/9999999"),
    "no Content-Range": Fault(times=1, content_range=""),
    "a body from another byte": Fault(times=1, body_from=0),
    "a short body, framed": Fault(times=1, trim=100),
    "a gzip-coded 206": Fault(times=1, gzip=True),
    "a 404": Fault(times=1, status=404),
    "a chunked body that ends cleanly early": Fault(times=1, chunked=True, trim=100),
}


@pytest.mark.parametrize("fault", PIECE_FAULTS.values(), ids=PIECE_FAULTS.keys())
@pytest.mark.parametrize("nth", [2, 4])
def test_a_piece_answered_wrongly_drops_the_pieces_and_the_file_comes_whole(http, tmp_path, fault, nth):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=nth - 1), dataclasses.replace(fault)]  # the nth request misbehaves
    data, state, ranges, split = get(http, tmp_path)
    assert split and data == BODY and state.size == len(BODY)
    assert ranges[-1] is None, "the file came again as one body"


def test_a_file_that_changes_between_pieces_is_fetched_again_as_the_new_version(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, replace_with=NEW)]
    data, state, ranges, _ = get(http, tmp_path)
    assert data == NEW and state.etag == http.validators(NEW)["ETag"]


def test_a_server_that_ignores_if_range_cannot_splice_two_versions(http, tmp_path):
    http.if_range = False  # it serves the range of whatever version it has now
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, replace_with=NEW)]
    data, state, _, _ = get(http, tmp_path)
    assert data == NEW and state.etag == http.validators(NEW)["ETag"]


def test_a_touched_file_with_the_same_bytes_is_fetched_again_whole(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.if_range = False
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})]
    data, _, ranges, split = get(http, tmp_path)
    assert split and data == BODY and ranges[-1] is None


def test_every_piece_shifted_alike_is_caught_at_the_first_seam(http, tmp_path):
    """A server whose 206 bodies all start at the wrong byte, with the right Content-Range: the seams
    between shifted pieces agree with each other, the one after the 200's piece does not."""
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1), Fault(times=5, body_from=1)]
    data, _, ranges, split = get(http, tmp_path)
    assert split and data == BODY and ranges[-1] is None


@pytest.mark.parametrize("shift", [-4, 4, -1000])
def test_pieces_shifted_alike_over_bytes_that_repeat_at_the_first_seam_are_never_stored(http, tmp_path, shift):
    """The same server, but the bytes before the first seam repeat themselves (a run of one float32
    value): shifted re-sent bytes equal the stored ones there. The seam cannot be checked, so the
    pieces are dropped and the file comes as one body."""
    nodata = (b"\x00\x3c\x1c\xc6" * (PIECE // 4))[: PIECE // 2]
    body = os.urandom(PIECE // 2) + nodata + os.urandom(4 * PIECE)
    http.files["/f.bin"] = body
    http.faults["/f.bin"] = [Fault(times=1), Fault(times=6, body_shift=shift)]
    data, _, ranges, split = get(http, tmp_path)
    assert split and data == body and ranges[-1] is None


def test_when_pieces_keep_failing_the_whole_file_still_obeys_the_attempts(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1), Fault(times=100, status=503)]
    with pytest.raises(Exception, match="gave up after 4 attempts: HTTP 503"):
        get(http, tmp_path)
    assert not list((tmp_path / "out").glob("*"))


def test_a_disk_error_in_a_piece_fails_the_download_without_a_retry(http, tmp_path, monkeypatch):
    http.files["/f.bin"] = BODY
    real_open = open
    calls = []

    def full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and mode == "r+b":
            calls.append(path)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(OSError, match="No space left"):
        get(http, tmp_path)
    assert len([r for r in http.requests_for("f.bin") if r[1] is None]) == 1, "a full disk is not retried"


def test_a_last_modified_of_the_same_second_never_ties_pieces_to_one_version(http, tmp_path):
    """Without an ETag, a file rewritten within the second of its Last-Modified keeps the same date:
    pieces of both versions would carry it. A date is strong only 60 s before the answer's Date."""
    http.etag = ""
    http.files["/f.bin"] = BODY
    http.modified["/f.bin"] = formatdate(time.time(), usegmt=True)
    new = bytearray(BODY)
    for a in range(PIECE, len(BODY) - PIECE, PIECE):  # changed inside every piece, not at its seams
        new[a + 10_000 : a + 20_000] = os.urandom(10_000)
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, replace_with=bytes(new))]
    data, _, ranges, split = get(http, tmp_path, helpers=0)
    assert not split and data == BODY and ranges == [None]
    http.modified["/f.bin"] = formatdate(time.time() - 3600, usegmt=True)  # an hour old: strong
    data, _, _, split = get(http, tmp_path / "old")
    assert split and data == bytes(new)


# A connection's trouble, not a doubt about the bytes: that piece is asked again (attempts, backoff).
TRANSIENT = {
    # cuts shorter than the shortest request (the 5,330-byte last piece): whichever request meets the
    # fault, its connection breaks before the end of the body
    "a dropped connection": Fault(times=1, drop_after=3_000),
    "a chunked body cut": Fault(times=1, chunked=True, drop_after=2_000),
    "a 503": Fault(times=1, status=503),
    "a stalled body": Fault(times=1, stall=3.0),  # past the 2 s read timeout
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
@pytest.mark.parametrize(("nth", "helpers"), [(2, 3), (4, 3), (6, 0)], ids=["2nd", "4th", "the short last"])
def test_a_piece_whose_connection_fails_is_asked_again_not_the_whole_file(http, tmp_path, fault, nth, helpers):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=nth - 1), dataclasses.replace(fault)]
    data, _, ranges, split = get(http, tmp_path, helpers=helpers)  # helpers=0: the pieces come in order
    assert split and data == BODY
    assert ranges.count(None) == 1 and len(ranges) == 1 + 5 + 1, "one piece asked twice, no whole body again"


def test_a_429_to_a_piece_is_obeyed_then_the_piece_asked_again(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, status=429, retry_after="1")]
    stamps = []
    real = http.next_fault
    http.next_fault = lambda path, method: (stamps.append(time.monotonic()), real(path, method))[1]
    patient = dataclasses.replace(FAST, max_backoff_seconds=2)
    data, _, ranges, split = get(http, tmp_path, helpers=0, settings=patient)  # one connection: in order
    assert split and data == BODY and ranges.count(None) == 1
    refused = [i for i, (_, _, status) in enumerate(http.requests_for("f.bin")) if status == 429][0]
    assert ranges[refused + 1] == ranges[refused], "the same piece asked again"
    assert stamps[refused + 1] - stamps[refused] >= 1.0, "after the Retry-After"


def test_pieces_are_never_smaller_than_four_times_the_bytes_each_re_sends(http, tmp_path):
    body = os.urandom(100_000)
    http.files["/f.bin"] = body
    data, _, ranges, split = get(http, tmp_path, piece=100)
    assert split and data == body
    asked = [tuple(map(int, r[6:].split("-"))) for r in ranges if r]
    assert len(asked) + 1 == -(-len(body) // 16_384)
    assert all(last - first + 1 == 4096 + 16_384 for first, last in asked if last < len(body) - 1)


@pytest.fixture
def date_is(monkeypatch):
    def set_(value):
        real = http.server.BaseHTTPRequestHandler.send_header

        def send_header(self, k, v):
            if k == "Date":
                if value is None:
                    return
                v = value
            return real(self, k, v)

        monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "send_header", send_header)

    return set_


def test_a_server_clock_ahead_does_not_make_a_fresh_last_modified_strong(http, tmp_path, date_is):
    """Server clock: Date 1 h ahead; the file is rewritten within the second of its Last-Modified
    (same LM, no ETag): Last-Modified must also be 60 s before our own clock."""
    http.etag = ""
    http.files["/f.bin"] = BODY
    http.modified["/f.bin"] = formatdate(time.time(), usegmt=True)
    date_is(formatdate(time.time() + 3600, usegmt=True))
    new = bytearray(BODY)
    for a in range(PIECE, len(BODY) - PIECE, PIECE):
        new[a + 10_000 : a + 20_000] = os.urandom(10_000)
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, replace_with=bytes(new))]
    data, _, _, split = get(http, tmp_path, helpers=0)
    assert data in (BODY, bytes(new)), f"split={split}: bytes of two versions stored"


def test_a_piece_waiting_to_be_asked_again_stops_when_the_pieces_are_dropped(http, tmp_path):
    http.files["/f.bin"] = BODY
    s = dataclasses.replace(FAST, backoff_seconds=1.5, max_backoff_seconds=1.5)
    http.faults["/f.bin"] = [Fault(times=1), Fault(times=1, status=503), Fault(times=1, ignore_range=True)]
    t0 = time.monotonic()
    data, _, ranges, split = get(http, tmp_path, helpers=3, settings=s)
    took = time.monotonic() - t0
    assert split and data == BODY and ranges[-1] is None
    assert took < 1.4, f"the fallback waited {took:.2f} s for a sleeping piece's backoff (1.5 s)"


def test_a_content_range_of_thousands_of_digits_drops_the_pieces_not_the_file(http, tmp_path):
    """A 206 whose Content-Range has a 5000-digit total: int() raises ValueError (str digits limit)."""
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=2), Fault(times=1, content_range="bytes {start}-{end}/" + "9" * 5000)]
    data, _, ranges, split = get(http, tmp_path, helpers=0)
    assert split and data == BODY and ranges[-1] is None


def test_a_content_length_of_thousands_of_digits_is_no_length(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, headers={"Content-Length": "9" * 5000})]
    data, _, _, split = get(http, tmp_path, helpers=0)  # no length: not split, checked by its HEAD
    assert data == BODY and not split


def test_a_first_answer_dropped_in_its_first_piece_asks_that_piece_again(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [Fault(times=1, drop_after=30_000)]
    data, _, ranges, split = get(http, tmp_path, helpers=0)
    assert split and data == BODY
    assert ranges.count(None) == 1, f"whole file fetched again: {ranges}"


def test_a_retry_after_a_piece_already_obeyed_is_not_waited_again_by_the_whole_file(http, tmp_path):
    http.files["/f.bin"] = BODY
    patient = dataclasses.replace(FAST, max_backoff_seconds=1.5)
    http.faults["/f.bin"] = [
        Fault(times=2),
        Fault(times=1, status=429, retry_after="1.5"),  # obeyed: the piece is asked again 1.5 s later
        Fault(times=2),
        Fault(times=1, ignore_range=True),  # then a doubt: the file comes whole, at once
    ]
    stamps = []
    real = http.next_fault
    http.next_fault = lambda path, method: (stamps.append(time.monotonic()), real(path, method))[1]
    data, _, ranges, _ = get(http, tmp_path, helpers=0, settings=patient)
    assert data == BODY and ranges[-1] is None
    assert stamps[-1] - stamps[-2] < 1.0, "the whole file waited for a Retry-After already obeyed"


def test_pieces_from_an_earlier_copy_of_their_bytes_are_never_stored(http, tmp_path):
    """Every 206 one block early, where the file is one block repeated: each seam's re-sent bytes
    equal the stored ones, and have no period of their own. They are found elsewhere in the file,
    so the seam proves nothing and the file comes as one body."""
    block = os.urandom(10_000)
    body = os.urandom(2_000) + block * (5 * PIECE // len(block))
    http.files["/f.bin"] = body
    http.faults["/f.bin"] = [Fault(times=1), Fault(times=8, body_shift=-len(block))]
    data, _, ranges, split = get(http, tmp_path)
    assert split and data == body and ranges[-1] is None


def test_a_piece_answered_200_with_its_range_drops_the_pieces_and_ranges_for_good(http, tmp_path):
    """A piece's range sent as "200 OK": the file comes whole, and a cut of that whole body starts over
    from byte 0 (the server's ranges are in doubt), never asking the range that server answers wrongly."""
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = [
        Fault(times=1),
        Fault(times=1, range_as_200=True),
        Fault(times=1, drop_after=100_000),
        Fault(times=9, range_as_200=True),
    ]
    data, _, ranges, split = get(http, tmp_path, helpers=0)  # one connection: the faults meet requests in order
    assert split and data == BODY
    assert ranges[2:] == [None, None], "after the part sent as 200, never a Range again"


def test_a_first_answer_200_with_a_content_range_of_a_part_is_never_split(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=99, first_bytes=3 * PIECE, range_as_200=True)
    with pytest.raises(FileFailure, match=f"bytes 0-{3 * PIECE - 1}/{len(BODY)}"):
        get(http, tmp_path)
    assert not list((tmp_path / "out").glob("*"))
