"""A refresh: ask the servers again which files changed since their chunk was made.

Each file's ledger record keeps the validators of the download its outputs came from (`remote`).
A refresh asks about every http(s) file of the chunks that have a ledger, many at once (a thread
pool as wide as the `net` resource, each request retried like a download), with the question a
download asks: a one-byte Range GET (`bytes=0-0`), whose answer (ETag, Last-Modified and the
Content-Range total) is what the chunk's download would get. A HEAD may come from another cache or
backend than a GET (a CDN, a redirect cached in front of HEAD, an upload under way), so it only
answers when the Range GET is refused (a 405, a 403 of a firewall, …; a 404 or 410 is the file
gone, as a download would find it), gives neither a validator nor a length, or gives no validator
where the record has one (then the HEAD's validators, with the GET's length). A server that ignores
the Range answers 200 with the whole body: its headers are read and the body is closed unread.
The answer is compared with that record:

- a different length (the recorded Content-Length, or stored size, against the answer's) is always
  a change, whatever the validators say;
- else an ETag both carry: a different tag is a change; the same tag is the same file, except that
  a weak ETag (`W/"…"`, on either side) does not vouch for the bytes alone: when both also carry a
  Last-Modified, it must be equal too;
- else Last-Modified, as the instant it names; the same date vouches for the bytes only if it was
  settled when they were downloaded (the rule of resumes, `vouched_by`: a file rewritten within the
  second keeps its date): else the file is changed once the date is settled, and while it is not
  (in the future, of this minute) it counts as no validator;
- else the length alone: a server that gives no validator is reported, and its file counts as
  changed only if its length changed; with no length either it cannot be told (`unknown`), is
  reported, and kept as it is.

A file the server no longer has (404, 410) is `gone` and runs its chunk again, whose download then
records what the server does. One it could not be asked about (a 503, a refused connection, a
timeout after the retries) is `unchecked`: reported loudly (a warning in the log, and in the
refresh report) and nothing reruns: its chunk keeps its outputs, and the next refresh asks again
(its ledger still records the version it was made from). What a changed file's chunk gets is its
new entry in the chunk's remote state (tilewise.sources.remote_state), passed to the job as params:
that reruns it. The entry names the version found and the ledger it was found against, so a rerun
whose download still got the old version (a stale cache) is found again by the next refresh, and
runs again. Files without a ledger record (new in the list, or in a chunk never prepared) are not
asked: their chunk runs anyway. Local files are compared by the md5 of their bytes: planning
compares their size and time with the store index at every run (tilewise.sources.store_index), a
refresh their bytes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path

from tilewise.shared.download import DownloadSettings, NotFound, RemoteState, head, is_remote, make_pool
from tilewise.shared.errors import FileFailure
from tilewise.shared.file_md5 import file_md5
from tilewise.shared.http_validators import instant, of_date_and_length, same_date, vouched_by
from tilewise.sources import ledger, remote_state
from tilewise.sources.catalog import FileEntry

CHANGED = ("changed", "gone")  # the results that run a file's chunk again (not "unchecked": asked again next time)


@dataclass(frozen=True)
class Finding:
    """What the refresh found for one file: `result` is unchanged, changed, gone, unchecked, or
    unchanged/changed/unknown with `no_validator`; `entry` the remote-state entry it gives."""

    chunk: str
    url: str
    file: str
    result: str
    before: str
    now: str
    entry: list[str] | None = None
    no_validator: bool = False


@dataclass
class Refresh:
    """One source's refresh: per chunk its remote-state entries, and every file's finding."""

    entries: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    heads: int = 0
    local: int = 0  # local files hashed
    seconds: float = 0.0

    def changed_chunks(self) -> list[str]:
        return sorted({f.chunk for f in self.findings if f.result in CHANGED})


# the coding a server appends to the tag of a compressed answer (Apache's DeflateAlterETag "abc-gzip",
# Jetty's "abc--gzip", ";gzip"): the same file's tag, coded or not
_CODING_SUFFIX = re.compile(r'(?:--?|;)(?:gzip|x-gzip|br|deflate|zstd|compress)"$')


def _tag(etag: str) -> str:
    """The tag itself: without W/ and without a content coding's suffix (a server may code the
    download's whole answer but not its answer to a Range, whatever Accept-Encoding said)."""
    return _CODING_SUFFIX.sub('"', etag[2:] if etag.startswith("W/") else etag)


def _length(record: dict) -> int | None:
    return record.get("content_length") if record.get("content_length") is not None else record.get("size")


def _weak(etag: str) -> bool:
    return etag.startswith("W/")


