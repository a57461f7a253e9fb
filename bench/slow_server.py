"""Benchmark: the source pipeline against a slow server (issue 15, point 1).

The generated source of bench/source_pipeline.py is served by the tests' HTTP server
(tests/support/httpserver.py, in its own process) with a bandwidth cap per connection and an added
latency per request, like a remote state portal (2 MB/s and 50 ms by default). In the same run:

- the floor: a bare thread pool of `--connections` downloading, handing each file to a process
  pool of `--cores` that converts it (unzip, COG with the same options, mask polygons), then one tar;
- the workflow with the same number of connections: `download.connections` = connections / cores
  per chunk job, `--resources net=connections`; `--piece-mb` sets `download.piece_mb` (files of two
  pieces and more come in byte ranges over the job's free connections; default: the config's), and
  several values run one workflow each in the same rounds (e.g. `--piece-mb 1 0`: 1 MB pieces,
  then every file over one connection); `--against DIR` runs another checkout's workflow (DIR, e.g. a
  git worktree of an earlier commit) in the same rounds too;
- Mapterhorn's sequential `wget` for the same bytes at the same rate (computed: bytes / rate plus
  the latency per file), for scale.

Floor and workflow alternate `--repeat` times; medians. Target: workflow ≤ 1.25 × floor. Not a test.

    .venv/bin/python bench/slow_server.py [--files 200] [--connections 32] [--rate-mb 2] [--latency-ms 50]
    .venv/bin/python bench/slow_server.py --repeat 5 --against ../tilewise-before   # two versions
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import shutil
import tarfile
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from source_pipeline import REPO, children_cpu, floor_convert, make_source, run_workflow, settle

import _support_path  # noqa: F401 (tests/support on sys.path)
from support import httpserver


class FolderFiles(dict):
    """The served files, read from a folder when asked (the server looks them up with `get`)."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def get(self, path, default=None):
        file = self.folder / path.lstrip("/")
        return file.read_bytes() if file.is_file() else default


def _serve(folder: str, rate: float, latency: float, port: mp.connection.Connection) -> None:
    server = httpserver.Server(files=FolderFiles(Path(folder)), delay=latency, rate_bytes_per_s=rate)
    httpd, thread = httpserver.start(server)
    port.send(server.port)
    thread.join()


def serve(folder: Path, rate: float, latency: float) -> tuple[mp.Process, int]:
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("fork").Process(target=_serve, args=(str(folder), rate, latency, send), daemon=True)
    process.start()
    return process, receive.recv()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as r:
        return r.read()


def run_floor(urls: list[str], work: Path, cores: int, connections: int) -> dict:
    work.mkdir(parents=True)
    cpu0, own0, t0 = children_cpu(), time.process_time(), time.perf_counter()
    with mp.get_context("fork").Pool(cores) as converters, ThreadPoolExecutor(connections) as downloads:
        convert = functools.partial(floor_convert, out=str(work))
        pending = [converters.apply_async(convert, (data,)) for data in downloads.map(fetch, urls)]
        for p in pending:
            p.get()
    with tarfile.open(work / "all.tar", "w") as tar:
        for cog in sorted(work.glob("*.tif")):
            tar.add(cog, f"files/{cog.name}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu0 + time.process_time() - own0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--px", type=int, default=1000, help="tile width and height in pixels")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32, help="in all (the workflow: per job × jobs)")
    ap.add_argument("--rate-mb", type=float, default=2.0, help="per connection, MB/s")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--piece-mb", type=float, nargs="+", default=[None], help="download.piece_mb; several: one workflow each"
    )
    ap.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. a git worktree of an earlier commit): its workflow runs in the same rounds",
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tilewise-slow-"))
    try:
        served = root / "served"
        served.mkdir()
        server, port = serve(served, args.rate_mb * 1e6, args.latency_ms / 1000)
        make_source(root, served, args.files, args.px, f"http://127.0.0.1:{port}")
        urls = (root / "catalog" / "bench" / "file_list.txt").read_text().split()
        per_job = max(1, args.connections // args.cores)
        variants = {}  # label → (extra snakemake arguments, checkout)
        for piece_mb in args.piece_mb:
            settings = root / f"download-{piece_mb}.yaml"  # merged into config/config.yaml's download: section
            pieces = "" if piece_mb is None else f", piece_mb: {piece_mb:g}"
            settings.write_text(f"download: {{connections: {per_job}{pieces}}}\n")
            extra = ["--configfile", str(settings), "--resources", f"net={per_job * args.cores}"]
            variants["" if piece_mb is None else f", piece_mb {piece_mb:g}"] = (extra, REPO)
        if args.against:
            variants[f", {args.against.name}"] = (next(iter(variants.values()))[0], args.against)
        floors, wfs = [], {label: [] for label in variants}
        for i in range(args.repeat):
            settle(root / "floor", root / "workflow")
            floors.append(run_floor(urls, root / "floor", args.cores, args.connections))
            line = f"run {i + 1}: floor {floors[-1]['wall_s']:.2f} s"
            for label, (extra, repo) in variants.items():
                settle(root / "floor", root / "workflow")
                wfs[label].append(run_workflow(root / "workflow", root / "catalog", args.cores, extra, repo))
                line += f", workflow{f' ({label[2:]})' if label else ''} {wfs[label][-1]['wall_s']:.2f} s"
            print(line, flush=True)
        server.kill()
        report(args, floors, wfs, sum(z.stat().st_size for z in served.glob("*.zip")))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(args, floors: list[dict], wfs: dict[str, list[dict]], total_bytes: int) -> None:
    floor = float(np.median([r["wall_s"] for r in floors]))
    wget = total_bytes / (args.rate_mb * 1e6) + args.files * args.latency_ms / 1000
    print(
        f"source: {args.files} zipped {args.px}×{args.px} float32 tiles ({total_bytes / 1e6:.0f} MB), "
        f"{args.rate_mb:g} MB/s per connection, {args.latency_ms:g} ms latency, {args.cores} cores, "
        f"medians of {args.repeat} runs"
    )
    print(f"floor ({args.connections} connections)        {floor:8.2f} s")
    for which, rows in wfs.items():
        wf, last = float(np.median([r["wall_s"] for r in rows])), rows[-1]
        print(f"workflow ({args.connections} connections{which})     {wf:8.2f} s")
        print(f"ratio workflow/floor{which}            {wf / floor:.2f} (target ≤ 1.25)")
        peak = (last["peak_disk_bytes"] - last["final_disk_bytes"]) / 1e6
        print(f"peak disk − final (workflow{which})    {peak:.1f} MB")
    print(f"sequential wget (Mapterhorn)    {wget:8.1f} s (computed: bytes / rate + latency per file)")


if __name__ == "__main__":
    main()
