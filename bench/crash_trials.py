"""Crash trials at scale: kill the source pipeline at random moments, or fill its disk; resume; compare.

Three kinds of trial, each against an uninterrupted run's tarball md5:

- group: SIGKILL to snakemake and every job it started (a power cut, a lost node), then `--unlock`
  and `--rerun-incomplete`;
- main: SIGKILL to the snakemake process alone: its jobs live on as orphans while the resume runs
  (the resume's jobs wait for them);
- disk: the working folder on a tmpfs of a random size between 10 % and 100 % of what an
  uninterrupted run writes; the run fails when the disk fills, the tmpfs is given room and the
  same resume must finish. Needs root (to mount); skipped with a message otherwise.

Prints a tally per kind. Not a test (tests/test_crash.py is).

    .venv/bin/python bench/crash_trials.py --trials 50 --main-trials 20 --disk-trials 10 [--files 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from tilewise_demo.source import geotiff_bytes

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.catalog import md5, write_entry
from support.crash import Killed, partial_files, resume
from support.disk import disk_bytes
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]


def make_source(root: Path, n: int) -> Path:
    served = root / "served"
    served.mkdir(parents=True)
    SimpleHTTPRequestHandler.log_message = lambda *a: None  # quiet
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    urls = []
    for i in range(n):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"t{i:03d}.tif", geotiff_bytes(i % 16))
        (served / f"t{i:03d}.zip").write_bytes(buf.getvalue())
        urls.append(f"http://127.0.0.1:{httpd.server_address[1]}/t{i:03d}.zip")
    metadata = {
        "name": "crash",
        "website": "-",
        "license": "CC0-1.0",
        "producer": "bench",
        "resolution": 1.0,
        "access_year": 2026,
    }
    write_entry(root / "catalog", "crash", urls, metadata, REPO / "catalog" / "demo" / "LICENSE.pdf")
    cfg = root / "crash.yaml"
    # min_free_disk_gb 0: the disk trials fill a real disk, not a threshold
    settings = {"catalog": str(root / "catalog"), "source": "crash", "state": [], "files_per_chunk": 2}
    cfg.write_text(yaml.safe_dump({**settings, "min_free_disk_gb": 0}))
    return cfg


RESULTS = ("same md5", "different md5", "resume failed", "files recorded as failed", "partial files left")


class Tally:
    def __init__(self, *names: str):
        self.counts = dict.fromkeys(names, 0)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def print(self, title: str) -> None:
        print(title)
        for name, n in self.counts.items():
            print(f"  {name:<34}{n}")


def file_failures(work: Path) -> int:
    """Files recorded as failed in the ledgers (a full disk or a race must never put one there)."""
    ledgers = (work / "work" / "crash" / "chunks").glob("*.json")
    return sum(f["status"] != "ok" for p in ledgers for f in json.loads(p.read_text())["files"])


def check_resumed(done: subprocess.CompletedProcess, work: Path, want: str, tally: Tally, label: str) -> None:
    if done.returncode:
        tally.add("resume failed")
        print(f"{label}: resume failed\n{done.stderr[-1500:]}")
        return
    same = md5(work / "tar-store" / "crash.tar") == want
    tally.add("same md5" if same else "different md5")
    tally.add("files recorded as failed", file_failures(work))
    tally.add("partial files left", bool(partial_files(work / "source-store", work / "tar-store")))


def kill_trials(root: Path, cfg: Path, want: str, clean_s: float, n: int, main_only: bool, rng) -> Tally:
    tally = Tally("killed mid-run", "finished before the kill", *RESULTS)
    for trial in range(n):
        work = root / f"{'main' if main_only else 'group'}{trial}"
        cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
        killed = Killed(cmd, rng.uniform(0.3, clean_s), main_only=main_only)
        tally.add("killed mid-run" if killed.killed else "finished before the kill")
        try:
            done = resume(cmd)
        finally:
            killed.end_orphans()
        check_resumed(done, work, want, tally, f"trial {trial}")
        shutil.rmtree(work)
    return tally


def disk_trials(root: Path, cfg: Path, want: str, clean_bytes: int, n: int, rng) -> Tally | None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        print("disk trials skipped: mounting a small tmpfs needs root")
        return None
    tally = Tally("disk filled (run failed)", "disk large enough", *RESULTS)
    for trial in range(n):
        disk = root / f"disk{trial}"
        disk.mkdir()
        size = int(clean_bytes * rng.uniform(0.1, 1.0))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], check=True)
        try:
            work = disk / "run"
            cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
            full = subprocess.run(cmd, capture_output=True, text=True)
            tally.add("disk filled (run failed)" if full.returncode else "disk large enough")
            tally.add("files recorded as failed", file_failures(work))  # by the run that filled the disk
            subprocess.run(["mount", "-o", f"remount,size={4 * clean_bytes + (64 << 20)}", str(disk)], check=True)
            check_resumed(resume(cmd), work, want, tally, f"disk trial {trial} ({size:,} bytes)")
        finally:
            subprocess.run(["umount", "--lazy", str(disk)], check=True)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50, help="kills of snakemake and its jobs")
    ap.add_argument("--main-trials", type=int, default=0, help="kills of the snakemake process alone")
    ap.add_argument("--disk-trials", type=int, default=0, help="runs on a disk too small (root)")
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tilewise-crash-"))
    try:
        cfg = make_source(root, args.files)
        t0 = time.monotonic()
        subprocess.run(snakemake_cmd(REPO, root / "clean", "--configfile", str(cfg)), check=True, capture_output=True)
        clean_s = time.monotonic() - t0
        want = md5(root / "clean" / "tar-store" / "crash.tar")
        rng = random.Random(args.seed)
        print(f"a {args.files}-file source; uninterrupted run {clean_s:.1f} s (kill delays: uniform in 0.3 s – that)")
        if args.trials:
            kill_trials(root, cfg, want, clean_s, args.trials, False, rng).print(
                f"{args.trials} kills of snakemake and its jobs:"
            )
        if args.main_trials:
            kill_trials(root, cfg, want, clean_s, args.main_trials, True, rng).print(
                f"{args.main_trials} kills of the snakemake process alone:"
            )
        if args.disk_trials:
            tally = disk_trials(root, cfg, want, disk_bytes(root / "clean"), args.disk_trials, rng)
            if tally:
                tally.print(f"{args.disk_trials} runs on a disk of 10–100 % of what a run writes:")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
