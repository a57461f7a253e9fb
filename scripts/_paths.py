"""Makes the tilewise package importable when a rule runs in a conda env without it installed."""

import sys
from pathlib import Path

try:
    import tilewise  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
