"""Benchmark: the source pipeline against the floor, on one generated source served on 127.0.0.1.

The source is N zipped float32 tiles (1000×1000 by default) in EPSG:25832 with 1 m pixels and
smooth terrain, one in seven with a ragged nodata collar, like a German 1 m state DEM. In the same
run it measures

- the workflow from a cold start (`snakemake --cores C`): wall and CPU time, peak disk (sampled
  while it runs), final disk, the number of jobs;
- the floor: a bare process pool on the same cores that per file downloads from the same server,
  unzips, writes the COG with the same options and polygonizes the valid-data mask, then writes one
  tar of all COGs;

and prints the ratio workflow/floor. The two alternate `--repeat` times (medians are printed), each
starting after the previous run's files are deleted and written back. Not a test.

    .venv/bin/python bench/source_pipeline.py --files 200 [--px 1000] [--cores 2] [--repeat 3]
    .venv/bin/python bench/source_pipeline.py --files 200 --repeat 5 --against ../tilewise-old   # two versions
"""

from __future__ import annotations

import argparse
import functools
import io
import multiprocessing as mp
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from rasterio.features import shapes
from rasterio.transform import from_origin

from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
from tilewise_demo.source import ragged_collar, terrain

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.catalog import write_entry
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]
NODATA = -9999.0
DOWNLOAD_CONNECTIONS = 2  # config/config.yaml download.connections
AHEAD_MB = 512  # config/config.yaml download.ahead_mb


def tile_zip(i: int, px: int) -> bytes:
    col, row = i % 40, i // 40
    data = terrain(col * px, row * px, px, px)
    if i % 7 == 3:
        data = ragged_collar(data, i)
    with rasterio.MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=px,
            height=px,
            count=1,
            dtype="float32",
            crs="EPSG:25832",
            transform=from_origin(400_000 + col * px, 5_700_000 - row * px, 1, 1),
            nodata=NODATA,
        ) as ds:
            ds.write(data, 1)
        tif = mem.read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"dgm1_{i:05d}.tif", tif)
    return buf.getvalue()


def make_source(root: Path, served: Path, n: int, px: int, base_url: str) -> None:
    with mp.Pool() as pool:
        for i, data in enumerate(pool.imap(functools.partial(tile_zip, px=px), range(n), chunksize=8)):
            (served / f"dgm1_{i:05d}.zip").write_bytes(data)
    urls = [f"{base_url}/dgm1_{i:05d}.zip" for i in range(n)]
    metadata = {
        "name": "bench",
        "website": "-",
        "license": "CC0-1.0",
        "producer": "bench",
        "resolution": 1.0,
        "access_year": 2026,
    }
    write_entry(root / "catalog", "bench", urls, metadata, REPO / "catalog" / "demo" / "LICENSE.pdf")


def _serve_forever(folder: str, port: mp.connection.Connection) -> None:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=folder)
    SimpleHTTPRequestHandler.log_message = lambda *a: None  # quiet
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port.send(httpd.server_address[1])
    httpd.serve_forever()


def serve(folder: Path) -> tuple[mp.Process, int]:
    """An HTTP server in its own process: the disk sampler in this one must not slow its threads."""
    receive, send = mp.Pipe(duplex=False)
    server = mp.get_context("fork").Process(target=_serve_forever, args=(str(folder), send), daemon=True)
    server.start()
    return server, receive.recv()


def disk_bytes(folder: Path) -> int:
    """Blocks in use under `folder`; a file of several hard links once (the published tarball and its
    kept link in work/{source}/published/)."""
    total, linked = 0, set()
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in linked:
                    continue
                linked.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


class DiskSampler(threading.Thread):
    """The folder's peak disk use, sampled every `every` s, or less often where one walk of its files
    is long: it runs beside the workflow on the same cores, and at 20,000 files a walk costs 0.1 s
    of CPU (sampled every 0.1 s, it took half a core from the workflow the floor does not lose)."""

    def __init__(self, folder: Path, every: float = 0.1, duty: float = 0.02):
        super().__init__(daemon=True)
        self.folder, self.every, self.duty, self.peak, self.stop = folder, every, duty, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            cpu = time.thread_time()
            self.peak = max(self.peak, disk_bytes(self.folder))
            self.stop.wait(max(self.every, (time.thread_time() - cpu) / self.duty))


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_workflow(work: Path, catalog: Path, cores: int, extra: list[str], repo: Path = REPO) -> dict:
    work.mkdir(parents=True)
    sampler = DiskSampler(work)
    sampler.start()
    cpu0, t0 = children_cpu(), time.perf_counter()
    config = ["--config", f"catalog={catalog}", "source=bench", "state=[]"]
    proc = subprocess.run(snakemake_cmd(repo, work, *config, *extra, cores=cores), capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    jobs = int(re.findall(r"(\d+) of (\d+) steps", proc.stderr)[-1][1])
    final = disk_bytes(work)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_disk_bytes": max(sampler.peak, final),  # the last sample may come before the last output
        "final_disk_bytes": final,
        "jobs": jobs,
        "outputs_bytes": sum(disk_bytes(work / d) for d in ("source-store", "polygon-store", "tar-store", "reports")),
    }


# --- the floor: the same per-file work with nothing around it ---


def floor_one(url: str, out: str) -> str:
    name = url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url) as r:
        data = r.read()
    floor_convert(data, out)
    return name


