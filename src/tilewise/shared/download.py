"""Downloads that resume, retry with bounded backoff and never leave a partial file under its name.

http(s) goes through urllib3 (no shell, no external tool). A partial download is kept as
`{name}.part` and resumed with a Range request; connection errors, timeouts, 5xx and 429 are
retried with exponential backoff (Retry-After honoured, capped); a body shorter than its
Content-Length is resumed; any other 4xx fails at once. file:// URLs and plain paths are copied.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import urllib3

from tilewise.shared.errors import FileFailure

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
_CHUNK = 1 << 16  # bytes lost when a body breaks off mid-read are at most this


@dataclass(frozen=True)
class DownloadSettings:
    """The `download:` section of the config (its defaults live in config/config.yaml only)."""

    connections: int  # parallel downloads inside one job
    attempts: int
    backoff_seconds: float
    max_backoff_seconds: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_seconds_per_file: float

    @classmethod
    def from_config(cls, section: dict) -> DownloadSettings:
        return cls(**section)


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


def make_pool(settings: DownloadSettings, maxsize: int = 4) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        maxsize=maxsize,
        timeout=urllib3.Timeout(connect=settings.connect_timeout_seconds, read=settings.read_timeout_seconds),
        # Redirects are followed by urllib3; every other retry is ours (we resume, it would not).
        retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=10),
        headers={"User-Agent": "tilewise (+https://github.com/tilewise)"},
    )


def fetch(url: str, dest: Path, local: Path | None, settings: DownloadSettings, pool: urllib3.PoolManager) -> Path:
    """Store `url` at `dest`; raise FileFailure('download', …) when it cannot be had."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if local is not None:
        return _copy_local(local, dest)
    part = dest.with_name(dest.name + ".part")
    deadline = time.monotonic() + settings.max_seconds_per_file
    last_error = ""
    for attempt in range(settings.attempts):
        try:
            _attempt(url, part, pool)
            os.replace(part, dest)
            return dest
        except _Retryable as exc:
            last_error = str(exc)
            wait = min(settings.max_backoff_seconds, settings.backoff_seconds * 2**attempt)
            if exc.wait is not None:
                wait = min(settings.max_backoff_seconds, max(wait, exc.wait))
            wait *= 1 + 0.1 * random.random()
            if attempt + 1 == settings.attempts or time.monotonic() + wait > deadline:
                break
            log.warning("%s: %s; retry %d/%d in %.1f s", url, exc, attempt + 1, settings.attempts - 1, wait)
            time.sleep(wait)
    part.unlink(missing_ok=True)
    raise FileFailure("download", f"{url}: gave up after {attempt + 1} attempts: {last_error}")


def _copy_local(local: Path, dest: Path) -> Path:
    if not local.is_file():
        raise FileFailure("download", f"{local}: no such file")
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(local, part)
    os.replace(part, dest)
    return dest


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _attempt(url: str, part: Path, pool: urllib3.PoolManager) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = pool.request("GET", url, headers=headers, preload_content=False)
    except urllib3.exceptions.HTTPError as exc:  # connection refused/reset, timeouts
        raise _Retryable(f"connection error: {exc}") from exc
    try:
        if resp.status in RETRY_STATUS:
            raise _Retryable(f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After")))
        if resp.status == 416 and offset:
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and int(total) == offset:
                return  # the partial file was already complete
            part.unlink()
            raise _Retryable("HTTP 416 for a stale partial file; starting over")
        if resp.status == 206 and offset:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                part.unlink()
                raise _Retryable(f"server resumed at {start!r}, not {offset}; starting over")
            mode = "ab"
        elif resp.status == 200:
            offset, mode = 0, "wb"  # no Range support: start from the beginning
        else:
            raise FileFailure("download", f"{url}: HTTP {resp.status} {resp.reason}")
        length = resp.headers.get("Content-Length")
        written = 0
        with open(part, mode) as out:
            try:
                for block in resp.stream(_CHUNK):
                    out.write(block)
                    written += len(block)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Retryable(f"body interrupted after {offset + written} bytes: {exc}") from exc
        if length is not None and written != int(length):
            raise _Retryable(f"got {written} of {length} bytes")
    finally:
        resp.drain_conn()  # an unread error body would spoil the pooled connection
        resp.release_conn()


def is_remote(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")
