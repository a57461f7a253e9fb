"""Makes the test-support package (tests/support) importable from the benchmark scripts."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
