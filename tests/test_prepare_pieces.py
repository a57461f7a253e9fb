"""The chunk's download scheduler with files in pieces (sources/prepare.py `_DownloadsAhead`): never
more requests than connections, the wanted set always started, nothing left running or hanging when
the chunk's downloads are closed, one connection never splits (cases found by an adversarial review)."""

import errno
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tilewise.shared import download
from tilewise.shared.errors import DiskFull
from tilewise.sources import prepare
from tilewise.sources.chunk_job import ChunkJob
from tilewise.sources.prepare import run_chunk

from support.catalog import serve_tiles
from support.chunks import chunk_job


def chunk(folder, urls, **download) -> ChunkJob:
    """With retries quick enough for a test."""
    return chunk_job(folder, urls, **{"attempts": 3, "backoff_seconds": 0.05, "max_backoff_seconds": 0.2, **download})


class Concurrency:
    """Client-side count of requests in flight (from sending to close/release of the response)."""

    def __init__(self, monkeypatch):
        self.now = self.peak = self.total = 0
        self.lock = threading.Lock()
        real = download._request

        def counting(*a, **k):
            with self.lock:
                self.now += 1
                self.total += 1
                self.peak = max(self.peak, self.now)
            ended = [False]

            def end():
                with self.lock:
                    if not ended[0]:
                        ended[0] = True
                        self.now -= 1

            try:
                resp = real(*a, **k)
            except BaseException:
                end()
                raise
            close, release = resp.close, resp.release_conn
            resp.close = lambda: (end(), close())[1]
            resp.release_conn = lambda: (end(), release())[1]
            return resp

        monkeypatch.setattr(download, "_request", counting)


def download_threads():
    return [t for t in threading.enumerate() if t.name.startswith("download") and t.is_alive()]


@pytest.mark.parametrize("connections", [1, 2, 3])
def test_many_files_in_pieces_never_take_more_connections_than_given(tmp_path, http, monkeypatch, connections):
    """Same records as whole downloads, at most `connections` requests at once, no thread left."""
    http.rate_bytes_per_s = 3_000_000
    urls = serve_tiles(http, 7)
    piece = min(len(b) for b in http.files.values()) // 3
    whole = run_chunk(chunk(tmp_path / "whole", urls, connections=connections, piece_mb=0))
    http.log.clear()
    count = Concurrency(monkeypatch)
    split = run_chunk(chunk(tmp_path / "split", urls, connections=connections, piece_mb=piece / 1e6, ahead_mb=0.5))
    assert [r["status"] for r in split.files] == ["ok"] * 7
    assert [version(r) for r in split.files] == [version(r) for r in whole.files]
    assert count.peak <= connections, f"{count.peak} requests at once with connections={connections}"
    assert not download_threads()
    assert not list((tmp_path / "split").rglob("*.part"))


def test_one_connection_does_not_split(tmp_path, http):
    """Nobody could help: a split would only add requests."""
    urls = serve_tiles(http, 2)
    piece = min(len(b) for b in http.files.values()) // 4
    ledger = run_chunk(chunk(tmp_path, urls, connections=1, piece_mb=piece / 1e6))
    assert [r["status"] for r in ledger.files] == ["ok"] * 2
    per_file = {p: sum(1 for q, *_ in http.log if q == p) for p in http.files}
    assert all(n == 1 for n in per_file.values()), f"requests per file with connections=1: {per_file}"


