"""Logging for script jobs: everything, tracebacks included, goes to the rule's log file."""

from __future__ import annotations

import logging
import sys

from tilewise.errors import TilewiseError


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
