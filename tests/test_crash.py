"""Crash consistency: SIGKILL at random moments, resume with --rerun-incomplete, same results.

TILEWISE_CRASH_TRIALS sets the number of source-pipeline trials (default 14) and
TILEWISE_STATE_CRASH_TRIALS the state-pipeline ones (default 6): 20 in all, as CI runs them.
bench/crash_trials.py runs more.
"""

import json
import os
import random
import shutil
import subprocess

import geopandas as gpd
import pandas as pd
import pytest
import yaml

from conftest import REPO
from support.catalog import make_entry, md5, serve_tiles
from support.crash import partial_files, resume, run_killed
from support.httpserver import Server, start
from support.snakemake import snakemake_cmd

pytestmark = pytest.mark.workflow
SOURCE_TRIALS = int(os.environ.get("TILEWISE_CRASH_TRIALS", 14))
STATE_TRIALS = int(os.environ.get("TILEWISE_STATE_CRASH_TRIALS", 6))


@pytest.fixture(scope="module")
def source_case(tmp_path_factory):
    """A 12-file source on a loopback server, and its tarball's md5 from an uninterrupted run."""
    root = tmp_path_factory.mktemp("crash_source")
    server = Server()
    httpd, _ = start(server)
    make_entry(root / "catalog", "crash", serve_tiles(server, 12))
    cfg = root / "crash.yaml"
    cfg.write_text(
        yaml.safe_dump({"catalog": str(root / "catalog"), "source": "crash", "state": [], "files_per_chunk": 2})
    )
    clean = root / "clean"
    subprocess.run(snakemake_cmd(REPO, clean, "--configfile", str(cfg)), check=True, capture_output=True)
    yield (
        root,
        cfg,
        md5(clean / "tar-store" / "crash.tar"),
        sorted(p.name for p in (clean / "source-store" / "crash").iterdir()),
    )
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("trial", range(SOURCE_TRIALS))
def test_source_pipeline_survives_sigkill(source_case, trial):
    root, cfg, clean_md5, clean_files = source_case
    work = root / f"trial{trial}"
    cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
    kill_after = random.Random(trial).uniform(0.8, 5.0)
    run_killed(cmd, kill_after)
    done = resume(cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert md5(work / "tar-store" / "crash.tar") == clean_md5, f"killed after {kill_after:.2f} s"
    assert sorted(p.name for p in (work / "source-store" / "crash").iterdir()) == clean_files
    assert partial_files(work / "source-store", work / "tar-store", work / "polygon-store") == []
    shutil.rmtree(work)


@pytest.fixture(scope="module")
def state_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash_state")
    cfg = root / "state.yaml"
    cfg.write_text(yaml.safe_dump({"state": "demo"}))
    clean = root / "clean"
    subprocess.run(snakemake_cmd(REPO, clean, "--configfile", str(cfg)), check=True, capture_output=True)
    return root, cfg, clean


def _county_frames(work):
    return {
        p.name: gpd.read_parquet(p) if not p.name.endswith(".crops.parquet") else pd.read_parquet(p)
        for p in sorted((work / "results/states/demo/counties").glob("*.parquet"))
    }


@pytest.mark.parametrize("trial", range(STATE_TRIALS))
def test_state_pipeline_survives_sigkill(state_case, trial):
    root, cfg, clean = state_case
    work = root / f"trial{trial}"
    cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
    kill_after = random.Random(100 + trial).uniform(1.0, 16.0)
    run_killed(cmd, kill_after)
    done = resume(cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    want, got = _county_frames(clean), _county_frames(work)
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)
    done_clean = json.loads((clean / "results/states/demo/DONE.json").read_text())
    done_got = json.loads((work / "results/states/demo/DONE.json").read_text())
    for key in ("counties", "tiles", "converted_tile_bytes_reclaimed", "converted_tiles_still_on_disk"):
        assert done_got[key] == done_clean[key], (key, f"killed after {kill_after:.2f} s")
    assert not list((work / "results/states/demo/tiles").rglob("*.tif"))
    assert partial_files(work / "results") == []
    shutil.rmtree(work)
