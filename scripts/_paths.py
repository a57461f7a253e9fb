"""Puts this repository's src/ first on sys.path, so a job runs the workflow's own code.

Every script imports it before anything of tilewise: under `--sdm conda` (or any interpreter where
the package is not installed) the package is then still importable, and where an older copy is
installed, the repository's code wins.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
