"""Puts this repository's src/ first on sys.path, so a job runs the workflow's own code.

Every script imports it before anything of tilewise: under `--sdm conda` (or any interpreter where
the package is not installed) the package is then still importable, and where an older copy is
installed, the repository's code wins.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
# first, even when it is on the path already: Snakemake hands a job its own search path, where an
# installed copy (another checkout's editable install, an older release) can come before it
if sys.path[0] != SRC:
    while SRC in sys.path:
        sys.path.remove(SRC)
    sys.path.insert(0, SRC)
_loaded = sys.modules.get("tilewise")
if _loaded is not None and not str(Path(_loaded.__file__).resolve()).startswith(str(Path(SRC).resolve())):
    # only a tilewise object among the job's params or config can import it before this file runs
    raise ImportError(
        f"tilewise was loaded from {_loaded.__file__} before {SRC} could be put first: "
        "hand script jobs plain values (str, int, list, dict), not tilewise objects"
    )
