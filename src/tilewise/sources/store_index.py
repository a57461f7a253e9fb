"""The store index `work/{source}/store-index.json`: the one module that writes and reads it.

The merge writes it after it has placed every COG in `source-store/{source}/`: per chunk, the size
and modification time of its ledger as the merge read it, the size and modification time of each
of its COGs in the store, and the size and Last-Modified its ledger recorded of each local file it
was made from. Planning compares the store and the local files with it (one stat per file, no
ledger read), so a COG deleted or changed after a run is noticed by the next run, so is a local
file replaced by one with an older or equal time (which Snakemake, comparing times, would not
see), and a ledger that was cut off or replaced since is checked again. Sizes and md5s themselves
live in the ledgers. It also holds the md5s of the coverage GeoPackage and of `bounds.csv` the merge
wrote: planning merges again when either has other bytes (Snakemake, comparing times, misses a copy
that kept an older time, and nothing reads them after the tarball is built), and the tarball ships
no other coverage.
"""

from __future__ import annotations

import hashlib
import json
import os
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

from tilewise.shared.errors import TilewiseError
from tilewise.shared.file_md5 import file_md5
from tilewise.sources import ledger
from tilewise.sources.ledger import LedgerError

VERSION = 2  # 2: the coverage md5


def write(path: Path, chunks: dict[str, dict], coverage: Path, bounds: Path) -> None:
    """`chunks`: chunk id → {"ledger": Path, "files": [store COG paths], "records": the ledger's file
    records}; sizes and times read here; `coverage` the coverage GeoPackage and `bounds` bounds.csv
    (their md5s)."""
    data = {"version": VERSION, "coverage_md5": file_md5(coverage), "bounds_md5": file_md5(bounds), "chunks": {}}
    for chunk, entry in sorted(chunks.items()):
        st = os.stat(entry["ledger"])
        files = []
        for cog in entry["files"]:
            cst = os.stat(cog)
            files.append([Path(cog).name, cst.st_size, cst.st_mtime_ns])
        data["chunks"][chunk] = {
            "ledger": [st.st_size, st.st_mtime_ns],
            "files": files,
            "local": _local_files(entry.get("records", [])),
            "inputs": entry.get("inputs"),
        }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def _local_files(records: list[dict]) -> list[list]:
    """[path, size, Last-Modified] of each local file as its download record saw it when copied."""
    local = []
    for rec in records:
        remote = rec.get("remote")
        if remote and urlsplit(rec["url"]).scheme not in ("http", "https") and remote.get("size") is not None:
            local.append([remote["final_url"], remote["size"], remote["last_modified"]])
    return sorted(local)


def check_coverage(index: Path, coverage: Path) -> None:
    """The coverage GeoPackage is the one the merge wrote; else it is removed (so the merge writes it
    again) and TilewiseError says so."""
    data = _load(index)
    recorded = data.get("coverage_md5") if data else None
    if recorded is not None and recorded == file_md5(coverage):
        return
    coverage.unlink(missing_ok=True)
    raise TilewiseError(
        f"{coverage} is not the coverage the merge wrote (changed after the merge, or no record of it in {index}); "
        "it was removed: run the same command again to merge it anew"
    )


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("chunks"), dict):
        return None
    return data


def read(path: Path) -> dict | None:
    """The index's chunks, or None when there is none or it cannot be read (then nothing is trusted)."""
    data = _load(path)
    return None if data is None else data["chunks"]


def damaged_chunks(index: Path, ledgers: dict[str, Path], store: Path) -> dict[str, str]:
    """Chunk id → why it must be prepared again: its ledger is cut off, unreadable or of another
    version, or a COG it made was deleted or changed (size or modification time) since the merge
    that recorded it. Chunks without a ledger are not listed: Snakemake reruns them anyway."""
    recorded = read(index) or {}
    damaged = {}
    for chunk, path in ledgers.items():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        entry = recorded.get(chunk)
        if entry is None or entry["ledger"] != [st.st_size, st.st_mtime_ns]:
            why = ledger.damage(path)  # written after the last merge: only its bytes can be judged now
            if why:
                damaged[chunk] = f"its ledger {path} is {why}"
            continue
        folder = os.fspath(store)
        for name, size, mtime_ns in entry["files"]:
            why = _changed(os.path.join(folder, name), size, mtime_ns)  # str paths: a third of Path's cost
            if why:
                damaged[chunk] = f"{store / name} {why} after the run that made it"
                break
        else:
            for local, size, modified in entry.get("local", []):  # indexes before local files: none
                if _replaced(local, size, modified):
                    damaged[chunk] = f"its local file {local} is not the one it was made from (size or time differ)"
                    break
    return damaged


