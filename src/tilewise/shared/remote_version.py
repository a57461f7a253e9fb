"""Which version of a remote file GDAL reads in place (/vsicurl/, /vsis3/): its length, ETag and
Last-Modified as the server gives them to GDAL's HEAD.

A file read in place is checked once (the tile's preparation) and read later by other jobs, block by
block: nothing ties those blocks to the checked bytes but the server's word. So the version is
recorded when the file is checked, and a reader asks again before and after its reads; any
difference (another length, ETag or Last-Modified, or one of them appearing or vanishing) is another
version, or a server that cannot say, and fails the reader. As for downloads (shared/download.py), a
strong ETag or a Last-Modified at least 60 s old vouches for the bytes (a file rewritten within the
second of its Last-Modified keeps the date); a weak ETag alone does not, and a server with neither
leaves the length alone to tell versions apart (a new version of the same length is not seen):
`vouched_by` says which it is.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from tilewise.shared import gdal_vsi
from tilewise.shared.errors import TilewiseError

FIELDS = ("length", "etag", "last_modified")
SETTLED_SECONDS = 60  # a Last-Modified this old vouches for the bytes (RFC 9110 8.8.2.2)


def of(path: str) -> dict:
    """The version of the remote file `path` now: one HEAD, after GDAL's cache of it is dropped (a
    cached length would hide a new version)."""
    gdal_vsi.forget(path)
    found = gdal_vsi.headers(path)
    length = found.get("content-length")
    if length is None or not length.isdigit():  # a HEAD without Content-Length: GDAL's own way of asking
        gdal_vsi.forget(path)
        length = gdal_vsi.file_size(path)
    version = {"length": int(length), "etag": found.get("etag"), "last_modified": found.get("last-modified")}
    return {**version, "vouched_by": vouched_by(version, found.get("date"))}


def vouched_by(version: dict, date: str | None) -> str:
    """What tells this version from another: a strong ETag, else a Last-Modified settled before the
    answer's Date and our clock, else the length only."""
    etag = version.get("etag") or ""
    if etag and not etag.startswith("W/"):
        return "strong ETag"
    try:
        modified = parsedate_to_datetime(version.get("last_modified")).timestamp()
        now = min(parsedate_to_datetime(date).timestamp(), time.time()) if date else time.time()
    except (TypeError, ValueError, OverflowError):  # no Last-Modified, or not a date
        return "length only"
    return "Last-Modified" if now - modified >= SETTLED_SECONDS else "length only"


def differences(recorded: dict, now: dict) -> list[str]:
    """How `now` differs from `recorded` ("ETag "a" → "b""), or [] for the same version."""
    return [f"{name} {recorded.get(name)} → {now.get(name)}" for name in FIELDS if recorded.get(name) != now.get(name)]


def naming(version: dict) -> str:
    return ", ".join(f"{name} {version.get(name)}" for name in FIELDS)


def check_same(href: str, recorded: dict, path: str, when: str, fix: str) -> None:
    """TilewiseError naming `href`, both versions and `fix` unless the file at `path` is still the
    `recorded` version."""
    now = of(path)
    changed = differences(recorded, now)
    if changed:
        raise TilewiseError(
            f"{href}: the remote file changed {when} ({'; '.join(changed)}): the tile was checked as "
            f"[{naming(recorded)}], the server now has [{naming(now)}]; {fix}"
        )
