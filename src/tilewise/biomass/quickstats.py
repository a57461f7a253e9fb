"""USDA NASS Quick Stats CSV exports: the one module that reads them (docs/biomass-model.md §4).

An export (quickstats.nass.usda.gov → Get Data → Spreadsheet) has 21 quoted columns; a yield row is

    "SURVEY","2023","YEAR","","STATE","KANSAS","20",…,"CORN","CORN, GRAIN - YIELD, MEASURED IN BU / ACRE",
    "TOTAL","NOT SPECIFIED","137",""

Only annual survey estimates of the whole population count (Program SURVEY, Period YEAR, Domain TOTAL):
forecasts ("YEAR - AUG FORECAST"), marketing years, census rows and domain breakdowns are left out.
`Value` is text: thousands separators, and NASS codes instead of numbers — (D) withheld to avoid
disclosing individual operations, (Z) less than half the unit, (NA) not available, (X) not applicable,
(S) insufficient reports, (L)/(H) coefficient of variation codes. A code is a missing value, never 0.
A number is written as NASS writes it (`137`, `1,370.5`), a yield is above 0; anything else, a blank
included, names the line.

Rows are matched as NASS spells them, in any case and spacing: a row typed by hand ("Survey", "Total",
a Data Item with a trailing space) was left out and the national value used without a sign. A field
the filter reads that is blank (a real export fills them all) is an error, not a row left out.
"""

from __future__ import annotations

import csv
import re
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
SPECIAL_VALUES = frozenset({"(D)", "(Z)", "(NA)", "(X)", "(S)", "(L)", "(H)"})
# NASS's numbers: digits, commas only between groups of three ('137,5' is a decimal comma, not 1375),
# an optional decimal part; Python's float() also takes 'nan', 'inf', '1e3', '1_000' and signs
NASS_NUMBER = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
# the fields a row is chosen by; State ANSI only on one state's STATE row (a national row has none, nor has
# NASS's STATE row "OTHER STATES", the states not published one by one)
OTHER_STATES = "OTHER STATES"
FILLED = ["Program", "Year", "Period", "Geo Level", "Data Item", "Domain"]


def parse_value(text: str) -> float | None:
    """'7,649' → 7649.0; a NASS code such as '(D)' → None; anything else → ValueError."""
    text = text.strip()
    if text in SPECIAL_VALUES:
        return None
    if not NASS_NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number as NASS writes one")
    return float(text.replace(",", ""))


def _spelled(text: str) -> str:
    """A field as NASS spells it: upper case, single spaces, none around ('Corn, grain ' → 'CORN, GRAIN')."""
    return " ".join(text.split()).upper()


def read_yields(path: str | Path, geo_level: str, state_ansi: str | None = None) -> pd.DataFrame:
    """Annual yields (Data Items `… - YIELD, …`) of one geographic level from an export: `data_item`,
    `year`, `value` (NaN for a NASS code), `raw_value`, `line`. With `state_ansi`, only that state's rows
    (an export may hold several states). Exactly one row per data item and year must remain."""
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
        raise TilewiseError(
            f"{path}: cannot read the Quick Stats export ({exc}); give the CSV as Quick Stats writes it (UTF-8, "
            "comma-separated), e.g. re-save it as 'CSV UTF-8'"
        ) from exc
    kept = []
    for line, raw in rows:
        r = {c: _spelled(raw[c] or "") for c in NEEDED}
        one_state = r["Geo Level"] == "STATE" and _spelled(raw.get("State") or "") != OTHER_STATES
        blank = [c for c in FILLED + ["State ANSI"] * one_state if not r[c]]
        if blank:
            raise TilewiseError(
                f"{path}:{line}: {blank[0]} is empty; a Quick Stats export fills it on every row: fill it as the "
                "export's other rows do (e.g. Program SURVEY, Period YEAR, Domain TOTAL) or delete the row"
            )
        if one_state and not re.fullmatch(r"[0-9]{1,2}", r["State ANSI"]):  # 20.0, 020, KS
            raise TilewiseError(
                f"{path}:{line}: State ANSI {raw['State ANSI']!r} is not a state's FIPS code; write it as the export "
                "does (20 for Kansas, 02 or 2 for Alaska)"
            )
        if (r["Program"], r["Period"], r["Domain"], r["Geo Level"]) != ("SURVEY", "YEAR", "TOTAL", geo_level):
            continue
        if state_ansi is not None and r["State ANSI"].zfill(2) != state_ansi:
            continue
        if " - YIELD" not in r["Data Item"]:  # production, acres, prices, net income (which can be negative)
            continue
        if not r["Value"]:  # an export writes a number or a code: a blank is a row cut or typed by hand
            raise TilewiseError(
                f"{path}:{line}: Value is empty; a Quick Stats export writes a number or a code such as (D) on every "
                "row: write the yield NASS published, or (NA) where it published none"
            )
        try:
            value = parse_value(r["Value"])
            year = int(r["Year"])
        except ValueError as exc:
            raise TilewiseError(
                f"{path}:{line}: Year {raw['Year']!r} or Value {raw['Value']!r} is not a number or a NASS code; "
                "write the yield as NASS does (137 or 1,370.5, a point for decimals) or a code such as (D)"
            ) from exc
        if value is not None and value <= 0:  # NASS publishes no yield of 0: a crop not harvested has no row
            raise TilewiseError(
                f"{path}:{line}: Value {raw['Value']!r} is not a yield (0 or less); give the yield NASS published, "
                "or (NA)"
            )
        item = r["Data Item"]
        kept.append({"data_item": item, "year": year, "value": value, "raw_value": raw["Value"], "line": line})
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
