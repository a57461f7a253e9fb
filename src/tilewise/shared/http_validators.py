"""What tells one version of a remote file from another, by the validators of an HTTP answer: the
one rule of downloads (resumes and pieces, shared/download.py), of files read in place
(shared/remote_version.py) and of a refresh (sources/refresh.py)."""

from __future__ import annotations

import time
from datetime import UTC
from email.utils import parsedate_to_datetime

SETTLED_SECONDS = 60


def instant(value: str | None) -> float | None:
    """The Unix time an HTTP date names, in any of its three formats (RFC 9110 5.6.7: IMF-fixdate,
    RFC 850, asctime) and any zone; None when it is missing or not a date. A date without a zone
    (asctime) is GMT, never the local time."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def same_date(a: str, b: str) -> bool:
    """Two Last-Modified values name the same second (a mirror or a CDN may write it another way)."""
    x, y = instant(a), instant(b)
    return a == b if x is None or y is None else x == y


def of_date_and_length(etag: str, last_modified: str | None, length: int | None) -> bool:
    """Whether a tag is its answer's Last-Modified (seconds) and length in hex, nginx's "5f5a1c2b-1388":
    strong by its syntax, it tells no more than that date and length do (a rewrite of the same
    length within the second keeps it)."""
    when = instant(last_modified)
    return when is not None and length is not None and etag.removeprefix("W/") == f'"{int(when):x}-{length:x}"'


def vouched_by(etag: str | None, last_modified: str | None, date: str | None, length: int | None = None) -> str:
    """What tells this version of a remote file from another: "strong ETag" (unless it is made of
    the date and the `length`, `of_date_and_length`: then it vouches as the date); else "Last-Modified"
    when it is at least 60 s before the answer's Date and before our own clock (RFC 9110 8.8.2.2: a
    file rewritten within the second of its Last-Modified keeps the same date, and bytes of both
    versions would match; a server's clock may run ahead); else "length only". An answer without a
    Date comes from a server with no clock we can compare (RFC 9110 6.6.1), so its Last-Modified
    vouches for nothing. Downloads resume and read in pieces only on the first two; files read in
    place (shared/remote_version.py) are converted instead on the third."""
    if etag and not etag.startswith("W/") and not of_date_and_length(etag, last_modified, length):
        return "strong ETag"
    modified, answered = instant(last_modified), instant(date)
    if modified is None or answered is None:
        return "length only"
    return "Last-Modified" if min(answered, time.time()) - modified >= SETTLED_SECONDS else "length only"
