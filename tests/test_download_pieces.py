"""A file in byte ranges over several connections (shared/download.py `Pieces`): the pieces of one
version, each checked, or the whole file over one connection; never bytes spliced from two answers.

Each misbehaviour is served to whichever piece request comes at that point, so a test holds
whatever order the connections take the pieces in."""

import dataclasses
import os
import threading

import pytest

from tilewise.shared.download import Offer, fetch, make_pool

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
    "a dropped connection": Fault(times=1, drop_after=1000),
    "a 503": Fault(times=1, status=503),
    "a 404": Fault(times=1, status=404),
    "a chunked body that ends early": Fault(times=1, chunked=True, drop_after=2000),
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
