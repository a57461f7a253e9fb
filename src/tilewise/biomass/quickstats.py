"""USDA NASS Quick Stats CSV exports: the one module that reads them (docs/biomass-model.md §4).

An export (quickstats.nass.usda.gov → Get Data → Spreadsheet) has 21 quoted columns; a yield row is

    "SURVEY","2023","YEAR","","STATE","KANSAS","20",…,"CORN","CORN, GRAIN - YIELD, MEASURED IN BU / ACRE",
    "TOTAL","NOT SPECIFIED","137",""

Only annual survey estimates of the whole population count (Program SURVEY, Period YEAR, Domain TOTAL):
forecasts ("YEAR - AUG FORECAST"), marketing years, census rows and domain breakdowns are left out.
`Value` is text: thousands separators, and NASS codes instead of numbers — (D) withheld to avoid
disclosing individual operations, (Z) less than half the unit, (NA) not available, (X) not applicable,
(S) insufficient reports, (L)/(H) coefficient of variation codes. A code is a missing value, never 0.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from tilewise.shared.errors import TilewiseError

COLUMNS = [
    "Program",
    "Year",
    "Period",
    "Week Ending",
    "Geo Level",
    "State",
    "State ANSI",
    "Ag District",
    "Ag District Code",
    "County",
    "County ANSI",
    "Zip Code",
    "Region",
    "watershed_code",
    "Watershed",
    "Commodity",
    "Data Item",
    "Domain",
    "Domain Category",
    "Value",
    "CV (%)",
]
NEEDED = ["Program", "Year", "Period", "Geo Level", "State ANSI", "Data Item", "Domain", "Value"]
SPECIAL_VALUES = frozenset({"(D)", "(Z)", "(NA)", "(X)", "(S)", "(L)", "(H)", ""})


def parse_value(text: str) -> float | None:
    """'7,649' → 7649.0; a NASS code such as '(D)' → None; anything else that is not a number → ValueError."""
    text = text.strip()
    if text in SPECIAL_VALUES:
        return None
    return float(text.replace(",", ""))


def read_yields(path: str | Path, geo_level: str, state_ansi: str | None = None) -> pd.DataFrame:
    """Annual yields of one geographic level from an export: `data_item`, `year`, `value` (NaN for a
    NASS code), `raw_value`, `line`. With `state_ansi`, only that state's rows (an export may hold
    several states). Exactly one row per data item and year must remain."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
            if missing:
                raise TilewiseError(
                    f"{path}: not a NASS Quick Stats CSV export: columns {missing} missing "
                    f"(export with Get Data → Spreadsheet at quickstats.nass.usda.gov)"
                )
            rows = [(line, r) for line, r in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TilewiseError(f"{path}: cannot read the Quick Stats export ({exc})") from exc
    kept = []
    for line, r in rows:
        if (r["Program"], r["Period"], r["Domain"], r["Geo Level"]) != ("SURVEY", "YEAR", "TOTAL", geo_level):
            continue
        if state_ansi is not None and r["State ANSI"].strip().zfill(2) != state_ansi:
            continue
        try:
            value = parse_value(r["Value"])
            year = int(r["Year"])
        except ValueError as exc:
            raise TilewiseError(
                f"{path}:{line}: Year {r['Year']!r} or Value {r['Value']!r} is not a number or a NASS code"
            ) from exc
        kept.append({"data_item": r["Data Item"], "year": year, "value": value, "raw_value": r["Value"], "line": line})
    table = pd.DataFrame(kept, columns=["data_item", "year", "value", "raw_value", "line"])
    table["value"] = table["value"].astype(float)
    repeated = table[table.duplicated(["data_item", "year"], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        lines = repeated.loc[
            (repeated["data_item"] == first["data_item"]) & (repeated["year"] == first["year"]), "line"
        ].tolist()
        raise TilewiseError(
            f"{path}: lines {lines} give {first['data_item']!r} for {first['year']} more than once; "
            "keep one annual TOTAL row per data item, year and state"
        )
    if table.empty:
        where = f" for State ANSI {state_ansi}" if state_ansi else ""
        raise TilewiseError(
            f"{path}: no annual {geo_level} survey rows (Program SURVEY, Period YEAR, Domain TOTAL){where}; "
            f"export the {geo_level.lower()} level of the yields"
        )
    return table
