"""Crash trials: kill a snakemake run with SIGKILL at a chosen moment, then resume it.

Used by the crash-consistency tests and bench/crash_trials.py. A kill of the whole process group
(snakemake and the jobs it started) is what a power cut or a lost node does; a kill of the main
process alone (`kill -9` of snakemake) leaves its jobs running on as orphans, and the resume then
starts while they still work.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

PARTIAL_MARKERS = (".part", ".tmp", ".download")


class Killed:
    """A run started in its own process group and killed with SIGKILL after a delay."""

    def __init__(self, cmd: list[str], kill_after_s: float, main_only: bool = False):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.group = proc.pid  # its own session: the group id is its pid, and orphans keep it
        try:
            proc.wait(timeout=kill_after_s)
            self.killed = False
        except subprocess.TimeoutExpired:
            if main_only:
                proc.kill()
            else:
                os.killpg(self.group, signal.SIGKILL)
            proc.wait()
            self.killed = True

    def end_orphans(self) -> None:
        """Kill what is left of the group (jobs of a main-only kill that outlived the resume)."""
        try:
            os.killpg(self.group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_killed(cmd: list[str], kill_after_s: float) -> bool:
    """Start `cmd`, SIGKILL its process group after `kill_after_s`; True if it was still running."""
    return Killed(cmd, kill_after_s).killed


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
