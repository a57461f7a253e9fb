"""The end of a run: the explanation of each failed job, repeated where the user looks last.

Snakemake prints a failed job's error far up in its output; the job's own log (written by
shared.job) holds the message that explains it. This reads Snakemake's log for the failed jobs and
their log files, and returns the last error each log recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

_FAILED = re.compile(r"^Error in rule (\S+):$")
_LOG = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?$")
_ERROR = re.compile(r"^\S+ \S+ ERROR \S+: (.*)$")  # shared.job's log format


def failed_jobs(snakemake_log: Path) -> list[tuple[str, list[str]]]:
    """(rule, its log files) of every job that failed, in the order Snakemake reported them."""
    jobs: list[tuple[str, list[str]]] = []
    in_error = False  # inside an error's indented block: the log files of the next job started are not its
    for line in Path(snakemake_log).read_text(errors="replace").splitlines():
        if m := _FAILED.match(line):
            jobs.append((m[1], []))
            in_error = True
        elif not line[:1].isspace():
            in_error = False
        elif in_error and (m := _LOG.match(line)):
            jobs[-1][1].extend(p.strip() for p in m[1].split(","))
    return jobs


def last_error(log_file: Path) -> str | None:
    """The last ERROR record of a job log with the lines that continue it (a traceback's last line)."""
    if not log_file.exists():
        return None
    lines = log_file.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if _ERROR.match(line)]
    if not starts:
        return None
    first = lines[starts[-1]]
    message = [_ERROR.match(first)[1]]
    rest = [line for line in lines[starts[-1] + 1 :] if line.strip()]
    if message[0] == "job failed" and rest:  # an unexpected exception: its last line says what
        return rest[-1]
    return "\n".join(message + rest)


def failure_lines(snakemake_log: Path) -> list[str]:
    lines = []
    for rule, logs in failed_jobs(snakemake_log):
        errors = [e for e in (last_error(Path(p)) for p in logs) if e]
        where = ", ".join(logs) or "no log"
        lines.append(f"{rule} failed ({where}):")
        lines += [f"  {line}" for e in errors for line in e.splitlines()] or ["  (the log says no more)"]
    return lines
