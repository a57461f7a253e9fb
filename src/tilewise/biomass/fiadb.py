"""FIADB tables: the one module that reads them, from the FIA DataMart's state CSVs (IL_PLOT.csv,
IL_COND.csv, IL_TREE.csv) or from its SQLite database (`SQLite_FIADB_{ST}.db`, unzipped) — the format
is recognised by the file's content, not its name. Column names and codes: Burrill et al., *The
Forest Inventory and Analysis Database*, version 9.3 (FIADB93): PLOT §2.4, COND §2.5, TREE §3.1.

Only the columns the model uses are read (a state's TREE table has millions of rows and ~200 columns);
sequence numbers (CN, PLT_CN) stay text, as FIADB stores them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from tilewise.shared.errors import TilewiseError

REQUIRED = {
    "PLOT": ["CN", "STATECD", "UNITCD", "COUNTYCD", "PLOT", "INVYR", "PLOT_STATUS_CD", "LAT", "LON"],
    "COND": ["PLT_CN", "CONDID", "COND_STATUS_CD", "CONDPROP_UNADJ"],
    "TREE": ["CN", "PLT_CN", "CONDID", "STATUSCD", "DIA", "TPA_UNADJ", "DRYBIO_AG", "DRYBIO_BOLE"],
}
# read when present: the macroplot breakpoint, the forest share of each plot part, where DIA was measured
OPTIONAL = {
    "PLOT": ["MACRO_BREAKPOINT_DIA"],
    "COND": ["SUBPPROP_UNADJ", "MICRPROP_UNADJ", "MACRPROP_UNADJ"],
    "TREE": ["DIAHTCD"],
}
TEXT = {"CN", "PLT_CN"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


class FIADataError(TilewiseError):
    """FIADB rows the model cannot use as they are; the message names the table and the rows."""


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """The model's columns of one FIADB table (`table`: PLOT, COND or TREE); a missing column is an error."""
    path = Path(path)
    if not path.is_file():
        raise TilewiseError(f"{path}: no such file (the FIADB {table} table: a CSV from FIA DataMart, or its SQLite)")
    return _read_sqlite(path, table) if is_sqlite(path) else _read_csv(path, table)


def _columns(path: Path, table: str, header) -> list[str]:
    missing = [c for c in REQUIRED[table] if c not in header]
    if missing:
        raise TilewiseError(
            f"{path}: the FIADB {table} table lacks columns {missing}; download the state's {table} table "
            "from the FIA DataMart (FIADB 9.x CSV or SQLite)"
        )
    return REQUIRED[table] + [c for c in OPTIONAL[table] if c in header]


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    except (OSError, ValueError) as exc:
        raise TilewiseError(f"{path}: cannot read the FIADB {table} table ({exc})") from exc
    columns = _columns(path, table, header)
    numeric = {c: float for c in columns if c not in TEXT}
    dtypes = {**numeric, **{c: str for c in TEXT & set(columns)}}
    try:
        return pd.read_csv(path, usecols=columns, dtype=dtypes, encoding="utf-8-sig")[columns]
    except ValueError:  # a value that is not a number: find and name it
        text = pd.read_csv(path, usecols=list(numeric), dtype=str, encoding="utf-8-sig")
        for column in numeric:
            bad = text[column].notna() & pd.to_numeric(text[column], errors="coerce").isna()
            if bad.any():
                lines = (bad[bad].index[:5] + 2).tolist()
                raise TilewiseError(
                    f"{path}: column {column} is not a number on lines {lines} of the FIADB {table} table"
                ) from None
        raise


def _read_sqlite(path: Path, table: str) -> pd.DataFrame:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        header = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}  # noqa: S608 (a known table)
        if not header:
            raise TilewiseError(f"{path}: the FIADB SQLite database has no table {table}")
        columns = _columns(path, table, header)
        query = f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM "{table}"'  # noqa: S608
        frame = pd.read_sql_query(query, conn)
    for column in columns:
        if column in TEXT:  # SQLite may hold sequence numbers as integers: text as in the CSVs
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & values.isna()
        if bad.any():
            rows = (bad[bad].index[:5] + 1).tolist()
            raise TilewiseError(f"{path}: column {column} is not a number in rows {rows} of the FIADB {table} table")
        frame[column] = values.astype(float)
    return frame
