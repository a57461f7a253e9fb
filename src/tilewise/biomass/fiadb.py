"""FIADB tables (FIA DataMart): the one module that reads them, from CSV or from FIADB's SQLite database.

A state's TREE table is several GB of CSV with ~200 columns; the model needs a handful. Only the
columns asked for are parsed, each with its FIADB type (below), in chunks of rows that an optional
`keep` filter thins before they are kept — memory is what the kept rows need. The same call reads the
state's SQLite download (`SQLite_FIADB_{ST}.db`, unzipped) when the file given is one: the format
is recognised by its content, not its name.

    plots = read_table("IL_PLOT.csv", "PLOT", ["CN", "LAT", "LON", "INVYR"])
    trees = read_table("SQLite_FIADB_IL.db", "TREE", ["PLT_CN", "STATUSCD", "DRYBIO_AG"],
                       keep=lambda t: t["STATUSCD"] == 1)
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tilewise.shared.errors import TilewiseError

# FIADB column types (FIADB User Guide v9.x): control numbers are up to 15-digit integers; codes
# that may be blank are nullable integers; measurements are floats.
DTYPES = {
    "CN": "int64",
    "PLT_CN": "int64",
    "PREV_PLT_CN": "Int64",
    "STATECD": "Int16",
    "UNITCD": "Int16",
    "COUNTYCD": "Int16",
    "PLOT": "Int32",
    "SUBP": "Int16",
    "TREE": "Int32",
    "CONDID": "Int16",
    "INVYR": "Int16",
    "MEASYEAR": "Int16",
    "DESIGNCD": "Int16",
    "PLOT_STATUS_CD": "Int8",
    "COND_STATUS_CD": "Int8",
    "STATUSCD": "Int8",
    "SPCD": "Int16",
    "FORTYPCD": "Int16",
    "OWNGRPCD": "Int16",
    "RESERVCD": "Int8",
    "SITECLCD": "Int8",
    "STDSZCD": "Int8",
    "LAT": "float64",
    "LON": "float64",
    "ELEV": "float64",
    "DIA": "float64",
    "HT": "float64",
    "TPA_UNADJ": "float64",
    "CONDPROP_UNADJ": "float64",
    "SUBPPROP_UNADJ": "float64",
    "MICRPROP_UNADJ": "float64",
    "MACRPROP_UNADJ": "float64",
    "STDAGE": "float64",
    "BALIVE": "float64",
    "CARBON_AG": "float64",
    "CARBON_BG": "float64",
    "DRYBIO_AG": "float64",
    "DRYBIO_BG": "float64",
    "DRYBIO_BOLE": "float64",
    "DRYBIO_STUMP": "float64",
    "DRYBIO_BRANCH": "float64",
    "DRYBIO_FOLIAGE": "float64",
    "DRYBIO_STEM": "float64",
    "DRYBIO_STEM_BARK": "float64",
    "DRYBIO_SAPLING": "float64",
    "DRYBIO_WDLD_SPP": "float64",
    "VOLCFNET": "float64",
}
TABLES = ("PLOT", "COND", "TREE", "POP_STRATUM", "POP_PLOT_STRATUM_ASSGN", "SURVEY")
ROWS_PER_CHUNK = 500_000
_SQLITE_MAGIC = b"SQLite format 3\x00"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def read_table(
    source: str | Path,
    table: str,
    columns: list[str],
    keep: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> pd.DataFrame:
    """`columns` of FIADB `table` from a CSV of that table or from FIADB's SQLite database, typed as
    FIADB defines them; rows `keep` rejects are dropped chunk by chunk."""
    path = Path(source)
    if table not in TABLES:
        raise ValueError(f"unknown FIADB table {table!r} (known: {', '.join(TABLES)})")
    unknown = [c for c in columns if c not in DTYPES or not _NAME.match(c)]
    if unknown:
        raise ValueError(f"no FIADB type known for column(s) {unknown}: add them to fiadb.DTYPES")
    if not path.is_file():
        raise TilewiseError(f"{path}: no such file (FIADB {table} table: a CSV from FIA DataMart, or its SQLite)")
    chunks = _sqlite_chunks(path, table, columns) if is_sqlite(path) else _csv_chunks(path, table, columns)
    kept = [chunk[keep(chunk)] if keep is not None else chunk for chunk in chunks]
    if not kept:
        return pd.DataFrame({c: pd.Series(dtype=DTYPES[c]) for c in columns})
    return pd.concat(kept, ignore_index=True)


def _csv_chunks(path: Path, table: str, columns: list[str]):
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    missing = [c for c in columns if c not in header]
    if missing:
        raise TilewiseError(
            f"{path}: FIADB {table} CSV lacks column(s) {missing} (its header has {len(header)} columns, "
            f"starting {header[:6]}); download the state's {table} table from FIA DataMart"
        )
    reader = pd.read_csv(
        path, usecols=columns, dtype={c: DTYPES[c] for c in columns}, chunksize=ROWS_PER_CHUNK, encoding="utf-8-sig"
    )
    line = 2  # of the chunk's first row (the header is line 1)
    try:
        for chunk in reader:
            yield chunk[columns]
            line += len(chunk)
    except (ValueError, TypeError, pd.errors.ParserError) as exc:
        raise TilewiseError(
            f"{path}: FIADB {table} CSV, within {ROWS_PER_CHUNK:,} rows from line {line}: a value does not fit "
            f"its column's FIADB type ({exc})"
        ) from exc


def _sqlite_chunks(path: Path, table: str, columns: list[str]):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}  # noqa: S608 (table checked above)
        if not have:
            raise TilewiseError(f"{path}: FIADB SQLite database has no table {table}")
        missing = [c for c in columns if c not in have]
        if missing:
            raise TilewiseError(f"{path}: FIADB table {table} lacks column(s) {missing}")
        query = f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM "{table}"'
        try:
            for chunk in pd.read_sql_query(query, conn, chunksize=ROWS_PER_CHUNK):
                yield chunk.astype({c: DTYPES[c] for c in columns})
        except (ValueError, TypeError) as exc:
            raise TilewiseError(f"{path}: FIADB table {table}: a value does not fit its column's type ({exc})") from exc
