"""profiles/slurm against a real single-node SLURM started here: same outputs as a local run."""

import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake
from support.catalog import md5
from support.services import Slurm
from support.snakemake import snakemake_cmd

pytestmark = pytest.mark.workflow


@pytest.fixture
def slurm():
    cluster = Slurm()
    yield cluster
    cluster.stop()


def test_slurm_profile_gives_the_local_outputs(tmp_path, slurm):
    cfg = {}
    for run in ("local", "cluster"):  # a catalog each: the demo source's data are generated into it
        catalog = tmp_path / f"catalog-{run}"
        shutil.copytree(REPO / "catalog" / "demo", catalog / "demo", ignore=shutil.ignore_patterns("data"))
        cfg[run] = tmp_path / f"{run}.yaml"
        cfg[run].write_text(yaml.safe_dump({"catalog": str(catalog), "source": "demo", "state": "demo"}))
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    cluster.mkdir()
    # a test cluster answers at once: poll it often
    poll = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"]
    cmd = snakemake_cmd(REPO, cluster, "--configfile", str(cfg["cluster"]), *poll, profile="slurm")
    # the local run goes on while the cluster run waits between its status checks (most of its time)
    log = tmp_path / "cluster.log"  # a file, not a pipe: a full pipe would stop the run until it is read
    with open(log, "w") as out, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT) as proc:
        try:
            snakemake(local, "--configfile", str(cfg["local"]))
            proc.wait(timeout=1500)
        finally:
            proc.kill()
    output = log.read_text()
    assert proc.returncode == 0, output[-4000:]
    assert "Job " in output and "submitted" in output.lower()  # jobs went through sbatch
    assert md5(cluster / "tar-store/demo.tar") == md5(local / "tar-store/demo.tar")
    for path in sorted((local / "results/states/demo/counties").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(cluster / path.relative_to(local)), pd.read_parquet(path))
    assert (cluster / "results/states/demo/DONE.json").exists()
