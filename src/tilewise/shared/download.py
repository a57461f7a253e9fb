"""Downloads that resume, retry with bounded backoff, and store only bytes they can vouch for.

http(s) goes through urllib3 (no shell, no external tool); file:// URLs and plain paths are copied.
A download is written as `{name}.part` and renamed when complete. The rules (docs/reliability.md):

- Never splice two versions. A resume sends `Range` from 4 KiB before the end of what is stored and
  `If-Range` with the first response's validator (strong ETag, else a Last-Modified at least 60 s
  old: a file rewritten within its second keeps its date). The 206 must carry the range asked for,
  the same total and validators, and re-send the 4 KiB unchanged; a changed file, any other 206, a
  416 or a content coding restart from byte 0; a 200 is a new full body. Re-sent bytes prove where
  a body starts only if no shift of the file leaves them unchanged (`_telling`): before a run of
  nodata the resume asks from 64 KiB or 1 MiB back, and where even those repeat, starts over.
- One file, one length: a 200 that carries a Content-Range of part of the file, or whose length
  differs from the one an earlier answer of the same version gave (a whole 200's Content-Length, a
  Content-Range's total), a 200 to a resume of exactly the range's length, or a 206 off the range
  or total asked, contradicts the server's other answers (`_Contradiction`): the file starts over
  from byte 0 and is never resumed again; a second contradiction fails it, naming both. Bytes sent
  past a Content-Length are not seen (the declared length frames the body).
- Accept only a verified length: Content-Length, chunked framing, or the end of a gzip stream. A body
  ended only by the connection closing must have the Content-Length of a HEAD or, with none, be
  read twice with the same md5.
- Store the file's bytes: a gzip Content-Encoding is decoded (a `.gz` or `.tgz` name, in any case,
  keeps the gzip bytes, which are the file), and an encoded body is never resumed. A body decoded
  past `max_decoded_bytes` fails: decoding is unpacking, and the caller's cap on what a download
  unpacks to (a source's `unpack.max_unpacked_gb`) holds for it too.
- Only `chunked` transfer coding is decoded (http.client's; `identity` is none): a body under any
  other (`gzip, chunked`, `chunked, identity`) would be stored with its framing, so it fails.
- A URL's user info (`https://user:pass@host/…`) is sent as Basic authorization, as wget and curl
  do, and dropped on a redirect to another host; no message, log line or record names a URL's
  secrets (`url_secrets.masked`: user info, a signature or token in the query).
- A redirect's Location of raw UTF-8 bytes is followed as those bytes (percent-encoded), as curl and
  wget follow it: http.client's Latin-1 reading of them named another file.
- `max_seconds_per_file` bounds the wall time, also of headers or a body that trickle in: a timer
  shuts the socket at the deadline (read timeouts restart with every byte).
- A file may come in pieces over several connections (`Pieces`): each piece is checked like a
  resume, and any doubt drops the pieces for one ordinary download of the whole file.
"""

from __future__ import annotations

import logging
import mmap
import os
import random
import re
import shutil
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
import urllib3.connection

from tilewise.shared.errors import FileFailure
from tilewise.shared.file_md5 import file_md5
from tilewise.shared.http_validators import vouched_by
from tilewise.shared.url_secrets import masked

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
_CHUNK = 1 << 16
_OVERLAP = 1 << 12  # a resume re-reads this many stored bytes and compares them
_LONGER_OVERLAPS = (1 << 16, 1 << 20)  # or this many, where the last 4 KiB are not `_telling`
_CHANCE_REPEAT = 64  # bytes: a shorter repeat inside a re-sent window is chance, not a period
_MIN_PIECE = 4 * _OVERLAP  # smaller pieces would mostly re-send the bytes before them
_GZIP = ("gzip", "x-gzip")
_GZIP_MAGIC = b"\x1f\x8b"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)
T = TypeVar("T")


@dataclass(frozen=True)
class DownloadSettings:
    """The `download:` section of the config (its defaults live in config/config.yaml only)."""

    connections: int  # parallel downloads inside one job
    attempts: int
    backoff_seconds: float
    max_backoff_seconds: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_seconds_per_file: float  # a file's wall time: no retry starts after it, a body arriving is cut at it
    ahead_mb: float  # downloaded but unconverted files a chunk job may hold (downloads in flight on top)
    piece_mb: float  # a file of two pieces or more may come in byte ranges of this size over idle connections; 0: never

    @classmethod
    def from_config(cls, section: dict) -> DownloadSettings:
        return cls(**section)


