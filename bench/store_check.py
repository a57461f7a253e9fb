"""What the planning check of the store costs at real scale (not a test; tests/test_store.py is).

Builds a working folder of the size of the real `denrw` entry — by default 35,860 one-byte COGs in
512 chunk ledgers and the merge's store index — and times `store_index.damaged_chunks`, the check
every run makes when it is planned: with the index (one stat per COG) and without one (only the
first and last bytes of every ledger). The floor is a bare `os.stat` loop over the same files.
Then it deletes one COG and cuts one ledger and checks that both chunks are reported.

    .venv/bin/python bench/store_check.py [--files 35860] [--chunks 512] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tilewise.sources import ledger, store_index


def build(root: Path, files: int, chunks: int) -> dict[str, Path]:
    store = root / "source-store" / "s"
    store.mkdir(parents=True)
    index, ledgers = {}, {}
    for c in range(chunks):
        chunk = f"{c:04d}"
        records, cogs = [], []
        for i in range(c, files, chunks):
            name = f"dgm1_32_{i:06d}_1_nw_2022.tif"
            (store / name).write_bytes(b"x")
            out = {"filename": name, "bytes": 1, "md5": "0" * 32, "staged": f"00000-{name}", "raster": name}
            out |= {"crs": "EPSG:25832", "coverage_wkb": "00" * 93, "left": 0.0, "bottom": 0.0, "right": 1.0}
            records.append({"url": f"https://h/{name}", "file": name, "status": "ok", "outputs": [out]})
            cogs.append(store / name)
        ledgers[chunk] = root / "work" / "s" / "chunks" / f"{chunk}.json"
        ledger.write(ledgers[chunk], ledger.Ledger("s", chunk, {}, records))
        index[chunk] = {"ledger": ledgers[chunk], "files": cogs}
    coverage = root / "polygon-store" / "s.gpkg"
    coverage.parent.mkdir(parents=True)
    coverage.write_bytes(b"gpkg")
    bounds = store / "bounds.csv"
    bounds.write_text("filename\n")
    store_index.write(root / "work" / "s" / "store-index.json", index, coverage, bounds)
    return ledgers


def timed(repeat: int, fn) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=35_860)
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ledgers = build(root, args.files, args.chunks)
        store, index = root / "source-store" / "s", root / "work" / "s" / "store-index.json"
        names = [os.path.join(store, n) for n in os.listdir(store)]
        floor = timed(args.repeat, lambda: [os.stat(n) for n in names])
        with_index = timed(args.repeat, lambda: store_index.damaged_chunks(index, ledgers, store))
        without = timed(args.repeat, lambda: store_index.damaged_chunks(root / "none.json", ledgers, store))
        (store / "dgm1_32_000001_1_nw_2022.tif").unlink()
        last = ledgers[f"{args.chunks - 1:04d}"]
        last.write_bytes(last.read_bytes()[:100])
        found = store_index.damaged_chunks(index, ledgers, store)
    print(f"files                         {args.files:,} COGs in {args.chunks} chunks")
    print(f"floor (os.stat of every COG)  {floor:.3f} s")
    print(f"check with the store index    {with_index:.3f} s")
    print(f"check without an index        {without:.3f} s")
    print(f"damage found                  {', '.join(sorted(found))}")


if __name__ == "__main__":
    main()