def compare(before: dict, now: RemoteState, downloaded: float | None = None) -> tuple[str, list[str], bool]:
    """(unchanged | changed | unknown, the entry naming `now`'s version, whether no validator was
    shared): a different length is always a change; else the strongest validator both the record
    and the answer carry decides, a weak ETag only with an equal Last-Modified (when both give one).
    Last-Modified values are compared as instants, and the same one vouches for the bytes only if it
    was settled when they were downloaded (`_settled`; `downloaded`: the ledger's time, for a record
    without the answer's Date)."""
    was, length = _length(before), now.content_length
    etags = bool(before.get("etag") and now.etag)
    dates = bool(before.get("last_modified") and now.last_modified)
    if etags and _tag(before["etag"]) != _tag(now.etag):
        return "changed", ["etag", now.etag], False
    if was is not None and length is not None and was != length:  # the bytes cannot be the same
        return "changed", ["length", str(length)], not (etags or dates)
    strong = etags and not (_weak(before["etag"]) or _weak(now.etag))
    if strong and not of_date_and_length(before["etag"], before.get("last_modified"), was):
        return "unchanged", ["etag", now.etag], False  # a strong ETag vouches alone
    if dates and not same_date(before["last_modified"], now.last_modified):
        return "changed", ["last-modified", now.last_modified], False
    if dates and downloaded is not None and not _settled(before["last_modified"], before.get("date"), downloaded):
        if _settled(now.last_modified, now.date, time.time()):  # a download now gets a date that vouches
            return "changed", ["last-modified", now.last_modified], False
        if etags:  # a weak tag (or one made of the date) does not vouch alone: reported as no validator
            return "unchanged", ["etag", now.etag], True
        dates = False  # in the future, or of this minute: no validator, until it settles
    if etags:
        return "unchanged", ["etag", now.etag], False
    if dates:
        return "unchanged", ["last-modified", now.last_modified], False
    if was is not None and length is not None:
        return "unchanged", ["length", str(length)], True
    return "unknown", ["length", "?"], True


def _settled(last_modified: str, date: str | None, fallback: float) -> bool:
    """Whether a Last-Modified vouched for the bytes of the answer it came with: at least 60 s before
    that answer's Date (`fallback`, our clock's time of the answer, for one without a Date or with
    one that is not a date: else such a server's files were never settled and reran at every refresh),
    by the rule of downloads (`vouched_by`): a file rewritten within the second keeps its date, and a
    date in the future tells nothing."""
    answered = date if instant(date) is not None else formatdate(fallback, usegmt=True)
    return vouched_by(None, last_modified, answered) == "Last-Modified"


def _describe(state: dict | RemoteState | None) -> str:
    if state is None:
        return ""
    if isinstance(state, dict):
        etag, modified, length = state.get("etag"), state.get("last_modified"), _length(state)
    else:
        etag, modified, length = state.etag, state.last_modified, state.content_length
    parts = [f"ETag {etag}" if etag else "", f"Last-Modified {modified}" if modified else ""]
    parts.append(f"{length:,} bytes" if length is not None else "")
    return ", ".join(p for p in parts if p) or "no validator, no length"


def _find(chunk: str, entry: FileEntry, record: dict, ask: Callable[..., RemoteState], stamp: str) -> Finding:
    """`ask(url, by_get)` the server; `stamp` names the ledger the record is from (its mtime in ns:
    when the download was made, at the latest)."""
    before = record.get("remote")
    downloaded = int(stamp.split()[-1]) / 1e9
    try:
        now = _ask(ask, entry.url, before, downloaded)
    except NotFound as exc:  # stays put while it is gone; back, it is "new" (its record has no download)
        return Finding(chunk, entry.url, entry.name, "gone", _describe(before), str(exc), ["gone", ""])
    except FileFailure as exc:  # no entry: its chunk keeps its outputs, the next refresh asks again
        return Finding(chunk, entry.url, entry.name, "unchecked", _describe(before), str(exc))
    if before is None:  # its last download failed: ask the server again by downloading it, at every refresh
        now_text = _describe(now)
        return Finding(chunk, entry.url, entry.name, "changed", "not downloaded", now_text, ["new", now_text, stamp])
    result, version, no_validator = compare(before, now, downloaded)
    now_text = _describe(now)
    if result == "changed":
        version = [*version, stamp]
        if version[0] == "last-modified" and same_date(before["last_modified"], now.last_modified):
            now_text += " (the same date, not settled when the file was downloaded: it does not vouch for those bytes)"
    elif no_validator and before.get("last_modified") and same_date(before["last_modified"], now.last_modified or ""):
        now_text += " (its Last-Modified is in the future or of this minute: it vouches for nothing yet)"
    return Finding(chunk, entry.url, entry.name, result, _describe(before), now_text, version, no_validator)


def _ask(ask: Callable[..., RemoteState], url: str, before: dict | None, downloaded: float) -> RemoteState:
    """What a download would get: a one-byte Range GET's answer. A HEAD answers only when the GET is
    refused (not a 404 or 410: the file is gone for a download too), or when the GET's answer cannot
    tell: neither a validator nor a length (e.g. a 200 with a chunked body) and the HEAD's can, or no
    validator where the record has one (a gateway or a CDN that drops them from its answers to a
    Range): then the HEAD's validators, with the GET's length when it gave one."""
    try:
        got = ask(url, True)
    except NotFound:
        raise
    except FileFailure:  # a GET range refused (405, a firewall's 403, …): ask as a HEAD-only server allows
        return ask(url, False)
    if before is None:
        return got
    bare = not (got.etag or got.last_modified) and bool(before.get("etag") or before.get("last_modified"))
    if not bare and compare(before, got, downloaded)[0] != "unknown":
        return got
    try:
        head = ask(url, False)
    except FileFailure:
        return got
    if bare:  # else a new version of the same length passed for unchanged, "no validator"
        length = got.content_length if got.content_length is not None else head.content_length
        return replace(got, etag=head.etag, last_modified=head.last_modified, date=head.date, content_length=length)
    return head if compare(before, head, downloaded)[0] != "unknown" else got


