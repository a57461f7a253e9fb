"""Which version of a remote file GDAL reads in place (/vsicurl/, /vsis3/): its length, ETag and
Last-Modified as the server gives them to GDAL's HEAD.

A file read in place is checked once (the tile's preparation) and read later by other jobs, block by
block: nothing ties those blocks to the checked bytes but the server's word. So the version is
recorded when the file is checked, and a reader asks again before and after its reads; any
difference (another length, ETag or Last-Modified, or one of them appearing or vanishing) is another
version, or a server that cannot say, and fails the reader. What vouches for the bytes is the rule
of downloads (`http_validators.vouched_by`): a strong ETag, or a settled Last-Modified; with
neither, the length alone tells versions apart (a new version of the same length is not seen), and
the tile is converted instead of read in place (biomass/tiles.py).
"""

from __future__ import annotations

from tilewise.shared import gdal_vsi
from tilewise.shared.errors import TilewiseError
from tilewise.shared.http_validators import vouched_by

FIELDS = ("length", "etag", "last_modified")


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
    vouched = vouched_by(version["etag"], version["last_modified"], found.get("date"), version["length"])
    return {**version, "vouched_by": vouched}


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
