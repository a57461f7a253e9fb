import os
import time

import pytest

from tilewise.shared.download import fetch, make_pool
from tilewise.shared.errors import FileFailure

from support.config import download_settings
from support.httpserver import Fault

FAST = download_settings(
    attempts=4, backoff_seconds=0.05, max_backoff_seconds=0.5, connect_timeout_seconds=2, read_timeout_seconds=2
)
BODY = os.urandom(300_000)


def get(http, tmp_path, settings=FAST, path="f.bin"):
    return fetch(http.url(path), tmp_path / "out" / "f.bin", None, settings, make_pool(settings))


def test_plain_download(http, tmp_path):
    http.files["/f.bin"] = BODY
    assert get(http, tmp_path).read_bytes() == BODY
    assert not list((tmp_path / "out").glob("*.part"))


def test_dropped_connection_resumes_with_range(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, drop_after=100_000)
    assert get(http, tmp_path).read_bytes() == BODY
    reqs = http.requests_for("f.bin")
    assert reqs[0] == ("/f.bin", None, 200)
    assert reqs[1][2] == 206 and int(reqs[1][1].removeprefix("bytes=").rstrip("-")) >= 100_000 - 65_536


def test_short_body_is_detected_and_resumed(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, claim_extra=1000)
    assert get(http, tmp_path).read_bytes() == BODY
    reqs = http.requests_for("f.bin")
    assert len(reqs) == 2 and reqs[0][2] == 200 and reqs[1][1].startswith("bytes=")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retryable_status_then_success(http, tmp_path, status):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=2, status=status)
    assert get(http, tmp_path).read_bytes() == BODY
    assert [r[2] for r in http.requests_for("f.bin")] == [status, status, 200]


def test_retry_after_is_honoured_but_capped(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, status=503, retry_after="0.4")
    t0 = time.monotonic()
    get(http, tmp_path)
    assert 0.38 <= time.monotonic() - t0 < 10  # waited as told, and not ten times longer


def test_404_fails_at_once(http, tmp_path):
    with pytest.raises(FileFailure, match=r"HTTP 404") as err:
        get(http, tmp_path, path="missing.bin")
    assert err.value.step == "download"
    assert len(http.requests_for("missing.bin")) == 1


def test_attempts_are_bounded(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, status=503)
    with pytest.raises(FileFailure, match=r"gave up after 4 attempts: HTTP 503"):
        get(http, tmp_path)
    assert len(http.requests_for("f.bin")) == 4
    assert not (tmp_path / "out" / "f.bin").exists()


def test_connection_refused_is_a_recorded_failure(tmp_path):
    s = download_settings(attempts=2, backoff_seconds=0.01, connect_timeout_seconds=1)
    with pytest.raises(FileFailure, match="connection error"):
        fetch("http://127.0.0.1:9/x.tif", tmp_path / "x.tif", None, s, make_pool(s))


def test_local_copy(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(BODY)
    assert fetch(str(src), tmp_path / "o" / "a.bin", src, FAST, None).read_bytes() == BODY
    with pytest.raises(FileFailure, match="no such file"):
        fetch("x", tmp_path / "o" / "b.bin", tmp_path / "nope.bin", FAST, None)


def test_a_stalled_body_times_out_and_is_retried(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, stall=3.0)  # longer than the 2 s read timeout
    t0 = time.monotonic()
    assert get(http, tmp_path).read_bytes() == BODY
    assert time.monotonic() - t0 < 30  # one read timeout (2 s), not the stall's whole length repeated
    assert len(http.requests_for("f.bin")) == 2


def test_a_body_that_always_stalls_is_a_bounded_failure(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, stall=3.0)
    s = download_settings(attempts=3, backoff_seconds=0.05, read_timeout_seconds=0.5, max_seconds_per_file=30)
    t0 = time.monotonic()
    with pytest.raises(FileFailure, match="gave up after 3 attempts"):
        fetch(http.url("f.bin"), tmp_path / "f.bin", None, s, make_pool(s))
    assert time.monotonic() - t0 < 20  # three 0.5 s timeouts and two short waits, far from 3 × 3 s stalls
    assert not (tmp_path / "f.bin").exists()


def test_redirects_are_followed(http, tmp_path):
    http.files["/real.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=1, redirect_to=http.url("real.bin"))
    assert get(http, tmp_path).read_bytes() == BODY


def test_time_budget_stops_retries(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=100, status=503, retry_after="5")
    s = download_settings(attempts=10, backoff_seconds=0.1, max_backoff_seconds=5, max_seconds_per_file=1)
    t0 = time.monotonic()
    with pytest.raises(FileFailure, match="HTTP 503"):
        fetch(http.url("f.bin"), tmp_path / "f.bin", None, s, make_pool(s))
    assert time.monotonic() - t0 < 4.9 and len(http.requests_for("f.bin")) == 1  # the 5 s wait was not taken
