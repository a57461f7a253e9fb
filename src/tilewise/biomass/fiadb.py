"""FIADB tables as CSV (the FIA DataMart's state downloads, e.g. IL_PLOT.csv, IL_COND.csv, IL_TREE.csv):
the one module that reads them. Column names and codes: Burrill et al., *The Forest Inventory and
Analysis Database*, version 9.3 (FIADB93): PLOT §2.4, COND §2.5, TREE §3.1.

Only the columns the model uses are read (a state's TREE table has millions of rows and ~200 columns);
sequence numbers (CN, PLT_CN) stay text, as FIADB stores them.
"""

from __future__ import annotations

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


class FIADataError(TilewiseError):
    """FIADB rows the model cannot use as they are; the message names the table and the rows."""


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """The model's columns of one FIADB table (`table`: PLOT, COND or TREE); a missing column is an error."""
    path = Path(path)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError) as exc:
        raise TilewiseError(f"{path}: cannot read the FIADB {table} table ({exc})") from exc
    missing = [c for c in REQUIRED[table] if c not in header]
    if missing:
        raise TilewiseError(
            f"{path}: the FIADB {table} table lacks columns {missing}; download the state's {table} table "
            "from the FIA DataMart (FIADB 9.x CSV)"
        )
    columns = REQUIRED[table] + [c for c in OPTIONAL[table] if c in header]
    numeric = {c: float for c in columns if c not in TEXT}
    try:
        return pd.read_csv(path, usecols=columns, dtype={**numeric, **{c: str for c in TEXT & set(columns)}})
    except ValueError:  # a value that is not a number: find and name it
        text = pd.read_csv(path, usecols=list(numeric), dtype=str)
        for column in numeric:
            bad = text[column].notna() & pd.to_numeric(text[column], errors="coerce").isna()
            if bad.any():
                lines = (bad[bad].index[:5] + 2).tolist()
                raise TilewiseError(
                    f"{path}: column {column} is not a number on lines {lines} of the FIADB {table} table"
                ) from None
        raise
