"""How a county's run ended, and how a state's turn ended: the records a national run is scheduled by.

A national run lets the next state prepare its tiles only once every county of the state before it
has ended, succeeded or failed. Snakemake runs nothing after a failed job, so a county job never
fails: it records its outcome (`results/states/{state}/county_runs/{county}.json`, this module writes
and reads it) and exits 0; `publish_county` then fails for a failed county, which is what makes the
failure visible and stops that state's summary. A failed outcome is dated back to 1970, so the next
run, whose inputs are all newer, runs the county again (Snakemake's ordinary mtime rule).

The county's work runs in a child process: a crash, a kill or running out of memory is recorded as a
failure of that county too, instead of taking the job (and with it the national schedule) down.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tilewise.shared.errors import TilewiseError
from tilewise.shared.url_secrets import masked

log = logging.getLogger(__name__)
VERSION = 1
OK, FAILED = "ok", "failed"


def failed_attempts(path: str | Path) -> int:
    """`failed_attempts` of a county outcome or tile manifest (0 when there is none yet): a rule param,
    read while Snakemake builds the DAG, so that a job whose last attempt failed runs again."""
    try:
        return int(json.loads(Path(path).read_text()).get("failed_attempts", 0))
    except (OSError, ValueError):
        return 0


def last_failed(path: str | Path) -> bool:
    """Whether a county outcome or tile manifest says its last attempt failed (False when there is none yet)."""
    try:
        return json.loads(Path(path).read_text()).get("status") == FAILED
    except (OSError, ValueError, AttributeError):
        return False


def write_outcome(path: Path, status: str, reason: str, started_unix: float, failed_before: int, **extra) -> dict:
    record = {
        "version": VERSION,
        "status": status,
        "reason": reason,
        "failed_attempts": failed_before + (status == FAILED),
        "started_unix": round(started_unix, 3),
        "ended_unix": round(time.time(), 3),
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return record


def read_outcome(path: Path) -> dict | None:
    """The outcome, or None while the county has not ended (no record yet)."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise TilewiseError(f"{path}: unreadable county outcome ({exc}); delete it to run the county again") from exc
    if record.get("version") != VERSION:
        raise TilewiseError(f"{path}: county outcome format {record.get('version')!r}, this tilewise reads {VERSION}")
    return record


def succeeded(path: Path) -> bool:
    record = read_outcome(path)
    return record is not None and record["status"] == OK


def run_isolated(work: Callable[..., dict], *args) -> tuple[str, str, dict]:
    """Run `work(*args)` in a forked child: (OK, "", its result) or (FAILED, why, {}), whatever the child did."""
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, work, args))
    child.start()
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:  # the child died before it could say anything: killed, out of memory, segfault
        child.join()
        code = child.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return FAILED, f"the county's process died ({how}; out of memory?)", {}
    child.join()
    if status == OK:
        return OK, "", payload
    return FAILED, payload, {}


def _child(send, work, args) -> None:
    try:
        result = work(*args)
    except TilewiseError as exc:
        log.error("%s", exc)
        send.send((FAILED, masked(str(exc))))
    except BaseException as exc:  # noqa: BLE001 (every failure of the county is its outcome)
        log.error("county failed:\n%s", traceback.format_exc())
        send.send((FAILED, masked(f"{type(exc).__name__}: {exc}")))  # GDAL's errors name the signed href read
    else:
        send.send((OK, result))
    finally:
        send.close()


def write_state_ended(
    path: Path, state: str, runs: list[Path], manifests: list[dict], reclaimed: list[str], kept: list[str]
) -> dict:
    """`results/states/{state}/ended.json`: the end of a state's turn (this module writes and reads it)."""
    records = {Path(p).stem: read_outcome(p) for p in runs}
    missing = sorted(c for c, r in records.items() if r is None)
    if missing:
        raise TilewiseError(f"state {state}: counties {missing} have no outcome yet; their jobs must run first")
    starts = [m["started_unix"] for m in manifests] + [r["started_unix"] for r in records.values()]
    now = time.time()
    record = {
        "version": VERSION,
        "state": state,
        "counties_ok": sorted(c for c, r in records.items() if r["status"] == OK),
        "counties_failed": {c: r["reason"] for c, r in sorted(records.items()) if r["status"] != OK},
        "tiles_failed": {f"{m['product']}/{m['key']}": m["error"] for m in manifests if m["status"] != "ok"},
        "tiles_reclaimed_now": sorted(reclaimed),
        "tiles_kept": sorted(kept),
        "converted_tile_bytes_peak": max((m["tile_bytes_on_disk_after"].get(state, 0) for m in manifests), default=0),
        "started_unix": round(min(starts, default=now), 3),
        "ended_unix": round(now, 3),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    log.info(
        "state %s ended: %d counties ok, %d failed; %d tiles kept",
        state,
        len(record["counties_ok"]),
        len(record["counties_failed"]),
        len(kept),
    )
    return record


def read_state_ended(path: Path) -> dict:
    record = json.loads(Path(path).read_text())
    if record.get("version") != VERSION:
        raise TilewiseError(f"{path}: state end record format {record.get('version')!r}, this tilewise reads {VERSION}")
    return record
