"""Crash trials: kill a snakemake run with SIGKILL at a chosen moment, then resume it.

Used by the crash-consistency tests and bench/crash_trials.py. The kill hits the whole process
group (snakemake and the jobs it started), as a power cut or a lost node would.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

PARTIAL_MARKERS = (".part", ".tmp", ".download")


def run_killed(cmd: list[str], kill_after_s: float) -> bool:
    """Start `cmd`, SIGKILL its process group after `kill_after_s`; True if it was still running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=kill_after_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def resume(cmd: list[str]) -> subprocess.CompletedProcess:
    """What the README says to do after a crash: unlock, then rerun the incomplete jobs."""
    subprocess.run([*cmd, "--unlock"], capture_output=True, text=True, check=True)
    return subprocess.run([*cmd, "--rerun-incomplete"], capture_output=True, text=True)


def partial_files(*folders: Path) -> list[Path]:
    """Files whose names say they were being written: none may remain after a resumed run."""
    found = []
    for folder in folders:
        if folder.exists():
            found += [p for p in folder.rglob("*") if p.is_file() and any(m in p.name for m in PARTIAL_MARKERS)]
    return found
