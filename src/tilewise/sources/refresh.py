"""A refresh: ask the servers again, with HEAD requests, which files changed since their chunk was made.

Each file's ledger record keeps the validators of the download its outputs came from (`remote`).
A refresh HEADs every http(s) file of the chunks that have a ledger, many at once (a thread pool
as wide as the `net` resource, each request retried like a download), and compares the answer with
that record on the strongest validator both carry:

- an ETag (weak or strong: the opaque tag; a server that weakens it on the way is not a change),
- else Last-Modified,
- else the length (Content-Length): a server that gives no validator is reported, and its file
  counts as changed only if its length changed; with no length either it cannot be told, is
  reported, and counts as unchanged.

So a file whose Last-Modified moved while its ETag stayed is unchanged (the ETag says the bytes are
the same). A HEAD that says "changed" is asked again as a download would ask (a one-byte Range GET),
and that answer decides: a HEAD may come from another cache or backend than a GET (a CDN, an upload
under way). A file the server no longer has (404, 410) is `gone`, and one it could not be asked about
(other errors, after the retries) `unchecked`: both run their chunk again, whose download then
records what the server does. What a changed file's chunk gets is its new entry in the chunk's
remote state (tilewise.sources.remote_state), passed to the job as params: that reruns it. The
entry names the version found and the ledger it was found against, so a rerun whose download still
got the old version (a stale cache) is found again by the next refresh, and runs again.
Files without a ledger record (new in the list, or in a chunk never prepared) are not asked: their
chunk runs anyway. Local files are compared by the md5 of their bytes: planning compares their size
and time with the store index at every run (tilewise.sources.store_index), a refresh their bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tilewise.shared.download import DownloadSettings, NotFound, RemoteState, head, is_remote, make_pool
from tilewise.shared.errors import FileFailure
from tilewise.shared.file_md5 import file_md5
from tilewise.sources import ledger, remote_state
from tilewise.sources.catalog import FileEntry

CHANGED = ("changed", "gone", "unchecked")  # the results that run a file's chunk again


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


def _tag(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def _length(record: dict) -> int | None:
    return record.get("content_length") if record.get("content_length") is not None else record.get("size")


def compare(before: dict, now: RemoteState) -> tuple[str, list[str], bool]:
    """(unchanged | changed | unknown, the entry naming `now`'s version, whether no validator was
    shared) on the strongest validator both the record and the answer carry."""
    if before.get("etag") and now.etag:
        return ("unchanged" if _tag(before["etag"]) == _tag(now.etag) else "changed"), ["etag", now.etag], False
    if before.get("last_modified") and now.last_modified:
        same = before["last_modified"] == now.last_modified
        return ("unchanged" if same else "changed"), ["last-modified", now.last_modified], False
    if _length(before) is not None and now.content_length is not None:
        same = _length(before) == now.content_length
        return ("unchanged" if same else "changed"), ["length", str(now.content_length)], True
    return "unknown", ["length", "?"], True


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
    """`ask(url, by_get)` the server; `stamp` names the ledger the record is from."""
    before = record.get("remote")
    try:
        now = _ask_head_then_get(ask, entry.url)
    except NotFound as exc:  # stays put while it is gone; back, it is "new" (its record has no download)
        return Finding(chunk, entry.url, entry.name, "gone", _describe(before), str(exc), ["gone", ""])
    except FileFailure as exc:  # the entry names the ledger: while no answer comes, every refresh tries again
        return Finding(chunk, entry.url, entry.name, "unchecked", _describe(before), str(exc), ["unchecked", "", stamp])
    if before is None:  # its last download failed: ask the server again by downloading it, at every refresh
        now_text = _describe(now)
        return Finding(chunk, entry.url, entry.name, "changed", "not downloaded", now_text, ["new", now_text, stamp])
    result, version, no_validator = compare(before, now)
    now_text = _describe(now)
    if result == "changed":
        try:
            got = ask(entry.url, True)
        except FileFailure:  # NotFound too: the HEAD's answer stands, the chunk's download tells
            got = None
        if got is not None:
            result, version, no_validator = compare(before, got)
            if _describe(got) != now_text:
                now_text = f"{_describe(got)} (HEAD: {now_text})"
    if result == "changed":
        version = [*version, stamp]
    return Finding(chunk, entry.url, entry.name, result, _describe(before), now_text, version, no_validator)


def _ask_head_then_get(ask: Callable[..., RemoteState], url: str) -> RemoteState:
    """A HEAD's answer, else a one-byte Range GET's: servers of pre-signed GET URLs and some firewalls
    refuse HEAD (403, 404) to a file a download gets."""
    try:
        return ask(url, False)
    except FileFailure:
        return ask(url, True)


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
    """Lines for the log: what was asked, what changed, which servers gave no validator."""
    counts = {r: sum(1 for f in refresh.findings if f.result == r) for r in ("unchanged", *CHANGED)}
    rate = refresh.heads / refresh.seconds if refresh.seconds > 0 else 0.0
    changed = refresh.changed_chunks()
    lines = [
        f"tilewise: source {source}: refresh asked {refresh.heads:,} files in {refresh.seconds:.1f} s "
        f"({rate:,.0f} HEAD/s) and read {refresh.local:,} local files: {counts['changed']} changed, "
        f"{counts['gone']} gone, {counts['unchecked']} unchecked, {counts['unchanged']} unchanged; "
        f"chunks prepared again: {', '.join(changed) or 'none'}"
    ]
    for f in [f for f in refresh.findings if f.result != "unchanged" or f.no_validator][:50]:
        note = " (no validator: compared by length)" if f.no_validator and f.result != "unknown" else ""
        if f.result == "unknown":
            note = " (no validator and no length: cannot tell; kept as it is)"
        lines.append(f"  {f.file} [chunk {f.chunk}]: {f.result}{note}: {f.before or '-'} → {f.now}")
    return lines