def _find_local(chunk: str, entry: FileEntry, record: dict, path: Path) -> Finding:
    """A local file's bytes against the md5 its copy recorded."""
    before = record["remote"]["md5"]
    now = file_md5(path)
    result = "unchanged" if now == before else "changed"
    return Finding(chunk, entry.url, entry.name, result, f"md5 {before}", f"md5 {now}", ["md5", now])


def _records(path: Path) -> dict[tuple[str, str], dict] | None:
    """(url, download name) → its ledger record, or None when the chunk has no usable ledger."""
    try:
        return {(r["url"], r["file"]): r for r in ledger.read(path).files}
    except ledger.LedgerError:
        return None


def check(
    chunks: dict[str, list[FileEntry]],
    ledgers: dict[str, Path],
    remote_files: dict[str, Path],
    excluded: Callable[[str], bool],
    settings: DownloadSettings,
    connections: int,
    folder: Path,
) -> Refresh:
    """HEAD every http(s) file with a ledger record (`excluded(name)`: downloads the recipe drops,
    never fetched), hash every local one that has a record (`folder`: the catalog entry's, for
    relative paths) and give each chunk its remote-state entries."""
    asked: list[tuple[str, FileEntry, dict, str]] = []
    local: list[tuple[str, FileEntry, dict, Path]] = []
    for chunk, files in chunks.items():
        records = _records(ledgers[chunk]) if ledgers[chunk].exists() else None
        stamp = f"ledger {os.stat(ledgers[chunk]).st_mtime_ns}" if records is not None else ""
        for e in files:
            record = (records or {}).get((e.url, e.name))
            if record is None or excluded(e.name):
                continue
            if is_remote(e.url):
                asked.append((chunk, e, record, stamp))
            elif (record.get("remote") or {}).get("md5") and (path := e.local_path(folder)).is_file():
                local.append((chunk, e, record, path))  # one deleted left its chunk's inputs: Snakemake reruns it
    pool = make_pool(settings, maxsize=connections)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections, thread_name_prefix="head") as ex:
        ask = lambda url, by_get: head(url, settings, pool, by_get)  # noqa: E731
        findings = list(ex.map(lambda job: _find(*job[:3], ask, job[3]), asked))
        findings += ex.map(lambda job: _find_local(*job), local)
    refresh = Refresh(findings=findings, heads=len(asked), local=len(local), seconds=time.perf_counter() - start)
    by_chunk: dict[str, list[Finding]] = {}
    for f in findings:
        by_chunk.setdefault(f.chunk, []).append(f)
    for chunk, files in chunks.items():
        kept = remote_state.read(remote_files[chunk])
        names = {e.name for e in files}
        entries = {name: v for name, v in kept.items() if name in names}
        for f in by_chunk.get(chunk, []):
            if f.result in CHANGED:
                entries[f.file] = f.entry
        refresh.entries[chunk] = entries
    return refresh


def summary(source: str, refresh: Refresh) -> list[str]:
    """Lines for the log: what was asked, what changed, which servers gave no validator, and a
    warning naming the files no request could ask about (unchecked: kept, asked again next time)."""
    counts = {r: sum(1 for f in refresh.findings if f.result == r) for r in ("unchanged", "unchecked", *CHANGED)}
    rate = refresh.heads / refresh.seconds if refresh.seconds > 0 else 0.0
    changed = refresh.changed_chunks()
    lines = [
        f"tilewise: source {source}: refresh asked {refresh.heads:,} files in {refresh.seconds:.1f} s "
        f"({rate:,.0f} files/s) and read {refresh.local:,} local files: {counts['changed']} changed, "
        f"{counts['gone']} gone, {counts['unchecked']} unchecked, {counts['unchanged']} unchanged; "
        f"chunks prepared again: {', '.join(changed) or 'none'}"
    ]
    for f in [f for f in refresh.findings if f.result != "unchanged" or f.no_validator][:50]:
        note = " (no validator: compared by length)" if f.no_validator and f.result != "unknown" else ""
        if f.result == "unknown":
            note = " (no validator and no length: cannot tell; kept as it is)"
        if f.result == "unchecked":
            note = " (no answer: kept as it is, asked again at the next refresh)"
        lines.append(f"  {f.file} [chunk {f.chunk}]: {f.result}{note}: {f.before or '-'} → {f.now}")
    if counts["unchecked"]:
        lines.append(
            f"tilewise: WARNING: source {source}: {counts['unchecked']:,} files could not be asked (unchecked: "
            f"the server did not answer after the retries); their chunks keep their outputs and the next "
            f"refresh asks again (reports/{source}/refresh.csv lists them)"
        )
    return lines