@dataclass(frozen=True)
class RemoteState:
    """What the server said about a file, to store per file: a refresh asks `head` and compares.

    `content_length` is the file's length as the server gave it (Content-Length of an unencoded 200,
    the total of a Content-Range, a HEAD's for a body without one), else None. `size` and `md5`
    describe the stored bytes (None from `head`). `date` is the answer's Date: a refresh asks whether
    the Last-Modified was settled when the bytes were downloaded (`http_validators.vouched_by`)."""

    url: str
    final_url: str  # after redirects
    etag: str | None = None
    last_modified: str | None = None
    content_length: int | None = None
    size: int | None = None
    md5: str | None = None
    date: str | None = None

    @property
    def validator(self) -> str | None:
        """What If-Range may carry: a strong ETag, else Last-Modified (a weak ETag is not allowed)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


class NotFound(FileFailure):
    """The server answered 404 or 410: it has no such file (retrying cannot help)."""


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None, *, restart: bool = False):
        super().__init__(message)
        self.wait = wait
        self.restart = restart  # the stored bytes cannot be continued: start from byte 0, at once


class _Contradiction(_Retryable):
    """The server's answers disagree about the file's length or range under one version's validators
    (a part sent as "200 OK", a 206 off the range asked): its ranges cannot be trusted. The file starts
    over from byte 0 without Range; a second contradiction fails it (`_Known.contradicted`)."""

    def __init__(self, message: str):
        super().__init__(message, restart=True)


@dataclass
class _Known:
    """What one fetch learnt across its attempts about the bytes in `.part`."""

    first: RemoteState | None = None  # the 200 they came from
    resumable: bool = False  # it had a validator and no content coding
    total: int | None = None  # the file's length, once a response gave it
    once: tuple[int, str] | None = None  # (size, md5) of a body without a length, read once
    head: RemoteState | None = None  # a HEAD's answer for the version of `first`
    offer: Offer | None = None  # where pieces may be offered to other connections (None: never split)
    max_decoded: int | None = None  # bytes a Content-Encoding may decode to (None: no cap)
    contradicted: str | None = None  # the first contradiction: no Range is asked again, a second one fails


_watching = threading.local()  # the _Watchdog of the request this thread is making


class _Watchdog:
    """Shuts the socket of one attempt's requests at the deadline. Read timeouts restart with every
    byte, so they cannot bound headers or a body that trickle in; shutting the socket wakes a blocked
    read at once. Connections register themselves when they send a request (redirects included)."""

    def __init__(self, deadline: float):
        self.cut = threading.Event()
        self.conn = None
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._shut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._outer, _watching.dog = getattr(_watching, "dog", None), self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        _watching.dog = self._outer

    def stop(self) -> None:
        """After this the timer never touches the connection (it may go back to the pool)."""
        with self._lock:
            self._stopped = True
        self._timer.cancel()

    def _shut(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.cut.set()
            sock = getattr(self.conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _watched(base: type) -> type:
    """The pools' connections: watched by the request's `_Watchdog`, and reading a Location as sent."""

    class Watched(base):
        def request(self, *args, **kwargs):
            dog = getattr(_watching, "dog", None)
            if dog is not None:
                dog.conn = self
            return super().request(*args, **kwargs)

        def getresponse(self):
            resp = super().getresponse()
            location = resp.headers.get("Location")
            if location is not None:
                resp.headers["Location"] = _location_as_sent(location)
            return resp

    return Watched


def _location_as_sent(location: str) -> str:
    """http.client reads header bytes as Latin-1, so a Location of raw UTF-8 (a non-ASCII file name
    not percent-encoded, `/Höhe.tif`) came back as mojibake and its redirect asked for another file;
    read as UTF-8, urllib3 percent-encodes the bytes the server sent, as curl and wget follow them."""
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes (or already text beyond Latin-1): as it came
        return location


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPConnection)


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPSConnection)


def make_pool(settings: DownloadSettings, maxsize: int = 4) -> urllib3.PoolManager:
    pool = urllib3.PoolManager(
        maxsize=maxsize,
        timeout=urllib3.Timeout(connect=settings.connect_timeout_seconds, read=settings.read_timeout_seconds),
        # Redirects are followed by urllib3; every other retry is ours (we resume, it would not).
        retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=10),
        headers={"User-Agent": "tilewise (+https://github.com/tilewise)"},
    )
    pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return pool


def fetch(
    url: str,
    dest: Path,
    local: Path | None,
    settings: DownloadSettings,
    pool,
    offer: Offer | None = None,
    max_decoded_bytes: int | None = None,
) -> RemoteState:
    """Store `url` at `dest` and return what the server said about it, with the stored bytes' md5;
    raise FileFailure('download', …) when it cannot be had. With an `offer`, a large file may come
    in pieces that other connections help with (see `Pieces`); a body whose Content-Encoding decodes
    to more than `max_decoded_bytes` fails."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local is not None:
            return _copy_local(url, local, dest)
        part = dest.with_name(dest.name + ".part")
        part.unlink(missing_ok=True)  # left by an earlier process: its version is unknown
        known = _Known(offer=offer, max_decoded=max_decoded_bytes)
        try:
            state = _retrying(
                url, settings, "download", lambda until: _attempt(url, part, pool, settings, until, known)
            )
            os.replace(part, dest)
            return state
        finally:
            part.unlink(missing_ok=True)
    finally:
        if offer is not None:
            offer.answer(None)  # the file came whole, or not at all (a no-op after the first answer)


def head(url: str, settings: DownloadSettings, pool, by_get: bool = False) -> RemoteState:
    """The server's validators for `url` now (size and md5 None), retried like a download;
    raise FileFailure('head', …) when it cannot be had. `by_get`: asked with a one-byte Range GET,
    whose answer is what a download gets (a HEAD may come from another cache or backend)."""
    return _retrying(url, settings, "head", lambda deadline: _head_watched(url, pool, settings, deadline, by_get))


