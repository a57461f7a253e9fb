import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.httpserver import Server, start
from support.snakemake import snakemake_cmd

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TILEWISE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED / "catalogs" / "mapterhorn"


def shared(rel: str) -> Path:
    """A file of the shared real test data; CI must have it, elsewhere its tests skip."""
    path = SHARED / rel
    if not path.exists():
        message = f"needs the shared test data at {SHARED} (set TILEWISE_SHARED_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def http():
    server = Server()
    httpd, thread = start(server)
    yield server
    httpd.shutdown()
    httpd.server_close()


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real workflow in `workdir` with the repository's Snakefile and default profile."""
    proc = subprocess.run(snakemake_cmd(REPO, workdir, *args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_state_inputs(tmp_path_factory) -> Path:
    """The demo state's generated inputs (`resources/demo_state`), made once per test process: a
    generation takes ~12 s, and the tests of the state pipeline are about what comes after it."""
    work = tmp_path_factory.mktemp("demo_state_inputs")
    snakemake(work, "resources/demo_state/COMPLETE")
    return work / "resources" / "demo_state"


def seed_demo_state(inputs: Path, work: Path) -> None:
    """Put the generated demo state into `work`, times kept: Snakemake takes the generation as done
    (its outputs are there and newer than its inputs) and runs what follows."""
    shutil.copytree(inputs, work / "resources" / "demo_state")