def floor_convert(data: bytes, out: str) -> None:
    """The floor's work on one downloaded zip: unzip, COG with the same options, mask polygons."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        member = zf.namelist()[0]
        tif = zf.read(member)
    cog = Path(out) / (Path(member).stem + ".tif")
    with rasterio.MemoryFile(tif) as mem, mem.open() as src:
        rasterio.shutil.copy(src, cog, driver="COG", **MAPTERHORN_COG_OPTIONS)
    with rasterio.open(cog) as ds:
        mask = ds.dataset_mask() > 0
        polys = [
            shapely.geometry.shape(g) for g, v in shapes(mask.astype(np.uint8), mask=mask, transform=ds.transform) if v
        ]
    shapely.union_all(polys)


def run_floor(urls: list[str], work: Path, cores: int) -> dict:
    work.mkdir(parents=True)
    cpu0, own0, t0 = children_cpu(), time.process_time(), time.perf_counter()
    with mp.get_context("fork").Pool(cores) as pool:
        pool.map(functools.partial(floor_one, out=str(work)), urls, chunksize=4)
    with tarfile.open(work / "all.tar", "w") as tar:
        for cog in sorted(work.glob("*.tif")):
            tar.add(cog, f"files/{cog.name}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu0 + time.process_time() - own0}


def settle(*folders: Path) -> None:
    """Remove a finished run's files and write back dirty pages, so the next run does not pay for them."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--px", type=int, default=1000, help="tile width and height in pixels")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="floor and workflow runs, alternating; medians shown")
    ap.add_argument("--keep", type=Path, help="work here and keep everything (the last runs' outputs)")
    ap.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. a git worktree of an earlier commit): its workflow runs in the same rounds",
    )
    ap.add_argument("snakemake_args", nargs="*", help="extra snakemake arguments, after --")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="tilewise-bench-"))
    try:
        served = root / "served"
        served.mkdir(parents=True)
        server, port = serve(served)
        make_source(root, served, args.files, args.px, f"http://127.0.0.1:{port}")
        urls = (root / "catalog" / "bench" / "file_list.txt").read_text().split()
        floors, wfs, others = [], [], []
        for i in range(args.repeat):
            settle(root / "floor", root / "workflow")
            floors.append(run_floor(urls, root / "floor", args.cores))
            settle(root / "floor")
            wfs.append(run_workflow(root / "workflow", root / "catalog", args.cores, args.snakemake_args))
            line = f"run {i + 1}: floor {floors[-1]['wall_s']:.2f} s, workflow {wfs[-1]['wall_s']:.2f} s"
            if args.against:
                settle(root / "workflow")
                others.append(run_workflow(root / "workflow", root / "catalog", args.cores, [], args.against))
                line += f", {args.against.name} {others[-1]['wall_s']:.2f} s"
            print(line, flush=True)
        server.kill()
        report(args, floors, wfs, sorted(served.glob("*.zip")))
        if others:
            other = {k: float(np.median([r[k] for r in others])) for k in ("wall_s", "cpu_s")}
            floor = float(np.median([r["wall_s"] for r in floors]))
            print(
                f"{args.against} (same rounds): wall {other['wall_s']:.2f} s, CPU {other['cpu_s']:.2f} s, "
                f"ratio {other['wall_s'] / floor:.2f}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def report(args, floors: list[dict], wfs: list[dict], zips: list[Path]) -> None:
    floor = {k: float(np.median([r[k] for r in floors])) for k in ("wall_s", "cpu_s")}
    wf = {k: float(np.median([r[k] for r in wfs])) for k in ("wall_s", "cpu_s")}
    last = wfs[-1]
    per_file_ms = (wf["wall_s"] - floor["wall_s"]) / args.files * 1000
    tiles = f"{args.files} zipped {args.px}×{args.px} float32 tiles"
    print(f"source: {tiles}, {args.cores} cores, medians of {args.repeat} runs")
    print(f"{'':24}{'wall s':>9}{'CPU s':>9}")
    print(f"{'floor (process pool)':24}{floor['wall_s']:9.2f}{floor['cpu_s']:9.2f}")
    print(f"{'workflow (snakemake)':24}{wf['wall_s']:9.2f}{wf['cpu_s']:9.2f}")
    print(f"ratio workflow/floor    {wf['wall_s'] / floor['wall_s']:.2f}")
    print(f"orchestration per file  {per_file_ms:.1f} ms (wall above the floor / files)")
    print(f"jobs                    {last['jobs']}")
    final, outputs = last["final_disk_bytes"] / 1e6, last["outputs_bytes"] / 1e6
    peak = max(r["peak_disk_bytes"] for r in wfs)
    print(f"final disk              {final:.1f} MB (outputs {outputs:.1f} MB)")
    print(f"peak disk (sampled)     {peak / 1e6:.1f} MB (highest of the runs)")
    inflight = peak - last["final_disk_bytes"]
    print(f"peak − final            {inflight / 1e6:.1f} MB (downloads, unpacked files and COGs in flight)")
    # a running chunk holds at most its budget of downloads not yet converted (no more than its own
    # files), the downloads in flight, and one set being converted: unpacked raster and COG
    zip_bytes = float(np.mean([z.stat().st_size for z in zips]))
    per_chunk_files = len(zips) / max(1, last["jobs"] - 4)  # jobs: the chunks, merge, tarball, map, all
    ahead = min(AHEAD_MB * 1e6, per_chunk_files * zip_bytes)
    converting = args.px**2 * 4 + last["outputs_bytes"] / 2 / len(zips)
    bound = args.cores * (ahead + DOWNLOAD_CONNECTIONS * zip_bytes + converting)
    print(
        f"working-set bound       {bound / 1e6:.1f} MB ({args.cores} chunks × (downloads ahead ≤ {AHEAD_MB} MB + "
        f"{DOWNLOAD_CONNECTIONS} in flight + one set)); "
        f"peak ≤ final + bound: {'yes' if peak <= last['final_disk_bytes'] + bound else 'NO'}"
    )


if __name__ == "__main__":
    main()
