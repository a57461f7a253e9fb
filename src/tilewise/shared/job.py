"""What every script job does first: log to the rule's log file, and refuse to start on a full disk."""

from __future__ import annotations

import logging
import os
import shutil
import sys

from tilewise.shared.errors import TilewiseError


def start(smk) -> None:
    """Set up logging for a Snakemake script job and check the free-space threshold."""
    log_to(smk.log[0] if smk.log else None)
    check_free_disk(".", smk.config["min_free_disk_gb"])


def log_to(path: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )

    def excepthook(kind, value, tb):
        log = logging.getLogger("tilewise")
        if issubclass(kind, TilewiseError):  # a user-facing problem: the message says it all
            log.error("%s", value)
        else:
            log.error("job failed", exc_info=(kind, value, tb))

    sys.excepthook = excepthook


def check_free_disk(path: str, min_free_gb: float) -> None:
    """Fail at once, before writing anything, when the disk holding `path` is nearly full."""
    free = shutil.disk_usage(path).free
    if free < min_free_gb * (1 << 30):
        raise TilewiseError(
            f"only {free / (1 << 30):.2f} GB free on the disk of {os.path.abspath(path)}, below "
            f"min_free_disk_gb = {min_free_gb}: free some space (or lower min_free_disk_gb) and rerun"
        )
