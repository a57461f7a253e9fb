"""What a state's index, and so every result of the state, was made from: a fingerprint of each local file
it read (the state's inputs with their sidecars, the local tiles it chose) and a digest of each config
value that shapes the state's results. The index job writes it into the index folder (`made_from.json`);
every run's planning (rules/common.smk) compares it with the files and config of now, and a state where
anything differs runs again from its index.

Snakemake alone compares a file's time with its output's: a file replaced by one with an older or equal
time (`cp -p`, `rsync -a`, `touch -r`, a directory symlink swapped to an older export) or replaced while
the index ran (after it read it) was never seen, nor a shapefile's `.dbf` edited (only the `.shp` is an
input), nor a config edit once Snakemake's record of the params (`.snakemake/`) was deleted.

A file's fingerprint is its size, mtime_ns, ctime_ns, inode and device (one stat, no hashing: a state's
rasters are GBs): a copy, `touch -r` or a rename cannot keep them all, so a change is always seen; a chmod
or a copy of unchanged bytes reruns the state too. Files are fingerprinted before they are read, so one
replaced while the index reads it differs at the next planning.

Only the csv and json modules: planning runs this while Snakemake parses the workflow.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

RECORD = "made_from.json"
_STAMP_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode", "device")
# the files a multi-file format reads beside the one named (by suffix of the named file): a shapefile's
# table, index, CRS and encoding; a raster's PAM metadata, overviews, mask and world files (GDAL reads them
# when present, and any of them changes what the file means)
_SHAPEFILE = (".shx", ".dbf", ".prj", ".cpg")
_RASTER_BESIDE_NAME = (".aux.xml", ".ovr", ".msk")
_WORLD_FILES = {".tif": ".tfw", ".tiff": ".tfw", ".jp2": ".j2w", ".png": ".pgw", ".jpg": ".jgw"}
_RASTERS = (".tif", ".tiff", ".jp2", ".img", ".vrt", ".png", ".jpg")


def stamp(path: str | Path) -> list[int] | None:
    """The file's size, mtime_ns, ctime_ns, inode and device (through symlinks); None if it is not there."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def sidecars(path: str) -> list[str]:
    """The files beside `path` that its format reads with it (those that exist)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".shp":
        candidates = [p.with_suffix(s) for s in _SHAPEFILE] + [p.with_suffix(s.upper()) for s in _SHAPEFILE]
    elif suffix in _RASTERS:
        candidates = [Path(f"{p}{s}") for s in _RASTER_BESIDE_NAME]
        if suffix in _WORLD_FILES:
            candidates += [p.with_suffix(_WORLD_FILES[suffix]), p.with_suffix(".wld")]
    else:
        return []
    found = []
    for c in candidates:
        if str(c) not in found and c.exists():
            found.append(str(c))
    return found


def with_sidecars(paths) -> list[str]:
    """`paths` and the sidecars of each; a folder (a partitioned GeoParquet) gives every file under it."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out += sorted(str(Path(root) / f) for root, _, files in os.walk(path) for f in files)
            continue
        out += [path, *sidecars(path)]
    return list(dict.fromkeys(out))


def stamps(paths) -> dict[str, list[int] | None]:
    return {p: stamp(p) for p in paths}


def input_files(local_files: list[str], national_yields: str | None) -> list[str]:
    """The state's local input files (StateInputs.local_files) and the national yields table, with sidecars."""
    return with_sidecars([*local_files, *([national_yields] if national_yields else [])])


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def config_digests(config: dict, state: str) -> dict[str, str]:
    """A digest of each config value that shapes the state's results: its entry of `states:` and the
    `biomass:` settings (null values as if absent). Not `download:`: how tiles are fetched changes no
    result (README: not a rerun trigger), and an edit would rerun every state."""
    parts = {f"states.{state}.{k}": v for k, v in config["states"][state].items()}
    parts.update({f"biomass.{k}": v for k, v in config["biomass"].items()})
    return {k: _digest(v) for k, v in sorted(parts.items()) if v is not None}


def write(index_dir: Path, inputs: dict, tiles: dict, config: dict[str, str]) -> None:
    """Record, in the index folder, the inputs' stamps (taken before the index read them), the local
    tiles' and the config digests."""
    record = {"inputs": inputs, "tiles": tiles, "config": config}
    (Path(index_dir) / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))


def read(index_dir: Path) -> dict | None:
    """The record of a complete index; None without one (no index yet, or one of an earlier tilewise)."""
    folder = Path(index_dir)
    if not (folder / "index.json").is_file():
        return None
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _difference(path: str, then: list | None, now: list | None) -> str:
    if then is None:
        return f"{path} appeared since its index"
    if now is None:
        return f"{path} is gone since its index"
    what = ", ".join(f"{n} {a} → {b}" for n, a, b in zip(_STAMP_FIELDS, then, now, strict=False) if a != b)
    return f"{path} changed since its index ({what})"


def changes(index_dir: Path, input_paths: list[str], config: dict[str, str]) -> list[str]:
    """Why the state's results do not correspond to its files and config of now (empty: they do).
    `input_paths`: input_files of now (a sidecar added is a change); `config`: config_digests of now."""
    record = read(index_dir)
    if record is None:
        return []
    whys = []
    before = record.get("config", {})
    edited = sorted(k for k in set(before) | set(config) if before.get(k) != config.get(k))
    if edited:
        whys.append(f"its config changed since its index ({', '.join(edited)})")
    inputs, current = record.get("inputs", {}), set(input_paths)
    for path in dict.fromkeys([*inputs, *input_paths]):
        then, now = inputs.get(path), stamp(path)
        if path not in inputs:  # a sidecar added, unless the config now names other files (said above)
            if not edited:
                whys.append(_difference(path, None, now))
        elif path in current or now is None:  # one the config no longer names is not read
            if then != now:
                whys.append(_difference(path, then, now))
    for path, then in record.get("tiles", {}).items():
        now = stamp(path)
        if now is not None and then != now:  # a tile deleted after the run changes no result
            whys.append(_difference(path, then, now))
    return whys


def national_states(summary: Path) -> list[str] | None:
    """The states a national summary summed (its `state` column); None if there is none."""
    import csv

    try:
        with open(summary, newline="") as f:
            return [row["state"] for row in csv.DictReader(f)]
    except (OSError, KeyError, csv.Error):
        return None
