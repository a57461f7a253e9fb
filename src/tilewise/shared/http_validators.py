"""What tells one version of a remote file from another, by the validators of an HTTP answer: the
one rule of downloads (resumes and pieces, shared/download.py) and of files read in place
(shared/remote_version.py)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

SETTLED_SECONDS = 60


def vouched_by(etag: str | None, last_modified: str | None, date: str | None) -> str:
    """What tells this version of a remote file from another: "strong ETag"; else "Last-Modified"
    when it is at least 60 s before the answer's Date and before our own clock (RFC 9110 8.8.2.2: a
    file rewritten within the second of its Last-Modified keeps the same date, and bytes of both
    versions would match; a server's clock may run ahead); else "length only". An answer without a
    Date comes from a server with no clock we can compare (RFC 9110 6.6.1), so its Last-Modified
    vouches for nothing. Downloads resume and read in pieces only on the first two; files read in
    place (shared/remote_version.py) are converted instead on the third."""
    if etag and not etag.startswith("W/"):
        return "strong ETag"
    try:
        modified, answered = (parsedate_to_datetime(v).timestamp() for v in (last_modified, date))
    except (TypeError, ValueError, OverflowError):  # either missing or not a date
        return "length only"
    return "Last-Modified" if min(answered, time.time()) - modified >= SETTLED_SECONDS else "length only"
