"""What a job that publishes state results recorded of its files, and whether they are still those files.

`publish_county`, `summarize_state` and `state_done` each write a record (`results/states/{state}/published/`),
`summarize_national` one of the national summary and map (`results/published/national.json`), of the files
they wrote: size and modification time in ns. The record is the job's last output, so when
Snakemake touches a job's outputs after it ended (it does, in their order) the files' times move forward
but stay at or before the record's own. Every run's planning compares the files with it (one `stat`
each, no read: a national run's county files are tens of GB, md5 would cost seconds per GB) and has the
job run again where a file was deleted, has another size, a time before the one recorded (a backup
restored with its time) or after the record's own (edited in place, overwritten), from the pipeline's
own copy (a county's staged files) or inputs. An edit that keeps the size and sets the time back into
that window is not seen.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

VERSION = 1


def _stamp(path: Path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write(record: Path, paths: list[Path]) -> None:
    """Record the files as they are now (call it after the last of them is in place)."""
    data = {"version": VERSION, "files": {str(p): _stamp(p) for p in paths}}
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, record)


def damage(record: Path, paths: list[Path]) -> str | None:
    """Why the files are not the ones their job recorded (None: they are)."""
    try:
        data = json.loads(record.read_text())
        files = data["files"] if data.get("version") == VERSION else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files = None
    try:
        written = os.stat(record).st_mtime_ns
    except OSError:
        files = None
    if not isinstance(files, dict):
        present = [p for p in paths if p.exists()]
        if not present:
            return None  # never published (or removed with its record): Snakemake makes it when needed
        return f"nothing records how {present[0]} was published ({record} is missing or unreadable)"
    for path in paths:
        want = files.get(str(path))
        try:
            have = _stamp(path)
        except FileNotFoundError:
            return f"{path} was deleted"
        if want is None:
            return f"{record} does not record {path}"
        older = have["mtime_ns"] < want["mtime_ns"]
        if have["size"] != want["size"] or older or have["mtime_ns"] > written:
            how = "replaced by an older file (a backup?)" if older else "edited or replaced"
            return (
                f"{path} was {how} after it was published (size {have['size']}, recorded {want['size']}; "
                f"modified {have['mtime_ns']} ns, recorded {want['mtime_ns']})"
            )
    return None
