"""Benchmark: planning the largest real sources (issue 15, point 4).

Writes a catalog entry listing N URLs (72,000 by default, like debayern's `…/dgm1/{east}_{north}.tif`)
and measures a dry-run (`snakemake -n`) of it: wall time and peak RSS (of snakemake and anything it
waited for). The floor is the same dry-run of a one-URL source in the same run: Snakemake's own
start-up. Targets: ≤ 10 s and ≤ 1 GB at 72,000 URLs. Not a test.

    .venv/bin/python bench/plan_scale.py [--urls 72000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from _measure import measured

import _support_path  # noqa: F401 (tests/support on sys.path)
from support.catalog import write_entry
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]
METADATA = {"website": "-", "license": "CC-BY-4.0", "producer": "bench", "resolution": 1.0, "access_year": 2026}


def urls(n: int) -> list[str]:
    side = int(np.ceil(np.sqrt(n)))
    return [f"https://download1.bayernwolke.de/a/dgm/dgm1/{560 + i % side}_{5230 + i // side}.tif" for i in range(n)]


def dry_run(root: Path, name: str) -> dict:
    work = root / f"work-{name}"
    config = ["--config", f"catalog={root / 'catalog'}", f"source={name}", "state=[]"]
    result = measured(snakemake_cmd(REPO, work, "-n", *config, cores=2))
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--urls", type=int, default=72_000)
    ap.add_argument("--repeat", type=int, default=3, help="floor and dry-run alternate; medians shown")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tilewise-plan-"))
    try:
        write_entry(root / "catalog", "big", urls(args.urls), {"name": "big", **METADATA})
        write_entry(root / "catalog", "one", urls(1), {"name": "one", **METADATA})
        floors, runs = [], []
        for _ in range(args.repeat):
            floors.append(dry_run(root, "one"))
            runs.append(dry_run(root, "big"))
        report(args, floors, runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(args, floors: list[dict], runs: list[dict]) -> None:
    def median(rows, key):
        return float(np.median([r[key] for r in rows]))

    print(f"dry-run (snakemake -n) of one source, medians of {args.repeat} runs")
    print(f"{'':28}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}")
    for label, rows in (("floor: 1 URL", floors), (f"{args.urls:,} URLs", runs)):
        wall, cpu, rss = (median(rows, k) for k in ("wall_s", "cpu_s", "peak_rss_bytes"))
        print(f"{label:28}{wall:9.2f}{cpu:9.2f}{rss / 1e6:13.0f}")
    extra_ms = (median(runs, "wall_s") - median(floors, "wall_s")) / args.urls * 1e3
    print(f"planning per URL            {extra_ms * 1000:.0f} µs (wall above the floor / URLs)")
    ok = median(runs, "wall_s") <= 10 and median(runs, "peak_rss_bytes") <= 1e9
    print(f"target ≤ 10 s and ≤ 1 GB    {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
