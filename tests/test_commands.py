"""A command does what it names, ends with its summary, and runs where tilewise is not installed."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tilewise.shared.run_end import failed_jobs, failure_lines

from conftest import REPO, snakemake
from support.catalog import make_entry, serve_tiles
from support.snakemake import snakemake_cmd

pytestmark = pytest.mark.workflow


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_source_run_prepares_that_source_only(tmp_path, http):
    make_entry(tmp_path / "catalog", "only", serve_tiles(http, 3))
    before = listing(tmp_path / "catalog")
    work = tmp_path / "run"
    proc = snakemake(work, "--config", f"catalog={tmp_path / 'catalog'}", "source=only")
    assert (work / "tar-store/only.tar").exists()
    assert listing(tmp_path / "catalog") == before  # nothing written into the user's catalog
    assert not (work / "results").exists() and not (work / "resources").exists()  # no state planned or run
    assert "Rule: index_state" not in proc.stderr and "generate_demo" not in proc.stderr
    # the run ends with what it did and where the outputs are
    tail = proc.stderr[proc.stderr.rindex("tilewise summary") :]
    assert "source only: 3 of 3 files converted into 3 COGs, 0 failed" in tail
    assert "tar-store/only.tar" in tail and "reports/only/failures.csv" in tail


def test_a_state_run_plans_that_state_only(tmp_path):
    proc = snakemake(tmp_path, "-n", "--config", "state=demo")
    assert "index_state" in proc.stdout and "generate_demo_state" in proc.stdout
    assert "prepare_chunk" not in proc.stdout and "generate_demo_data" not in proc.stdout


def test_nothing_selected_runs_nothing_and_says_how(tmp_path):
    proc = snakemake(tmp_path, "-n")
    assert "nothing selected" in proc.stderr and "make run" in proc.stderr
    assert "prepare_chunk" not in proc.stdout and "index_state" not in proc.stdout


def test_a_failed_run_repeats_its_reason_at_the_end(tmp_path, http):
    urls = serve_tiles(http, 2) + [http.url("tiles/missing.zip")]
    make_entry(tmp_path / "catalog", "broken", urls)
    proc = snakemake(tmp_path / "run", "--config", f"catalog={tmp_path / 'catalog'}", "source=broken", check=False)
    assert proc.returncode != 0
    assert "tilewise summary" in proc.stderr, proc.stderr[-3000:]
    tail = proc.stderr[proc.stderr.rindex("tilewise summary") :]
    assert "source broken: 2 of 3 files converted into 2 COGs, 1 failed" in tail
    assert "What failed, and why:" in tail and "build_tarball failed (logs/build_tarball/broken.log)" in tail
    assert "is incomplete: 1 file(s) failed" in tail and "missing.zip" in tail


def test_scripts_run_in_an_interpreter_without_the_package(tmp_path, http):
    """As under --sdm conda: the rule's Python has every dependency but not tilewise itself."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    # the dependencies, without the .pth files that make tilewise importable (an editable install)
    site = next((env / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(env / "bin" / "python")
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([python, "-c", "import tilewise"], capture_output=True, text=True, env=clean_env)
    assert probe.returncode != 0 and "No module named 'tilewise'" in probe.stderr
    make_entry(tmp_path / "catalog", "plain", serve_tiles(http, 2))
    work = tmp_path / "run"
    cmd = snakemake_cmd(REPO, work, "--config", f"catalog={tmp_path / 'catalog'}", "source=plain")
    proc = subprocess.run([python, *cmd[1:]], capture_output=True, text=True, env=clean_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "tar-store/plain.tar").exists()


def test_the_summary_names_only_the_logs_of_the_jobs_that_failed(tmp_path):
    # Snakemake's log as it reads after a failure: the next job's start block follows the error's
    (tmp_path / "99003.log").write_text("2026-11-23 01:13:59,216 ERROR tilewise: county 99003 failed: why\n")
    (tmp_path / "99001.log").write_text("2026-11-23 01:14:00,001 INFO tilewise: fine\n")
    log = tmp_path / "snakemake.log"
    log.write_text(
        "Error in rule publish_county:\n"
        "    jobid: 11\n"
        f"    log: {tmp_path / '99003.log'} (check log file(s) for error details)\n"
        "Execute 1 jobs...\n"
        "localrule publish_county:\n"
        f"    log: {tmp_path / '99001.log'}\n"
    )
    assert failed_jobs(log) == [("publish_county", [str(tmp_path / "99003.log")])]
    assert failure_lines(log) == [f"publish_county failed ({tmp_path / '99003.log'}):", "  county 99003 failed: why"]
