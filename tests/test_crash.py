"""Crash consistency: SIGKILL at random moments, resume with --rerun-incomplete, same results.
Also a kill of snakemake alone (its jobs live on as orphans), a full disk, and two runs at once.

TILEWISE_CRASH_TRIALS sets the number of source-pipeline trials (default 10),
TILEWISE_STATE_CRASH_TRIALS the state-pipeline ones (default 3) and TILEWISE_MAIN_KILL_TRIALS the
kills of snakemake alone (default 2), as CI runs them. bench/crash_trials.py runs more.
"""

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pytest
import yaml

from tilewise.shared import locks
from tilewise.shared.errors import TilewiseError

from conftest import REPO, seed_demo_state
from support.catalog import make_entry, md5, serve_tiles
from support.crash import Killed, partial_files, resume, run_killed
from support.disk import disk_bytes, small_disk
from support.httpserver import Server, start
from support.services import wait_for
from support.snakemake import snakemake_cmd

pytestmark = pytest.mark.workflow
SOURCE_TRIALS = int(os.environ.get("TILEWISE_CRASH_TRIALS", 10))
STATE_TRIALS = int(os.environ.get("TILEWISE_STATE_CRASH_TRIALS", 3))
MAIN_KILL_TRIALS = int(os.environ.get("TILEWISE_MAIN_KILL_TRIALS", 2))
RACE_TRIALS = 8


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
        server,
    )
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("trial", range(SOURCE_TRIALS))
def test_source_pipeline_survives_sigkill(source_case, trial):
    root, cfg, clean_md5, clean_files, _ = source_case
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


def _failed_files(work) -> list[dict]:
    with open(work / "reports" / "crash" / "failures.csv", newline="") as f:
        return list(csv.DictReader(f))


def _check_resumed(done, work, clean_md5, clean_files) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert _failed_files(work) == []  # no file was recorded as failed by a race with an orphan
    assert md5(work / "tar-store" / "crash.tar") == clean_md5
    assert sorted(p.name for p in (work / "source-store" / "crash").iterdir()) == clean_files
    assert partial_files(work / "source-store", work / "tar-store", work / "polygon-store") == []


@pytest.mark.parametrize("trial", range(MAIN_KILL_TRIALS))
def test_source_pipeline_survives_a_kill_of_snakemake_alone(source_case, trial):
    root, cfg, clean_md5, clean_files, _ = source_case
    work = root / f"main{trial}"
    cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
    killed = Killed(cmd, random.Random(200 + trial).uniform(0.8, 5.0), main_only=True)
    try:
        done = resume(cmd)
    finally:
        killed.end_orphans()
    _check_resumed(done, work, clean_md5, clean_files)
    shutil.rmtree(work)


def test_a_rerun_waits_for_the_orphans_of_a_killed_snakemake(source_case):
    """The race made certain: the orphans are held mid-download until the rerun's jobs are waiting."""
    root, cfg, clean_md5, clean_files, server = source_case
    work = root / "orphans"
    cmd = snakemake_cmd(REPO, work, "--configfile", str(cfg))
    scratch, logs = work / "work" / "crash" / "scratch", work / "logs" / "prepare_chunk" / "crash"
    server.gate.clear()
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(120, lambda: any(scratch.glob("*/download/*")))  # chunk jobs are downloading
        first.kill()  # snakemake alone: its jobs live on
        first.wait()
        # only the orphans' downloads stay held: the rerun's other chunks must not fill its cores
        server.held = {"/tiles/" + p.name for p in scratch.glob("*/download/*")}
        subprocess.run([*cmd, "--unlock"], capture_output=True, check=True)
        with open(work / "rerun.err", "w") as err:
            rerun = subprocess.Popen([*cmd, "--rerun-incomplete"], stdout=subprocess.DEVNULL, stderr=err, text=True)
            waiting = lambda: any("waiting for it to end" in p.read_text() for p in logs.glob("*.log"))  # noqa: E731
            wait_for(120, waiting)
            server.gate.set()  # the orphans finish, then the rerun's jobs start clean
            rerun.wait(timeout=600)
    finally:
        server.gate.set()
        server.held = None
        try:
            os.killpg(first.pid, signal.SIGKILL)  # whatever of that group outlived the test
        except ProcessLookupError:
            pass
    done = subprocess.CompletedProcess(rerun.args, rerun.returncode, "", (work / "rerun.err").read_text())
    _check_resumed(done, work, clean_md5, clean_files)
    shutil.rmtree(work)


