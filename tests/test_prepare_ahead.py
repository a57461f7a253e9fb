"""Downloads run ahead of the conversion within the byte budget, on a slow server and a fast one."""

import threading
from pathlib import Path

import pytest

from tilewise.sources.prepare import run_chunk

from support.catalog import serve_tiles
from support.chunks import chunk_job


class DownloadSampler(threading.Thread):
    """The bytes under the chunk's download folder, sampled every few milliseconds."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.peak, self.done = folder, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file()))
            except FileNotFoundError:  # a set deleted while it was walked
                pass
            self.done.wait(0.002)


@pytest.mark.parametrize("rate, budget_files", [(0, 0), (0, 3), (4_000_000, 2)])
def test_downloads_ahead_stay_within_the_byte_budget(tmp_path, http, rate, budget_files):
    """A fast server would let every download finish before the first conversion; the budget (and the
    connections in flight on top of it) bounds what sits on disk, and every file still converts."""
    http.rate_bytes_per_s = rate
    urls = serve_tiles(http, 14)
    largest = max(len(b) for b in http.files.values())
    connections = 4
    job = chunk_job(tmp_path, urls, connections=connections, ahead_mb=budget_files * largest / 1e6)
    sampler = DownloadSampler(tmp_path / "scratch" / "download")
    sampler.start()
    ledger = run_chunk(job)
    sampler.done.set()
    sampler.join()
    assert [r["status"] for r in ledger.files] == ["ok"] * 14
    assert 0 < sampler.peak <= (budget_files + connections) * largest
    assert len(http.log) == 14  # each file fetched once


def test_a_chunk_on_a_slow_server_takes_its_files_in_pieces_and_stores_the_same_bytes(tmp_path, http):
    """Free connections take the next piece of the earliest file: every file is split, comes in
    list order, and its record (validators, md5) and COG are those of the file fetched whole."""
    http.rate_bytes_per_s = 2_000_000
    urls = serve_tiles(http, 6)
    piece = min(len(b) for b in http.files.values()) // 3
    runs = {}
    for name, piece_mb in (("whole", 0), ("pieces", piece / 1e6)):
        http.log.clear()
        (tmp_path / name).mkdir()
        job = chunk_job(tmp_path / name, urls, connections=4, piece_mb=piece_mb)
        runs[name] = (run_chunk(job), list(http.log))
    (whole, whole_log), (split, split_log) = runs["whole"], runs["pieces"]
    assert [r["status"] for r in split.files] == ["ok"] * 6
    assert [version(r) for r in split.files] == [version(r) for r in whole.files]
    assert all(rng is None for _, rng, _ in whole_log)
    for path in http.files:  # one whole request (the first piece), then Range requests, all answered 206
        asked = [(rng, status) for p, rng, status in split_log if p == path]
        assert asked[0] == (None, 200) and len(asked) >= 3 and all(s == 206 for r, s in asked[1:])
    first_requests = [p for p, rng, _ in split_log if rng is None]
    assert first_requests == sorted(http.files), "files are started in list order"


def version(record: dict) -> tuple[dict, list]:
    """A record's validators and outputs, without the Date its download came at (another per run)."""
    return {k: v for k, v in record["remote"].items() if k != "date"}, record["outputs"]
