"""Crash trials at scale: SIGKILL the source pipeline at random moments, resume, compare.

Each trial kills `snakemake` (and its jobs) after a random delay, runs `--unlock` and
`--rerun-incomplete`, and checks the tarball's md5 against an uninterrupted run and that no
partial file sits under a final name. Prints the tally. Not a test (tests/test_crash.py is).

    .venv/bin/python bench/crash_trials.py --trials 50 [--files 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
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
from support.catalog import write_entry
from support.crash import partial_files, resume, run_killed
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


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
    cfg.write_text(
        yaml.safe_dump({"catalog": str(root / "catalog"), "source": "crash", "state": [], "files_per_chunk": 2})
    )
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50)
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
        tally = {
            "killed mid-run": 0,
            "finished before the kill": 0,
            "same md5": 0,
            "different md5": 0,
            "resume failed": 0,
            "partial files left": 0,
        }
        for trial in range(args.trials):
            work = root / f"trial{trial}"
            cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
            killed = run_killed(cmd, rng.uniform(0.3, clean_s))
            tally["killed mid-run" if killed else "finished before the kill"] += 1
            done = resume(cmd)
            if done.returncode:
                tally["resume failed"] += 1
                print(f"trial {trial}: resume failed\n{done.stderr[-1500:]}")
                continue
            same = md5(work / "tar-store" / "crash.tar") == want
            tally["same md5" if same else "different md5"] += 1
            tally["partial files left"] += bool(partial_files(work / "source-store", work / "tar-store"))
            shutil.rmtree(work)
        print(f"{args.trials} trials on a {args.files}-file source (uninterrupted run {clean_s:.1f} s):")
        for k, v in tally.items():
            print(f"  {k:<26}{v}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
