"""Wall time and peak RSS of a command, for the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def measured(cmd: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS (bytes) of `cmd` and of every process it waited for (`os.wait4`:
    the kernel keeps the largest RSS of the process and its reaped descendants)."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        err.seek(0)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd[:6])} … failed:\n{err.read()[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": usage.ru_maxrss * 1024}