def stale_chunks(index: Path, inputs: dict[str, str], ledgers: dict[str, Path]) -> dict[str, str]:
    """Chunk id → why it must be prepared again: its ledger was made from other inputs than `inputs`
    (chunk id → tilewise.sources.plan.inputs_digest of the job's params now: a recipe edited, a version a
    refresh found). Snakemake sees that from its record of the params, unless that record (.snakemake/)
    was deleted; this does not need it. The index answers for merged chunks; a ledger is read only when
    the index does not (written since the last merge, or no index). Ledgers that keep no digest (of an
    earlier tilewise) and missing ledgers are not listed."""
    recorded = read(index) or {}
    stale = {}
    for chunk, now in inputs.items():
        entry = recorded.get(chunk)
        if entry is not None and entry.get("inputs") == now:
            continue
        try:
            st = os.stat(ledgers[chunk])
        except (FileNotFoundError, KeyError):
            continue  # Snakemake prepares a chunk without a ledger anyway
        if entry is not None and entry["ledger"] == [st.st_size, st.st_mtime_ns]:
            made_from = entry.get("inputs")  # the ledger the merge read
        else:
            try:
                made_from = ledger.read(ledgers[chunk]).inputs  # written after the merge, or not merged yet
            except LedgerError:
                continue  # damaged_chunks reruns it
        if made_from is not None and made_from != now:
            stale[chunk] = (
                f"its ledger {ledgers[chunk]} was made from other files or another recipe than the source has now "
                "(a recipe edited, or a version a refresh found)"
            )
    return stale


def _replaced(path: str, size: int, modified: str) -> bool:
    """A local file whose size or Last-Modified (to the second, as its copy recorded it) differ. One
    deleted is not: it left the chunk's inputs, so Snakemake reruns the chunk itself."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return st.st_size != size or formatdate(st.st_mtime, usegmt=True) != modified


def _changed(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "was deleted"
    if st.st_size != size:
        return f"changed size ({size:,} → {st.st_size:,} bytes)"
    if st.st_mtime_ns != mtime_ns:
        return "was modified (its modification time changed)"
    return None


def unvouched(index: Path, bounds_csv: Path, coverage: Path) -> str | None:
    """Why a merged store must be merged again: its index is missing or unreadable (the work folder
    was deleted), so nothing vouches for the store, or `bounds_csv` or `coverage` has other bytes than
    the merge wrote (an index of an earlier tilewise has no bounds md5: not judged), or the store
    folder holds a `.tif` no ledger names (copied in by hand: the merge prunes it); None when there
    is no merged store or it is the merge's. The merge checks the store against the ledgers and writes
    them and the index again. Costs one read of each (bounds.csv of 35,860 COGs: 3 MB) and one listing."""
    if not bounds_csv.exists():
        return None
    data = _load(index)
    if data is None:
        return (
            f"its store index {index} is missing or unreadable: nothing vouches for the store, so the merge checks "
            "it against the ledgers again (a chunk whose ledger is gone too is prepared, and downloaded, again)"
        )
    for path, key in ((bounds_csv, "bounds_md5"), (coverage, "coverage_md5")):
        if data.get(key) is not None and path.is_file() and file_md5(path) != data[key]:
            return (
                f"{path} is not the one the merge wrote (edited, or replaced by a copy that kept an older time, "
                "after the merge): the merge writes it again"
            )
    placed = {f[0] for chunk in data.get("chunks", {}).values() for f in chunk.get("files", [])}
    for name in sorted(os.listdir(bounds_csv.parent)):
        if name.endswith(".tif") and name not in placed:
            return (
                f"{bounds_csv.parent / name} is in no ledger (put there after the merge): the merge removes it, "
                "as a store holds only what its ledgers name"
            )
    return None


def damage_token(why: str, *paths: Path) -> str:
    """Names one damage: the same damage gives the same token (a dry-run and the run agree), the same
    words about files (a ledger, bounds.csv, a tarball) written later give a new one."""
    text = why
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            text += "\0-"
        else:
            text += f"\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
