"""What every script job does first: log to the rule's log file, wait for any other process still
running the same job (an orphan of a killed snakemake), and refuse to start on a full disk; what it
does last when it succeeded. And how a job tells a full disk, which is its own failure, from a
file's failure."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

from tilewise.shared import locks
from tilewise.shared.errors import DiskFull, TilewiseError
from tilewise.shared.url_secrets import Masking

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def start(smk) -> None:
    """Set up logging for a Snakemake script job, take its job lock and check the free-space threshold."""
    log_to(smk.log[0] if smk.log else None)
    locks.hold_job_lock([str(out) for out in smk.output])
    check_free_disk(".", smk.config["min_free_disk_gb"])


def done() -> None:
    """The last line of a script job that succeeded: flush the logs and exit at once.

    The interpreter's teardown (freeing every module of rasterio, pyproj, numpy…) costs ~0.16 s of
    CPU a job, several seconds over a source's chunk jobs, and nothing needs it: every output is
    closed and in place by now, and no thread of ours is left running. A job that raised never gets
    here, so its exit status and traceback are Python's own. Should a thread or a child process of
    its own still run, the job ends the ordinary way, which waits for them."""
    main = threading.main_thread()
    others = [t.name for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    processes = sys.modules.get("multiprocessing")
    if others or (processes is not None and processes.active_children()):
        logging.getLogger(__name__).info("ending the ordinary way: threads %s or child processes still run", others)
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def log_to(path: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path))
    for handler in handlers:  # no log line names a URL's secrets (a signed href in GDAL's error, a password)
        handler.addFilter(Masking())
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )

    def excepthook(kind, value, tb):
        log = logging.getLogger("tilewise")
        if issubclass(kind, TilewiseError):  # a user-facing problem: the message says it all
            log.error("%s", value)
            return
        log.error("job failed", exc_info=(kind, value, tb))
        if full := nearly_full_disk("."):  # a library's write error that names no errno
            log.error("%s: %s; %s", kind.__name__, value, full)

    sys.excepthook = excepthook


NEARLY_FULL_BYTES = 64 << 20  # less room than this after a failed job: the disk is the likely cause


def nearly_full_disk(path: str) -> str | None:
    """What to tell after an unexpected error when the disk holding `path` is nearly full: a library's
    write error (GDAL's, SQLite's "Failed to commit transaction") often names no errno."""
    free = shutil.disk_usage(path).free
    if free >= NEARLY_FULL_BYTES:
        return None
    where = os.path.abspath(path)
    return f"only {free:,} bytes are free on the disk of {where}: it is likely full; free some space and rerun"


def check_free_disk(path: str, min_free_gb: float) -> None:
    """Fail at once, before writing anything, when the disk holding `path` is nearly full."""
    free = shutil.disk_usage(path).free
    if free < min_free_gb * (1 << 30):
        raise TilewiseError(
            f"only {free / (1 << 30):.2f} GB free on the disk of {os.path.abspath(path)}, below "
            f"min_free_disk_gb = {min_free_gb}: free some space (or lower min_free_disk_gb) and rerun"
        )


def disk_full(exc: BaseException, what: str) -> DiskFull | None:
    """The DiskFull to raise instead of `exc` (raised while doing `what`) when `exc` or any error
    behind it is ENOSPC or EDQUOT."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return exc
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return DiskFull(f"{what}: the disk is full ({exc}): free some space and rerun")
        exc = exc.__cause__ or exc.__context__
    return None


def check_room(where: Path, needed_bytes: int, what: str) -> None:
    """After a write failed without saying why (GDAL does not pass errno on): raise DiskFull when the
    disk holding `where` has less room than the write needed, so the failure cannot be trusted as the
    file's own."""
    free = shutil.disk_usage(where).free
    if free < needed_bytes:
        raise DiskFull(
            f"{what} failed with only {free:,} bytes free on the disk of {os.path.abspath(where)}, "
            f"where it needs up to {needed_bytes:,}: free some space and rerun"
        )
