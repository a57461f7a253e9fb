"""Locks that keep two processes off the same work.

They are `flock` locks on files under `.snakemake/`: the kernel releases them when their process
dies, so a killed run never leaves a stale one behind (unlike Snakemake's own lock files).

- The run lock: one snakemake at a time per working folder, and per output folder that several working
  folders share through a symlink (the working folder that holds the folder itself takes it too).
  Snakemake's own lock is not atomic (two runs started at once can both take it), so the Snakefile
  takes this one first: the second run refuses before it reads or changes anything.
- The job locks: one process at a time per job. After `kill -9` of snakemake alone, its jobs live on
  as orphans; the rerun's job with the same outputs waits for the orphan to end, then starts clean.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

from tilewise.shared.errors import TilewiseError

log = logging.getLogger(__name__)
RUN_LOCK = Path(".snakemake") / "tilewise-run.lock"
JOB_LOCKS = Path(".snakemake") / "tilewise-jobs"
SHARED_LOCK = ".tilewise-run.lock"  # in every output folder: another working folder may link to it
_held = []  # open lock files: each lock lasts as long as its process


def _open(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a+")


def _holder(f) -> str:
    f.seek(0)
    return f.read().strip() or "pid unknown"


def _own(f, folder: Path | None = None) -> None:
    f.seek(0)
    f.truncate()
    where = f" in {folder}" if folder is not None else ""
    f.write(f"pid {os.getpid()}{where}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    f.flush()
    _held.append(f)


def hold_run_lock(folder: Path, output_folders: tuple[str, ...] = ()) -> None:
    """Take the working folder's run lock for the life of this process, or refuse. Each of
    `output_folders` (the top folders of its outputs) that exists gets a run lock of its own, where it
    really is: one folder reached from two working folders (a symlink to a shared store, or to the other
    working folder's own folder) would be written by two runs at once, each against its own records. A
    folder this working folder holds itself is locked too: it cannot tell whether another links to it."""
    _hold_or_refuse(
        _open(folder / RUN_LOCK),
        lambda holder: (
            f"another snakemake ({holder}) is running in {folder}; two runs in one folder would run "
            "the same jobs at once. Wait for it to end (a dry run, -n, is always allowed). Nothing was changed."
        ),
    )
    held = set()  # two of its folders in one place (`logs` a symlink to `work`): one lock, or it refuses itself
    for name in output_folders:
        real = (folder / name).resolve()
        if not real.is_dir() or real in held:
            continue
        held.add(real)
        try:
            shared = _open(real / SHARED_LOCK)
        except OSError:
            continue  # not writable here: the run's first write there fails and says so
        _hold_or_refuse(
            shared,
            lambda holder, real=real, name=name: (
                f"another snakemake ({holder}) is writing {real}, this run's {folder / name} too; two runs writing "
                "one output folder from two working folders would each overwrite the other's outputs against its "
                f"own records. Wait for it to end, or give one of the two working folders its own {name}/. Nothing "
                "was changed."
            ),
            folder,
        )


def _hold_or_refuse(f, refusal, folder: Path | None = None) -> None:
    """Hold the lock of the open lock file `f` for the life of this process, or raise `refusal(holder)`."""
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(f)
        f.close()
        raise TilewiseError(refusal(holder)) from None
    _own(f, folder)


def hold_job_lock(outputs: list[str]) -> bool:
    """Wait until no other process runs the job that writes `outputs`, then hold its lock for the
    life of this process. True when it had to wait: what that process left at the outputs is then
    removed, so the job starts as clean as Snakemake started it."""
    key = hashlib.sha1(os.path.abspath(outputs[0]).encode()).hexdigest()
    f = _open(JOB_LOCKS / f"{key}.lock")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        waited = False
    except BlockingIOError:
        log.warning(
            "%s: a job of an earlier run with the same outputs is still running (%s), e.g. an orphan of a "
            "killed snakemake; waiting for it to end",
            outputs[0],
            _holder(f),
        )
        fcntl.flock(f, fcntl.LOCK_EX)
        waited = True
    _own(f)
    if waited:
        for out in map(Path, outputs):
            if out.is_dir():
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            elif out.exists() or out.is_symlink():
                out.unlink()
    return waited