@pytest.mark.parametrize("room", [0.3, 0.9], ids=["fills-in-chunks", "fills-in-tarball"])
def test_a_full_disk_fails_jobs_not_files_and_a_rerun_with_room_finishes(source_case, tmp_path, room):
    root, cfg, clean_md5, clean_files, _ = source_case
    settings = {**yaml.safe_load(cfg.read_text()), "min_free_disk_gb": 0}  # the real disk fills, not a threshold
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(settings))
    with small_disk(tmp_path / "disk", int(disk_bytes(root / "clean") * room)) as disk:
        work = disk.path / "run"
        cmd = snakemake_cmd(REPO, work, "--configfile", str(tmp_path / "full.yaml"))
        full = subprocess.run(cmd, capture_output=True, text=True)
        assert full.returncode != 0 and "No space left on device" in full.stderr, full.stderr[-3000:]
        for ledger in (work / "work" / "crash" / "chunks").glob("*.json"):  # no file failed for the disk
            assert all(f["status"] == "ok" for f in json.loads(ledger.read_text())["files"]), ledger
        disk.grow(256 << 20)
        done = resume(cmd)
        _check_resumed(done, work, clean_md5, clean_files)


def test_two_runs_started_at_once_in_one_folder_one_refuses(tmp_path, http):
    """A race, so tried many times. The first time both run to their end; later the one not refused is
    stopped as soon as the other has refused."""
    http.delay = 1.0  # a run holds the folder a few seconds at least
    make_entry(tmp_path / "catalog", "race", serve_tiles(http, 1))
    cfg = tmp_path / "race.yaml"
    cfg.write_text(yaml.safe_dump({"catalog": str(tmp_path / "catalog"), "source": "race", "state": []}))
    for trial in range(RACE_TRIALS):
        cmd = snakemake_cmd(REPO, tmp_path / f"run{trial}", "--configfile", str(cfg))
        runs = [
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
            for _ in "ab"
        ]
        wait_for(600, lambda: any(run.poll() is not None for run in runs))  # noqa: B023
        if trial:
            for run in runs:
                if run.poll() is None:
                    os.killpg(run.pid, signal.SIGKILL)
        errors = [run.communicate(timeout=600)[1] for run in runs]
        refused = [
            run.returncode != 0 and "tilewise: another snakemake (pid" in err
            for run, err in zip(runs, errors, strict=True)
        ]
        assert refused.count(True) == 1, (trial, [err[-1500:] for err in errors])
        assert "Nothing was changed" in errors[refused.index(True)]
        if not trial:  # the run not refused did its work
            assert runs[refused.index(False)].returncode == 0, errors[refused.index(False)][-3000:]
            assert (tmp_path / "run0" / "tar-store" / "race.tar").exists()


