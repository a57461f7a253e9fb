"""What a refresh costs when nothing changed (not a test; tests/test_refresh.py is).

Builds a working folder of the size of the real `denrw` entry — by default 36,000 URLs in the
automatic chunks (64), each chunk's ledger recording the validators the server gives — serves the
files from the tests' HTTP server (ETag, Last-Modified) in its own process on 127.0.0.1, and times

- the floor: a bare thread pool of `--connections` threads doing one urllib3 HEAD per URL;
- the refresh check (`tilewise.sources.refresh.check`, as the Snakefile calls it) with the same
  number of connections (a one-byte Range GET per file, HEAD only where it is refused): files per
  second, and that it found nothing changed;
- the workflow's planning pass with and without the refresh (`snakemake -n`, wall time): their
  difference is what `--config refresh=True` adds to a run.

    .venv/bin/python bench/refresh.py [--files 36000] [--connections 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

from tilewise.shared.download import RemoteState
from tilewise.sources import ledger, refresh
from tilewise.sources.catalog import parse_file_list
from tilewise.sources.chunks import assign_chunks

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.catalog import make_entry
from support.config import download_settings
from support.httpserver import Server, start
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]


def body(i: int) -> bytes:
    return i.to_bytes(4, "big") * 16


def _serve_forever(files: int, port) -> None:
    server = Server(files={f"/f/dgm1_{i:06d}.tif": body(i) for i in range(files)})
    httpd, thread = start(server)
    port.send(server.port)
    thread.join()


def serve(files: int) -> tuple[mp.Process, int]:
    """The server in its own process: the client's threads must not share its GIL."""
    receive, send = mp.Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=_serve_forever, args=(files, send), daemon=True)
    proc.start()
    return proc, receive.recv()


def build(root: Path, files: int, port: int) -> tuple[dict, dict, dict]:
    """The catalog entry and, per chunk, a ledger whose records hold what the server says of each file."""
    urls = [f"http://127.0.0.1:{port}/f/dgm1_{i:06d}.tif" for i in range(files)]
    make_entry(root / "catalog", "bench", urls)
    chunks = assign_chunks(parse_file_list(root / "catalog" / "bench" / "file_list.txt"))
    validators = Server()
    ledgers, remotes = {}, {}
    for chunk, entries in chunks.items():
        records = []
        for e in entries:
            data = body(int(e.name[5:11]))
            tags = validators.validators(data)
            state = RemoteState(e.url, e.url, tags["ETag"], tags["Last-Modified"], len(data), len(data), "0" * 32)
            records.append({"url": e.url, "file": e.name, "status": "ok", "remote": dataclasses.asdict(state)})
        ledgers[chunk] = root / "run" / "work" / "bench" / "chunks" / f"{chunk}.json"
        ledger.write(ledgers[chunk], ledger.Ledger("bench", chunk, {}, records))
        remotes[chunk] = root / "run" / "work" / "bench" / "remote" / f"{chunk}.json"
    return chunks, ledgers, remotes


def floor(urls: list[str], connections: int) -> float:
    pool = urllib3.PoolManager(maxsize=connections)
    start_s = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as ex:
        statuses = list(ex.map(lambda u: pool.request("HEAD", u).status, urls))
    assert set(statuses) == {200}, set(statuses)
    return time.perf_counter() - start_s


def plan_s(root: Path, connections: int, *extra: str) -> float:
    config = ["--config", f"catalog={root / 'catalog'}", "source=bench", "state=[]", *extra]
    cmd = snakemake_cmd(REPO, root / "run", "-n", "--resources", f"net={connections}", *config)
    start_s = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    if extra and "0 changed" not in proc.stderr:
        raise SystemExit(f"the refresh found changes where there are none:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=36_000)
    parser.add_argument("--connections", type=int, default=8, help="the `net` resource of the default profile")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server, port = serve(args.files)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            chunks, ledgers, remotes = build(root, args.files, port)
            urls = [e.url for entries in chunks.values() for e in entries]
            settings = download_settings()
            floors, checks = [], []
            for _ in range(args.repeat):  # alternate, so both see the same machine
                floors.append(floor(urls, args.connections))
                start_s = time.perf_counter()
                found = refresh.check(chunks, ledgers, remotes, lambda name: False, settings, args.connections, root)
                checks.append(time.perf_counter() - start_s)
                assert found.heads == args.files and not found.changed_chunks(), found.changed_chunks()
            plain = statistics.median(plan_s(root, args.connections) for _ in range(args.repeat))
            with_refresh = statistics.median(plan_s(root, args.connections, "refresh=True") for _ in range(args.repeat))
    finally:
        server.kill()
    floor_s, check_s = statistics.median(floors), statistics.median(checks)
    print(f"files                         {args.files:,} URLs in {len(chunks)} chunks, {args.connections} connections")
    print(f"floor (bare HEAD thread pool) {floor_s:.2f} s, {args.files / floor_s:,.0f} HEAD/s")
    print(f"refresh check                 {check_s:.2f} s, {args.files / check_s:,.0f} files/s")
    print(f"ratio check/floor             {check_s / floor_s:.2f}")
    print(f"planning pass, no refresh     {plain:.2f} s (snakemake -n)")
    print(f"planning pass with refresh    {with_refresh:.2f} s (snakemake -n --config refresh=True)")
    print("changed                       none found")


if __name__ == "__main__":
    main()