def is_remote(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _copy_local(url: str, local: Path, dest: Path) -> RemoteState:
    if not local.is_file():
        raise FileFailure("download", f"{local}: no such file")
    part = dest.with_name(dest.name + ".part")
    try:
        shutil.copyfile(local, part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    size = dest.stat().st_size
    modified = formatdate(local.stat().st_mtime, usegmt=True)
    return RemoteState(url, str(local), None, modified, size, size, file_md5(dest))


def _backoff(settings: DownloadSettings, n: int, retry_after: float | None) -> float:
    """The wait before attempt n + 1 (none after attempt 0: a restart), at least a server's Retry-After,
    at most `max_backoff_seconds`."""
    wait = min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** (n - 1)) if n else 0.0
    return wait if retry_after is None else min(settings.max_backoff_seconds, max(wait, retry_after))


def _retrying(url: str, settings: DownloadSettings, step: str, attempt: Callable[[float], T]) -> T:
    """Every error of a download passes here: its message is masked (urllib3's name the URL too)."""
    deadline = time.monotonic() + settings.max_seconds_per_file
    for n in range(1, settings.attempts + 1):
        try:
            return attempt(deadline)
        except _Retryable as exc:
            error = exc
            wait = _backoff(settings, 0 if exc.restart else n, exc.wait) * (1 + 0.1 * random.random())
            if n == settings.attempts or time.monotonic() + wait >= deadline:
                break
            log.warning("%s", masked(f"{url}: {exc}; retry {n}/{settings.attempts - 1} in {wait:.1f} s"))
            time.sleep(wait)
        except FileFailure as exc:
            raise type(exc)(exc.step, masked(str(exc))) from exc.__cause__
    raise FileFailure(step, masked(f"{url}: gave up after {n} attempt{'s' * (n > 1)}: {error}"))


def _request(method: str, url: str, pool, settings: DownloadSettings, deadline: float, headers: dict):
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Retryable(_time_up(settings))
    timeout = urllib3.Timeout(
        connect=min(settings.connect_timeout_seconds, left), read=min(settings.read_timeout_seconds, left)
    )
    try:  # identity: Range and Content-Length are then about the file's own bytes
        return pool.request(
            method,
            url,
            headers={"Accept-Encoding": "identity", **_authorization(url), **headers},
            preload_content=False,
            decode_content=False,
            timeout=timeout,
        )
    except urllib3.exceptions.HTTPError as exc:  # connection refused/reset, timeouts
        dog = getattr(_watching, "dog", None)
        if dog is not None and dog.cut.is_set():
            raise _Retryable(f"{_time_up(settings)} before the response headers came") from exc
        raise _Retryable(f"connection error: {exc}") from exc


def _authorization(url: str) -> dict:
    """The Basic authorization of a URL's user info (percent-decoded, as curl and wget send it), or
    none; urllib3 drops it on a redirect to another host (`Retry.remove_headers_on_redirect`)."""
    parts = urlsplit(url)
    if parts.username is None:
        return {}
    user, password = unquote(parts.username), unquote(parts.password or "")
    return urllib3.util.make_headers(basic_auth=f"{user}:{password}")


def _check_status(url: str, resp, step: str) -> None:
    if resp.status in RETRY_STATUS:
        raise _Retryable(f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After")))
    if resp.status in (404, 410):
        raise NotFound(step, f"{url}: HTTP {resp.status} {resp.reason}")
    if resp.status >= 400 and resp.status != 416:
        raise FileFailure(step, f"{url}: HTTP {resp.status} {resp.reason}")
    coding = resp.headers.get("Transfer-Encoding")
    if coding is not None and coding.strip().lower() not in ("chunked", "identity"):  # http.client reads others raw
        raise FileFailure(
            step,
            f"{url}: unsupported Transfer-Encoding {coding!r}: only 'chunked' is decoded, and the body would be "
            "stored with its coding's bytes; ask the server for the file without it (or fetch it by hand and "
            "list the local path)",
        )


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


def _int(value: str | None) -> int | None:
    """A header's number; one of more than 19 digits (beyond 2**63) is none: no length is that long,
    and int() of thousands of digits raises."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 19 else None


def _content_range(value: str | None) -> tuple[int, int, int] | None:
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    numbers = tuple(_int(m[i]) for i in (1, 2, 3)) if m else ()
    return numbers if numbers and None not in numbers else None


def _coding(resp) -> str:
    return resp.headers.get("Content-Encoding", "identity").strip().lower() or "identity"


def _state(url: str, resp) -> RemoteState:
    h = resp.headers
    length = None
    if resp.status == 206 or h.get("Content-Range", "").strip():  # a 200's Content-Range: its total is the file's
        rng = _content_range(h.get("Content-Range"))
        length = rng[2] if rng and _coding(resp) == "identity" else None
    elif _coding(resp) == "identity" and not resp.chunked:
        length = _int(h.get("Content-Length"))
    redirects = resp.retries.history if resp.retries else ()
    final = urljoin(redirects[-1].url, redirects[-1].redirect_location) if redirects else url
    return RemoteState(masked(url), masked(final), h.get("ETag"), h.get("Last-Modified"), length, date=h.get("Date"))


def _done(resp, reuse: bool) -> None:
    if not reuse:  # never drain an unfinished body: it may trickle for hours
        resp.close()
    resp.release_conn()


def _time_up(settings: DownloadSettings) -> str:
    return f"max_seconds_per_file ({settings.max_seconds_per_file:g} s) reached"


def _got(n: int, expected: int | None, start: int = 0) -> str:
    text = f"got {n:,} of {expected:,} bytes" if expected is not None else f"got {n:,} bytes"
    return text + (f" from byte {start:,}" if start else "")


def _attempt(url: str, part: Path, pool, settings: DownloadSettings, deadline: float, known: _Known) -> RemoteState:
    try:
        with _Watchdog(deadline) as dog:
            return _attempt_watched(url, part, pool, settings, deadline, known, dog)
    except BaseException as exc:
        if isinstance(exc, _Contradiction):
            _note_contradiction(url, known, exc)
        if known.offer is not None:  # no 200 yet: the file comes whole, whenever it comes
            known.offer.answer(None)
            known.offer = None
        raise


def _note_contradiction(url: str, known: _Known, exc: _Contradiction) -> None:
    """The first contradiction starts the file over from scratch (the caller retries it): which of the
    two answers was wrong is unknown, so neither length is kept. A second contradiction fails it."""
    if known.contradicted is None:
        known.contradicted, known.first, known.total, known.head = str(exc), None, None, None
        return
    raise FileFailure(
        "download",
        f"{url}: the server's answers contradict each other about the file's length or range: {known.contradicted}; "
        f"then, asked again from byte 0 without Range: {exc}",
    ) from exc


def _attempt_watched(url: str, part: Path, pool, settings, deadline: float, known: _Known, dog: _Watchdog):
    resumable = known.resumable and known.contradicted is None  # a server that contradicted itself: whole bodies only
    have = part.stat().st_size if resumable and part.exists() else 0
    start = _resume_point(part, have) if have else 0
    if start is None:
        log.warning("%s: the %d bytes stored end in bytes that repeat themselves; starting over", masked(url), have)
        have = start = 0
    asked = {"Range": f"bytes={start}-", "If-Range": known.first.validator} if have else {}
    resumed = (start, known.total) if have and start and known.total is not None else None  # (from, of)
    resp = _request("GET", url, pool, settings, deadline, asked)
    finished = False
    try:
        _check_status(url, resp, "download")
        got, coding = _state(url, resp), _coding(resp)
        if coding not in ("identity", *_GZIP):
            raise FileFailure("download", f"{url}: unsupported Content-Encoding {coding!r}")
        if resp.status == 206 and have:
            _check_resume(resp, start, got, coding, known)
            with open(part, "rb") as f:
                f.seek(start)
                overlap = f.read()
            expected, mode = known.total - start, "ab"
        elif resp.status == 200:  # also the answer to a Range request for a changed file
            fixed = _check_whole(url, resp, got, asked, known)
            _check_not_the_range(got.content_length, resumed)
            if known.first is None or _validators(known.first) != _validators(got):
                known.head = None  # a HEAD of another version says nothing of this one
            known.first, known.resumable = got, coding == "identity" and _strong_validator(resp, got)
            known.total = fixed
            start, overlap, mode, expected = 0, b"", "wb", resp.length_remaining
            if expected is None and coding == "identity":  # no Content-Length: the body must end at the length fixed
                expected = fixed
            if pieces := _pieces_of(resp, got, url, part, pool, settings, deadline, known):
                return pieces.fetch(resp, dog)
        elif resp.status in (206, 416) or have:  # e.g. a 304 from a server that takes If-Range for If-None-Match
            raise _Retryable(f"HTTP {resp.status} to {asked.get('Range', 'no Range')}; starting over", restart=True)
        else:
            raise FileFailure("download", f"{url}: HTTP {resp.status} {resp.reason}")
        gz_name = part.name.removesuffix(".part").lower().endswith((".gz", ".tgz"))  # as unpack reads suffixes
        with open(part, mode) as out:
            sink = _Sink(out, overlap, coding in _GZIP, gz_name, (url, known.max_decoded))
            n, broken = _read_body(resp, dog, sink.write)
            if not dog.cut.is_set() and not broken:
                sink.finish()
        # a read timeout is clamped to the time left: one that fires at the deadline is the deadline
        if dog.cut.is_set() or (broken and time.monotonic() >= deadline):
            raise _Retryable(f"{_time_up(settings)}: {_got(n, expected, start)}")
        if broken:
            raise _Retryable(f"connection broken: {_got(n, expected, start)} ({broken})")
        finished = True
        if not sink.complete:
            raise _Retryable(f"gzip body ended before its end: {_got(n, expected)}; starting over", restart=True)
        framed = resp.chunked or resp.length_remaining is not None or coding != "identity"
        if expected is not None and n < expected and not framed:  # closing the connection ended it: a cut
            raise _Retryable(f"body without a length ended early: {_got(n, expected, start)}", restart=True)
        if expected is not None and n != expected:  # a body that ended cleanly, but not where the file does
            raise _Contradiction(f"body ended off its framing: {_got(n, expected, start)}")
        if resp.status == 200 and got.content_length is None and coding == "identity":
            _check_not_the_range(n, resumed)
        if expected is None and not resp.chunked and coding == "identity":
            _check_unframed(url, part, pool, settings, deadline, known)
    except _Retryable as exc:
        known.resumable = known.resumable and not exc.restart
        raise
    finally:
        dog.stop()  # before the connection goes back to the pool
        _done(resp, finished)
    return replace(known.first, content_length=known.total, size=part.stat().st_size, md5=file_md5(part))


def _check_whole(url: str, resp, got: RemoteState, asked: dict, known: _Known) -> int | None:
    """The length a 200 must have, as the whole file: its own, or the one an earlier answer of the same
    version gave. A 200 whose Content-Range names only part of the file, or whose length contradicts
    that earlier answer, is a part sent as "200 OK" (a download script that forgot its 206)."""
    what = f"HTTP 200 to {asked.get('Range', 'a request without Range')}"
    header = resp.headers.get("Content-Range", "").strip()
    length = _int(resp.headers.get("Content-Length")) if not resp.chunked else None
    if header:
        rng = _content_range(header)
        if rng is None or rng[:2] != (0, rng[2] - 1) or length not in (None, rng[2]):
            part = f"bytes {rng[0]:,}-{rng[1]:,} ({rng[1] - rng[0] + 1:,} of {rng[2]:,} bytes)" if rng else "a part"
            sent = f", Content-Length {length:,}" if length is not None else ""
            raise _Contradiction(f"{what} carries Content-Range {header!r}{sent}: {part} sent as the whole file")
    earlier = _length_of_this_version(resp, got, known)
    if earlier is not None and got.content_length not in (None, earlier):
        raise _Contradiction(
            f"{what} has {got.content_length:,} bytes under the same {_naming(got)}, where an earlier answer "
            f"gave the file as {earlier:,} bytes"
        )
    return got.content_length if got.content_length is not None else earlier


def _check_not_the_range(length: int | None, resumed: tuple[int, int] | None) -> None:
    """A 200 to a resume (`resumed`: from which byte, of how many) is the whole file, whatever its
    validators (a new version comes whole); one of exactly the length of the range asked is that range
    sent as "200 OK", or a new version of that length, which comes again when asked from byte 0."""
    if resumed is not None and length == resumed[1] - resumed[0]:
        start, total = resumed
        raise _Contradiction(
            f"HTTP 200 to bytes={start}- has {length:,} bytes, exactly the range asked of the file's {total:,} "
            "bytes: that range sent as the whole file"
        )


def _length_of_this_version(resp, got: RemoteState, known: _Known) -> int | None:
    """The file's length an earlier answer gave, if its validators are this answer's and vouch for the
    bytes (a strong ETag, an old Last-Modified); without validators a new length is a new version."""
    if known.first is None or known.total is None or _validators(got) != _validators(known.first):
        return None
    return known.total if _strong_validator(resp, got) else None


def _naming(state: RemoteState) -> str:
    return " and ".join(f"{k} {v}" for k, v in (("ETag", state.etag), ("Last-Modified", state.last_modified)) if v)


def _resume_point(part: Path, have: int) -> int | None:
    """Where a resume asks from: the start of the shortest window before the end of the `have`
    bytes stored (4 KiB, 64 KiB, 1 MiB or all of them) that is `_telling` and found nowhere else in
    them (a body that came from an earlier copy would re-send it unchanged); None if none is."""
    with open(part, "rb") as f:
        for size in (_OVERLAP, *_LONGER_OVERLAPS):
            start = max(0, have - size)
            f.seek(start)
            window = f.read(have - start)
            if _telling(window) and _found_once(f, window, start):
                return start
            if start == 0:
                break
    return None


def _found_once(f, window: bytes, at: int) -> bool:
    """Whether the bytes of `f` hold `window` at `at` and nowhere else."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(window) == at and data.find(window, at + 1) == -1


def _telling(window: bytes) -> bool:
    """Whether a body that re-sends `window` unchanged is where its Content-Range says. It is unless
    a shift of the file by d bytes (1 ≤ d ≤ len − 64) leaves the window unchanged, which happens
    exactly when its first len − d bytes equal its last len − d: a run of zeros or nodata, or any
    stretch that repeats, would come back unchanged from a body a few bytes early or late."""
    head = window[:_CHANCE_REPEAT]
    d = window.find(head, 1)
    while 0 < d <= len(window) - _CHANCE_REPEAT:
        if window[d:] == window[: len(window) - d]:
            return False
        d = window.find(head, d + 1)
    return len(window) >= _CHANCE_REPEAT


def _validators(state: RemoteState) -> tuple[str | None, str | None]:
    return state.etag, state.last_modified


def _check_resume(resp, start: int, got: RemoteState, coding: str, known: _Known) -> None:
    """A 206 continues the stored bytes only if it is the range asked for, of the same version."""
    first, header = known.first, resp.headers.get("Content-Range")
    rng = _content_range(header)
    problem = None
    if coding != "identity":
        problem = f"a {coding} 206 cannot continue decoded bytes"
    elif _validators(got) != _validators(first):
        pairs = (("ETag", first.etag, got.etag), ("Last-Modified", first.last_modified, got.last_modified))
        problem = "the file changed (" + ", ".join(f"{k} {a} → {b}" for k, a, b in pairs if a != b) + ")"
    elif rng is None or rng[0] != start or rng[1] != rng[2] - 1 or known.total not in (None, rng[2]):
        raise _Contradiction(f"asked for bytes={start}- of {known.total or '?'} bytes, got Content-Range {header!r}")
    if problem:
        raise _Retryable(f"{problem}; starting over", restart=True)
    known.total = rng[2]


def _read_body(resp, dog: _Watchdog, write: Callable[[bytes], None]) -> tuple[int, Exception | None]:
    """Pass the body to `write` block by block; return the bytes received and the error that broke
    it. Once the watchdog cut the socket, what looks like a clean end of body is not one."""
    n = 0
    while True:
        try:
            block = resp.read1(_CHUNK)
        except urllib3.exceptions.HTTPError as exc:
            return n, exc
        if dog.cut.is_set() or not block:
            return n, None
        n += len(block)
        write(block)


class _Sink:
    """Writes a body to `.part`: decodes gzip, and checks that a resumed body first re-sends,
    unchanged, the stored bytes it overlaps. A `.gz` file sent with Content-Encoding gzip keeps its
    gzip bytes, which are the file, unless what they decode to is gzip again (compressed twice on
    the way): the first decoded bytes tell."""

    def __init__(self, out, overlap: bytes, gzip: bool, gz_name: bool, cap: tuple[str, int | None] = ("", None)):
        self.out, self.overlap = out, overlap
        self.url, self.max_decoded, self.decoded = *cap, 0  # decoded bytes stored past max_decoded fail the file
        self.gunzip = zlib.decompressobj(wbits=31) if gzip else None
        self.keep_wire: bool | None = None if gz_name else False  # None: not known yet
        self.held: list[tuple[bytes, bytes]] = []  # (wire, decoded) until it is known

    @property
    def complete(self) -> bool:  # a gzip stream ends with its length and CRC: its end proves it whole
        return self.gunzip is None or self.gunzip.eof

    def write(self, block: bytes) -> None:
        if not self.gunzip:
            return self._store(block)
        try:
            data = self.gunzip.decompress(block)
        except zlib.error as exc:
            raise _Retryable(f"corrupt gzip body ({exc}); starting over", restart=True) from exc
        if self.gunzip.unused_data:
            raise _Retryable("data after the end of the gzip stream; starting over", restart=True)
        self.held.append((block, data))
        decoded = b"".join(d for _, d in self.held)
        if self.keep_wire is None and len(decoded) >= len(_GZIP_MAGIC):
            self.keep_wire = not decoded.startswith(_GZIP_MAGIC)
        self.decoded += len(data)
        if self.max_decoded is not None and self.decoded > self.max_decoded and self.keep_wire is not True:
            raise FileFailure(
                "download",
                f"{self.url}: its gzip Content-Encoding decodes to more than {self.max_decoded:,} bytes, over the cap "
                "on what a download unpacks to (unpack.max_unpacked_gb): a decompression bomb, or a mistake; refused "
                "(raise unpack.max_unpacked_gb if the file is that large)",
            )
        if self.keep_wire is not None:
            self.finish()

    def finish(self) -> None:
        """Store what is held (at the end of a body, whatever is known by then)."""
        held, self.held = self.held, []
        for wire, data in held:
            self._store(wire if self.keep_wire is not False else data)

    def _store(self, data: bytes) -> None:
        if self.overlap:
            head, data = data[: len(self.overlap)], data[len(self.overlap) :]
            if head != self.overlap[: len(head)]:
                raise _Retryable("the 206 body differs from the stored bytes it re-sends; starting over", restart=True)
            self.overlap = self.overlap[len(head) :]
        self.out.write(data)


def _check_unframed(url: str, part: Path, pool, settings, deadline: float, known: _Known) -> None:
    """A body ended only by the connection closing: accept it if it has the Content-Length a HEAD of
    the same version gives or, without one (or with one the body exceeds: that HEAD is not about this
    body), if two reads give the same bytes."""
    size = part.stat().st_size
    if known.head is None:
        try:
            known.head = _head_once(url, pool, settings, deadline)
        except (_Retryable, FileFailure):  # no HEAD: two reads must agree
            known.head = RemoteState(url, url)
    head_length = known.head.content_length if _validators(known.head) == _validators(known.first) else None
    if head_length is not None and size <= head_length:
        if size < head_length:
            raise _Retryable(f"body without a length ended early: {_got(size, head_length)} (HEAD)", restart=True)
        known.total = head_length
        return
    seen = (size, file_md5(part))
    if known.once != seen:
        before, known.once = known.once, seen
        if before is None:
            message = f"body without a length ({size:,} bytes): reading it again to compare"
        else:
            message = f"body without a length differs between two reads: got {before[0]:,} then {size:,} bytes"
        raise _Retryable(message, restart=True)


def _head_watched(url: str, pool, settings: DownloadSettings, deadline: float, by_get: bool) -> RemoteState:
    with _Watchdog(deadline):
        return _head_once(url, pool, settings, deadline, by_get)


def _head_once(url: str, pool, settings: DownloadSettings, deadline: float, by_get: bool = False) -> RemoteState:
    resp = None if by_get else _request("HEAD", url, pool, settings, deadline, {})
    ranged = resp is None or resp.status in (405, 501)
    if ranged:  # HEAD refused: the 206 of the first byte carries the same fields
        if resp is not None:
            _done(resp, False)
        resp = _request("GET", url, pool, settings, deadline, {"Range": "bytes=0-0"})
    try:
        _check_status(url, resp, "head")
        if resp.status not in ((200, 206, 416) if ranged else (200,)):
            # a 304 to a request without a condition (a cache revalidating on its own), a 204, a 300: its
            # headers are of no version a download gets (a download fails on it too)
            raise FileFailure("head", f"{url}: HTTP {resp.status} {resp.reason} to a request without a condition")
        state = _state(url, resp)
        if ranged and resp.status == 200 and state.content_length == 1:
            # the one byte asked, sent as "200 OK" without its Content-Range, or a one-byte file: no length
            return replace(state, content_length=None)
        return state
    finally:
        _done(resp, False)


class Offer:
    """A download's way to hand pieces of its file to idle connections: `answer` is called once,
    when the first response's headers are judged, with the file's `Pieces` or None (the file comes
    whole); the one who made the offer gives idle connections `Pieces.claim` and `Pieces.run`."""

    def __init__(self, piece_bytes: int, on_answer: Callable[[Pieces | None], None]):
        self.piece_bytes = max(piece_bytes, _MIN_PIECE)
        self._on_answer = on_answer
        self._answered = False
        self._lock = threading.Lock()

    def answer(self, pieces: Pieces | None) -> None:
        with self._lock:
            if self._answered:
                return
            self._answered = True
        self._on_answer(pieces)


def _pieces_of(resp, got: RemoteState, url: str, part: Path, pool, settings, deadline: float, known: _Known):
    """The file's Pieces when this first 200 may be split: it is the first answer, unencoded, with a
    Content-Length of at least two pieces, `Accept-Ranges: bytes` and a strong validator. Else None,
    and the offer is answered with None."""
    offer, known.offer = known.offer, None  # a retry is never split: it comes whole
    if offer is None:
        return None
    length, ranges = got.content_length, resp.headers.get("Accept-Ranges", "").lower()
    if (
        _coding(resp) != "identity"
        or resp.chunked
        or length is None
        or length < 2 * offer.piece_bytes
        or "bytes" not in ranges.split(",")[0].split()
        or not _strong_validator(resp, got)
    ):
        offer.answer(None)
        return None
    pieces = Pieces(url, part, pool, settings, deadline, got, offer.piece_bytes)
    offer.answer(pieces)
    return pieces


def _strong_validator(resp, got: RemoteState) -> bool:
    """Whether every piece can be tied to this one version (`vouched_by`)."""
    return vouched_by(got.etag, got.last_modified, resp.headers.get("Date"), got.content_length) != "length only"


class Pieces:
    """A file that comes in byte ranges over several connections. A slow portal caps each
    connection: one large file, or the file a conversion waits for, comes faster in pieces.

    Its first 200 (unencoded, with Content-Length, `Accept-Ranges: bytes`, `_strong_validator`) gives
    the first piece and is then closed; every other piece is a Range request with If-Range, taken by
    the fetching thread or by an idle connection (`claim`, `run`). A piece is accepted only as a 206 of
    exactly its range and the same total, with the first answer's validators, identity coding and
    exactly its bytes; like a resume, it asks from 4 KiB before its first byte, and once every piece
    is in, those bytes must equal the ones the piece before it stored (a 206 whose body is not the
    range its Content-Range names is caught at the first seam, the first piece being the 200's).
    A broken or stalled connection, a 5xx or a 429 asks that piece again (attempts, backoff).
    Anything else (a 200 for another version, another Content-Range, a content coding, a body
    that ends off its range, a 4xx) drops the pieces, and the
    download starts over from byte 0 as one whole body, with every check of `fetch` (a piece off its
    range or total, or its range sent as "200 OK", is a `_Contradiction`: never a Range again). So pieces
    never splice two versions: doubt costs time, never bytes."""

    def __init__(self, url, part: Path, pool, settings, deadline: float, first: RemoteState, piece_bytes: int):
        self.url, self.part, self.pool, self.settings, self.deadline = url, part, pool, settings, deadline
        self.first, self.total, self.piece_bytes = first, first.content_length, piece_bytes
        with open(part, "wb") as out:
            out.truncate(self.total)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._todo = [(a, min(a + piece_bytes, self.total) - 1) for a in range(piece_bytes, self.total, piece_bytes)]
        self._busy = 0
        self._seams: dict[int, bytes] = {}  # a piece's first byte → the bytes before it, as its 206 re-sent them
        self._written = 0  # bytes of accepted pieces
        self._wait: float | None = None  # the longest Retry-After a piece was given
        self._dropped = threading.Event()  # set with `_spoiled` or `_error`
        self._spoiled: str | None = None
        self._contradicted = False  # the reason the pieces were dropped is a `_Contradiction`
        self._error: BaseException | None = None

    def fetch(self, resp, dog: _Watchdog) -> RemoteState:
        """The fetching thread's part: the first piece from the open 200, then unclaimed pieces, then
        wait for the ones other connections took; the file's state once every byte is in place."""
        try:
            self._write(resp, dog, 0, self.piece_bytes)
        except _Retryable as exc:
            if exc.restart:
                self._spoil(exc)
            else:  # the 200's connection broke: its first piece is asked again, as any piece
                with self._lock:
                    self._todo.insert(0, (0, self.piece_bytes - 1))
        except (FileFailure, urllib3.exceptions.HTTPError) as exc:
            self._spoil(exc)
        except BaseException as exc:  # e.g. a full disk: raised once no other piece is in flight
            self._fail(exc)
        else:
            with self._lock:
                self._written += self.piece_bytes
        finally:
            dog.stop()  # its deadline must not shut the connection once another request uses it
            _done(resp, False)  # the rest of this body comes in pieces: close it, free its connection
        while span := self.claim():
            self.run(span)
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0)
        if self._error is not None:
            raise self._error
        if self._spoiled:
            why = f"pieces dropped ({self._spoiled}); starting over as one body"
            raise _Contradiction(why) if self._contradicted else _Retryable(why, self._wait, restart=True)
        if self._written != self.total:  # a piece lost on the way (never run, never failed): not one byte guessed
            raise _Retryable(f"{_got(self._written, self.total)} in pieces; starting over", restart=True)
        with open(self.part, "rb") as f:
            for start, resent in self._seams.items():
                f.seek(start - len(resent))
                if f.read(len(resent)) != resent:
                    raise _Retryable(
                        f"the 206 from byte {start - len(resent):,} differs from the bytes before it; starting over",
                        restart=True,
                    )
                # a body a few bytes off, or from another copy of these bytes, would re-send them unchanged
                if resent and not (_telling(resent) and _found_once(f, resent, start - len(resent))):
                    raise _Retryable(
                        f"the bytes before byte {start:,} repeat themselves: that seam cannot be checked; "
                        "starting over as one body",
                        restart=True,
                    )
        return replace(self.first, size=self.total, md5=file_md5(self.part))

    def claim(self) -> tuple[int, int] | None:
        """An unclaimed piece (first and last byte) for a connection to `run`; None when none is left."""
        with self._lock:
            if self._spoiled or self._error or not self._todo:
                return None
            self._busy += 1
            return self._todo.pop(0)

    def run(self, span: tuple[int, int]) -> None:
        """One claimed piece into its place, asked again after a dropped connection, a timeout, a 5xx or a 429 (with the
        download's attempts and backoff, within its time); any doubt about its bytes drops the pieces."""
        try:
            for n in range(1, self.settings.attempts + 1):
                if self._spoiled or self._error:
                    return
                try:
                    return self._fetch_piece(*span)
                except _Retryable as exc:
                    wait = _backoff(self.settings, n, exc.wait)
                    if exc.restart or n == self.settings.attempts or time.monotonic() + wait >= self.deadline:
                        if exc.wait is not None:  # not obeyed here: the whole-file fetch obeys it
                            self._wait = max(self._wait or 0.0, exc.wait)
                        raise
                    asked = f"{self.url}: bytes {span[0]}-{span[1]}: {exc}; asked again in {wait:.1f} s"
                    log.warning("%s", masked(asked))
                    self._dropped.wait(wait)  # cut short when the pieces are dropped meanwhile
        except (_Retryable, FileFailure, urllib3.exceptions.HTTPError) as exc:
            self._spoil(exc)
        except BaseException as exc:  # e.g. a full disk: the download's failure, not a reason to start over
            self._fail(exc)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def give_back(self, span: tuple[int, int]) -> None:
        """A claimed piece that will not run (its connection is gone): the pieces are dropped."""
        self._spoil(RuntimeError(f"bytes {span[0]}-{span[1]} could not be asked for"))
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _fetch_piece(self, start: int, last: int) -> None:
        resend = min(_OVERLAP, start)
        headers = {"Range": f"bytes={start - resend}-{last}", "If-Range": self.first.validator}
        with _Watchdog(self.deadline) as dog:
            resp = _request("GET", self.url, self.pool, self.settings, self.deadline, headers)
            ok = False
            try:
                self._judge(resp, start - resend, last)
                resent = self._write(resp, dog, start, last - start + 1, resend)
                with self._lock:
                    self._seams[start] = resent
                    self._written += last - start + 1
                ok = True
            finally:
                dog.stop()
                _done(resp, ok)

    def _judge(self, resp, start: int, last: int) -> None:
        _check_status(self.url, resp, "download")
        got, header = _state(self.url, resp), resp.headers.get("Content-Range")
        if resp.status != 206:  # a 200 is a whole body: another version (If-Range), or ranges forgotten …
            length = _int(resp.headers.get("Content-Length")) if not resp.chunked else None
            all_of_it = not (header or "").strip() or _content_range(header) == (0, self.total - 1, self.total)
            if _validators(got) == _validators(self.first) and not (all_of_it and length in (None, self.total)):
                sent = f"{length:,} bytes" if length is not None else "a body without a length"
                raise _Contradiction(  # … or the range sent as "200 OK"
                    f"HTTP {resp.status} to bytes={start}-{last} of {self.total:,} bytes, with the same validators, "
                    f"carries Content-Range {header!r} and {sent}"
                )
            raise _Retryable(f"HTTP {resp.status} to bytes={start}-{last}", restart=True)
        if _coding(resp) != "identity":
            raise _Retryable(f"a {_coding(resp)} 206 to bytes={start}-{last}", restart=True)
        if _validators(got) != _validators(self.first):
            raise _Retryable(
                f"the file changed between pieces: {_validators(self.first)} → {_validators(got)}", restart=True
            )
        if _content_range(header) != (start, last, self.total):
            raise _Contradiction(f"asked for bytes={start}-{last} of {self.total:,}, got Content-Range {header!r}")

    def _write(self, resp, dog: _Watchdog, offset: int, length: int, resend: int = 0) -> bytes:
        """Exactly `resend` + `length` bytes of the body: the first `resend` returned, the others
        written at `offset` of `.part` (a 200 is read no further)."""
        n, broken, resent = 0, None, b""
        with open(self.part, "r+b") as out:
            out.seek(offset)
            while len(resent) < resend and not dog.cut.is_set():
                try:
                    block = resp.read1(resend - len(resent))
                except urllib3.exceptions.HTTPError as exc:
                    broken = exc
                    break
                if not block:
                    break
                resent += block
            while n < length and len(resent) == resend and not broken and not dog.cut.is_set():
                try:
                    block = resp.read1(min(_CHUNK, length - n))
                except urllib3.exceptions.HTTPError as exc:
                    broken = exc
                    break
                if not block:
                    break
                out.write(block)
                n += len(block)
            if resp.status == 206 and n == length and not broken and not dog.cut.is_set():
                try:  # a 206 must end where its range ends
                    extra = resp.read1(1)
                except urllib3.exceptions.HTTPError as exc:
                    extra, broken = b"", exc
                if extra:
                    raise _Contradiction(f"the 206 to bytes={offset}-{offset + length - 1} runs past its range")
        if dog.cut.is_set():
            raise _Retryable(f"{_time_up(self.settings)}: {_got(n, length, offset)}", restart=True)
        if broken:  # a dropped connection: the piece may be asked again
            raise _Retryable(f"connection broken: {_got(n, length, offset)} ({broken})")
        if n != length and resp.length_remaining is None and not resp.chunked:  # closing the connection ended it
            raise _Retryable(f"piece without a length ended early: {_got(n, length, offset)}", restart=True)
        if n != length:  # a body that ended cleanly, but not where its range ends
            raise _Contradiction(f"piece ended off its range: {_got(n, length, offset)}")
        return resent

    def _spoil(self, why: BaseException) -> None:
        with self._lock:
            if self._spoiled is None:
                self._spoiled, self._contradicted = str(why), isinstance(why, _Contradiction)
            self._todo.clear()
        self._dropped.set()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._error = self._error or exc
            self._todo.clear()
        self._dropped.set()