def test_closing_the_downloads_while_a_piece_is_being_handed_out_does_not_hang(tmp_path, http, monkeypatch):
    """A helper's callback claims a piece while the chunk closes its downloads (the thread descheduled
    between the claim and the submit): the piece runs, or the pieces are dropped; never a wait forever."""
    http.rate_bytes_per_s = 1_000_000
    urls = serve_tiles(http, 2)
    piece = min(len(b) for b in http.files.values()) // 6
    job = chunk(tmp_path, urls, connections=3, piece_mb=piece / 1e6)
    made, entered = [], threading.Event()
    real_init = prepare._DownloadsAhead.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        made.append(self)

    class SlowSubmit(ThreadPoolExecutor):
        def submit(self, fn, *a, **k):
            callers = {sys._getframe(i).f_code.co_name for i in range(1, 6)}
            if getattr(fn, "__name__", "") == "run" and "_piece_ended" in callers:
                entered.set()
                deadline = time.monotonic() + 3
                while not made[0].closed and time.monotonic() < deadline:  # descheduled until the close
                    time.sleep(0.01)
                time.sleep(0.05)  # ... and the shutdown
            return super().submit(fn, *a, **k)

    monkeypatch.setattr(prepare._DownloadsAhead, "__init__", init)
    monkeypatch.setattr(prepare, "ThreadPoolExecutor", SlowSubmit)
    pieces = []
    real_answered = prepare._DownloadsAhead._answered
    monkeypatch.setattr(
        prepare._DownloadsAhead, "_answered", lambda self, n, p: (pieces.append(p), real_answered(self, n, p))[1]
    )
    gen = prepare._downloads_ahead(job, prepare._archive_sets(job.files))
    next(gen)
    assert entered.wait(20)
    t = threading.Thread(target=gen.close, daemon=True)
    t.start()
    t.join(15)
    hung = t.is_alive()
    if hung:  # unstick the fetching thread so that the test process can end
        for p in pieces:
            if p is not None:
                with p._idle:
                    p._spoiled, p._busy = "unstuck by the test", 0
                    p._idle.notify_all()
        t.join(30)
    assert not hung, "closing the chunk's downloads hangs: a claimed piece was never run (busy never 0)"


@pytest.mark.parametrize("piece_mb", [0, 0.01])
def test_the_set_the_conversion_waits_for_starts_even_when_a_callback_is_late(tmp_path, http, monkeypatch, piece_mb):
    """connections=1: the set before failed, but its callback (which frees the connection) comes late."""
    urls = [http.url("missing.zip")] + serve_tiles(http, 1)
    real_ended = prepare._DownloadsAhead._ended

    def late(self, number, future):
        time.sleep(0.5)
        real_ended(self, number, future)

    monkeypatch.setattr(prepare._DownloadsAhead, "_ended", late)
    ledger = run_chunk(chunk(tmp_path, urls, connections=1, ahead_mb=0, piece_mb=piece_mb))
    assert [r["status"] for r in ledger.files] == ["failed", "ok"]


def test_the_first_answers_connection_is_freed_at_once(tmp_path, http, caplog):
    """Closed after its first piece, it goes back to the pool: no "pool is full" discards."""
    http.rate_bytes_per_s = 3_000_000
    urls = serve_tiles(http, 3)
    piece = min(len(b) for b in http.files.values()) // 4
    ledger = run_chunk(chunk(tmp_path, urls, connections=3, piece_mb=piece / 1e6))
    assert [r["status"] for r in ledger.files] == ["ok"] * 3
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]


def test_a_full_disk_in_a_helpers_piece_fails_the_job_and_leaves_nothing(tmp_path, http, monkeypatch):
    http.rate_bytes_per_s = 3_000_000
    urls = serve_tiles(http, 4)
    piece = min(len(b) for b in http.files.values()) // 4
    real_open = open
    calls = []

    def full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and mode == "r+b" and threading.current_thread().name.startswith("download"):
            calls.append(path)
            if len(calls) == 5:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    job = chunk(tmp_path, urls, connections=3, piece_mb=piece / 1e6)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("exc", _raises(run_chunk, job)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the job hangs"
    assert isinstance(out["exc"], DiskFull), out["exc"]
    assert not download_threads()
    assert not (tmp_path / "scratch").exists()


def _raises(fn, *a):
    try:
        fn(*a)
    except BaseException as exc:  # noqa: BLE001
        return exc
    return None


def version(record: dict) -> tuple[dict, list]:
    """A record's validators and outputs, without the Date its download came at (another per run)."""
    return {k: v for k, v in record["remote"].items() if k != "date"}, record["outputs"]