_HOLD_RUN_LOCK = """
import sys, time
from pathlib import Path
from tilewise.shared import locks
locks.hold_run_lock(Path(sys.argv[1]), (sys.argv[2],))
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("shared_name", ["tar-store", "source-store", "work"])
def test_two_working_folders_sharing_an_output_folder_never_run_at_once(tmp_path, http, shared_name):
    """Two working folders whose output folder is one folder (a symlink to a shared store): a run in one
    while the other runs refuses before it changes anything (both failed before, and one kept failing on
    the other's records), and runs once the other has ended."""
    make_entry(tmp_path / "catalog", "twin", serve_tiles(http, 1))
    cfg = tmp_path / "twin.yaml"
    cfg.write_text(yaml.safe_dump({"catalog": str(tmp_path / "catalog"), "source": "twin", "state": []}))
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in "ab":
        (tmp_path / name).mkdir()
        (tmp_path / name / shared_name).symlink_to(shared)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-c", _HOLD_RUN_LOCK, str(tmp_path / "a"), shared_name]
    holder = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run(snakemake_cmd(REPO, tmp_path / "b", "--configfile", str(cfg)), capture_output=True)
        err = refused.stderr.decode()
        assert refused.returncode != 0 and f"is writing {shared}" in err and "Nothing was changed" in err, err[-3000:]
        assert [p.name for p in shared.iterdir()] == [".tilewise-run.lock"]
    finally:
        holder.kill()
        holder.wait()
    done = subprocess.run(snakemake_cmd(REPO, tmp_path / "b", "--configfile", str(cfg)), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert (tmp_path / "b" / "tar-store" / "twin.tar").is_file()


@pytest.mark.parametrize("holder", ["a", "b"])
@pytest.mark.parametrize("shared_name", ["tar-store", "work", "results"])
def test_a_working_folders_own_output_folder_another_links_to_is_never_written_by_both(tmp_path, holder, shared_name):
    """One working folder holds the output folder itself, another a symlink to it: whichever starts
    second refuses (before, the one holding the real folder took no lock there, and both ran)."""
    for name in "ab":
        (tmp_path / name).mkdir()
    (tmp_path / "a" / shared_name).mkdir()
    (tmp_path / "b" / shared_name).symlink_to(tmp_path / "a" / shared_name)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-c", _HOLD_RUN_LOCK, str(tmp_path / holder), shared_name]
    held = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert held.stdout.readline().strip() == "held"
        second = tmp_path / ("b" if holder == "a" else "a")
        with pytest.raises(TilewiseError, match=f"is writing {tmp_path / 'a' / shared_name}.*Nothing was changed"):
            locks.hold_run_lock(second, (shared_name,))
    finally:
        held.kill()
        held.wait()


def test_two_output_folders_of_one_working_folder_in_one_place_take_one_lock(tmp_path):
    """`logs` a symlink to `work`, `benchmarks` and `reports` to one store: the run takes each place's
    lock once (a second flock of its own on another descriptor would refuse the run itself)."""
    (tmp_path / "work").mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "logs").symlink_to(tmp_path / "work")
    for name in ("benchmarks", "reports"):
        (tmp_path / name).symlink_to(tmp_path / "store")
    code = "import sys; from pathlib import Path; from tilewise.shared import locks; "
    code += "locks.hold_run_lock(Path(sys.argv[1]), ('work', 'logs', 'benchmarks', 'reports')); print('held')"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "held", done.stderr[-2000:]


@pytest.fixture(scope="module")
def state_case(tmp_path_factory, demo_state_inputs):
    """The demo state run from its generated inputs (the kills land in the pipeline, not the demo's
    generator), and the inputs for each trial."""
    root = tmp_path_factory.mktemp("crash_state")
    cfg = root / "state.yaml"
    cfg.write_text(yaml.safe_dump({"state": "demo"}))
    clean = root / "clean"
    seed_demo_state(demo_state_inputs, clean)
    subprocess.run(snakemake_cmd(REPO, clean, "--configfile", str(cfg)), check=True, capture_output=True)
    return root, cfg, clean, demo_state_inputs


def _county_frames(work):
    return {
        p.name: gpd.read_parquet(p) if not p.name.endswith(".crops.parquet") else pd.read_parquet(p)
        for p in sorted((work / "results/states/demo/counties").glob("*.parquet"))
    }


@pytest.mark.parametrize("room", [0.3, 0.8])
def test_the_state_pipeline_on_a_disk_that_fills_finishes_the_same_with_room(state_case, tmp_path, room):
    """The disk fills while tiles are prepared (0.3 of the outputs' bytes) or while the state's files are
    written (0.8); the same command with room gives the clean run's county results and summary."""
    root, cfg, clean, inputs = state_case
    inputs_bytes = disk_bytes(inputs)
    outputs_bytes = disk_bytes(clean) - disk_bytes(clean / "resources")
    settings = yaml.safe_load(cfg.read_text()) | {"min_free_disk_gb": 0}
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(settings))
    with small_disk(tmp_path / "disk", int(inputs_bytes * 1.05 + outputs_bytes * room)) as disk:
        work = disk.path / "run"
        seed_demo_state(inputs, work)
        cmd = snakemake_cmd(REPO, work, "--configfile", str(tmp_path / "full.yaml"))
        full = subprocess.run(cmd, capture_output=True, text=True)
        assert full.returncode != 0, full.stderr[-3000:]
        told = full.stderr[-3000:]  # the run's end: its summary, or Snakemake's own error
        assert re.search("No space left|the disk is full|it is likely full; free some space", told), told
        disk.grow(disk_bytes(clean) * 4)
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        want, got = _county_frames(clean), _county_frames(work)
        assert list(got) == list(want)
        for name in want:
            pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)
        summary = [pd.read_csv(w / "results/states/demo/county_summary.csv") for w in (clean, work)]
        timing = [c for c in summary[0].columns if "seconds" in c]
        pd.testing.assert_frame_equal(summary[1].drop(columns=timing), summary[0].drop(columns=timing))
        assert partial_files(work / "results") == []


@pytest.mark.parametrize("trial", range(STATE_TRIALS))
def test_state_pipeline_survives_sigkill(state_case, trial):
    root, cfg, clean, inputs = state_case
    work = root / f"trial{trial}"
    seed_demo_state(inputs, work)
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
