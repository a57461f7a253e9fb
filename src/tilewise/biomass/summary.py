"""The closing lines of a run for one state: counties done and failed, and where the outputs are."""

from __future__ import annotations

from pathlib import Path

from tilewise.biomass import state_index
from tilewise.shared.errors import TilewiseError


def state_lines(name: str, index_dir: Path, county_file: str, done_json: Path) -> list[str]:
    """`county_file` is the path of a county's result with `{county}` in it."""
    try:
        counties = [c["county_fips"] for c in state_index.read_counties(index_dir)]
    except (OSError, TilewiseError):
        return [f"state {name}: not indexed yet ({index_dir})"]
    done = [c for c in counties if Path(county_file.format(county=c)).exists()]
    lines = [f"state {name}: {len(done)} of {len(counties)} counties done, {len(counties) - len(done)} not done"]
    missing = sorted(set(counties) - set(done))
    if missing:
        lines.append(f"  not done: {' '.join(missing[:20])}{' …' if len(missing) > 20 else ''}")
    lines.append(f"  results   {done_json.parent}{'' if done_json.exists() else '  (DONE.json not written)'}")
    return lines
