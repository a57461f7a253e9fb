"""National runs of small generated states: largest first, one state's converted tiles on disk at a
time (shown from the tile manifests), and a failed county that keeps its tiles and stops nothing else."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tilewise.biomass.state import NATIONAL_FLOWS, NATIONAL_STOCKS

from conftest import snakemake
from support.states import STATES, generate_states

pytestmark = pytest.mark.workflow


def config(tmp_path, states, **extra) -> Path:
    path = tmp_path / "national.yaml"
    path.write_text(yaml.safe_dump({"states": states, **extra}))
    return path


def manifests(work: Path, state: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((work / "results/states" / state / "tiles").rglob("*.json"))]


def ended(work: Path, state: str) -> dict:
    return json.loads((work / "results/states" / state / "ended.json").read_text())


def tifs(work: Path, state: str) -> list[str]:
    return sorted(p.name for p in (work / "results/states" / state / "tiles").rglob("*.tif"))


def test_national_run_takes_the_states_largest_first_and_one_at_a_time(tmp_path):
    states = generate_states(tmp_path / "data")
    work = tmp_path / "run"
    snakemake(work, "--configfile", str(config(tmp_path, states, state="all", states_in_flight=1)))

    summary = pd.read_csv(work / "results/national_summary.csv")
    assert summary["state"].tolist() == ["north", "east", "south"]  # by parcels, largest first
    assert summary["parcels_count"].is_monotonic_decreasing
    assert (summary["counties_done_count"] == summary["counties_count"]).all()
    assert (summary["counties_failed_count"] == 0).all()
    for column in (*NATIONAL_STOCKS, *NATIONAL_FLOWS):
        assert (summary[column] > 0).all(), column
    assert (summary["converted_tile_bytes_peak"] > 0).all() and (summary["state_seconds"] > 0).all()
    assert (work / "results/national_map.png").stat().st_size > 20_000

    order = summary["state"].tolist()
    for i, state in enumerate(order):
        own = manifests(work, state)
        converted = [m for m in own if m["read"] != "in_place"]
        assert converted and all(m["status"] == "ok" for m in own)
        # while this state's tiles were written, no other state had a converted tile on disk
        for m in converted:
            others = {s: b for s, b in m["tile_bytes_on_disk_after"].items() if s != state}
            assert not any(others.values()), (state, m["key"], others)
        # the national CDL (it covers all three states) is clipped to each state, never converted whole
        (cdl,) = [m for m in own if m["product"] == "cdl"]
        assert cdl["read"] == "clip" and cdl["window_px"][2] * cdl["window_px"][3] < 0.6 * (
            cdl["original_size_px"][0] * cdl["original_size_px"][1]
        )
        end = ended(work, state)
        assert sorted(end["counties_ok"]) == sorted(STATES[state].counties) and not end["counties_failed"]
        assert end["converted_tile_bytes_peak"] == summary.loc[i, "converted_tile_bytes_peak"]
        if i:  # the next state's tiles started only after every county of the one before had ended
            assert min(m["started_unix"] for m in own) >= ended(work, order[i - 1])["ended_unix"]
        assert tifs(work, state) == []
        assert json.loads((work / "results/states" / state / "DONE.json").read_text())["counties"]
    # tiles two states share (Sentinel-2 16TCK/16TDK, WorldCover N39W090) were cut per state to its part
    north = {m["key"]: m for m in manifests(work, "north")}
    south = {m["key"]: m for m in manifests(work, "south")}
    shared = north["16TCK_20240815_B04"], south["16TCK_20240815_B04"]
    assert all(m["read"] == "clip" for m in shared) and shared[0]["window_px"] != shared[1]["window_px"]

    # a state removed from `states:` after .snakemake/ was deleted (the cure for a stale lock): the national
    # summary is made again of the states selected now (it kept summing the removed one); then nothing runs
    shutil.rmtree(work / ".snakemake")
    kept = {name: states[name] for name in ("north", "east")}
    proc = snakemake(work, "--configfile", str(config(tmp_path, kept, state="all", states_in_flight=1)))
    assert pd.read_csv(work / "results/national_summary.csv")["state"].tolist() == ["north", "east"]
    assert "results/national_summary.csv runs again" in proc.stderr
    proc = snakemake(work, "--configfile", str(config(tmp_path, kept, state="all", states_in_flight=1)))
    assert "Nothing to be done" in proc.stdout + proc.stderr

    # the national summary or map edited, overwritten or restored after the run: made again, as a state's
    # files are (tilewise.biomass.published); before, the edit stayed and the next run did nothing
    national = work / "results/national_summary.csv"
    made = national.read_bytes()
    damages = {
        "edited in place": lambda: _zero_first_stock(national),
        "edited, its time set back": lambda: _zero_first_stock(national, keep_time=True),
        "overwritten by a state's summary": lambda: shutil.copyfile(
            work / "results/states/north/county_summary.csv", national
        ),
        "map overwritten by a state's map": lambda: shutil.copyfile(
            work / "results/states/north/biomass_map.png", work / "results/national_map.png"
        ),
    }
    for name, damage in damages.items():
        damage()
        proc = snakemake(work, "--configfile", str(config(tmp_path, kept, state="all", states_in_flight=1)))
        assert "results/national_summary.csv runs again" in proc.stderr, name
        assert national.read_bytes() == made, name
    north_map = (work / "results/states/north/biomass_map.png").read_bytes()
    assert (work / "results/national_map.png").read_bytes() != north_map
    proc = snakemake(work, "--configfile", str(config(tmp_path, kept, state="all", states_in_flight=1)))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _zero_first_stock(summary: Path, keep_time: bool = False) -> None:
    st = summary.stat()
    table = pd.read_csv(summary)
    table.loc[0, "forest_aboveground_dry_short_tons"] = 0.0  # an edit of another size
    table.to_csv(summary, index=False)
    if keep_time:
        os.utime(summary, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_failed_county_keeps_its_tiles_and_the_next_state_still_runs(tmp_path):
    specs = {k: STATES[k] for k in ("north", "east")}
    states = generate_states(tmp_path / "data", specs)
    work = tmp_path / "run"
    cfg = config(tmp_path, states, state=["east", "north"], states_in_flight=1)
    snakemake(work, "results/states/north/index", "--configfile", str(cfg))
    broken = work / "results/states/north/index/parcels/91003.parquet"
    good = broken.read_bytes()
    broken.write_bytes(b"not parquet")

    proc = snakemake(work, "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "county 91003 of state north failed" in proc.stderr  # under "What failed, and why"
    end = ended(work, "north")
    assert end["counties_ok"] == ["91001"] and list(end["counties_failed"]) == ["91003"]
    kept = tifs(work, "north")
    assert kept and "2023_30m_cdls_national.tif" in kept  # 91003 reads it: kept for the rerun
    # east (the next state) ran completely, and saw only north's kept tiles
    assert json.loads((work / "results/states/east/DONE.json").read_text())["counties"] == ["92001"]
    kept_bytes = sum(p.stat().st_size for p in (work / "results/states/north/tiles").rglob("*.tif"))
    for m in manifests(work, "east"):
        assert m["tile_bytes_on_disk_after"]["north"] == kept_bytes
    summary = pd.read_csv(work / "results/national_summary.csv").set_index("state")
    assert summary.loc["north", "counties_failed_count"] == 1 and summary.loc["east", "counties_done_count"] == 1
    assert not (work / "results/states/north/DONE.json").exists()

    # fixed: only the failed county runs again (east's finished work stays), then every tile is reclaimed
    broken.write_bytes(good)
    rerun = snakemake(work, "--configfile", str(cfg))
    assert rerun.stderr.count("(Rule: process_county)") == 1 and "(Rule: convert_tile)" not in rerun.stderr
    assert tifs(work, "north") == [] and ended(work, "north")["counties_failed"] == {}
    assert pd.read_csv(work / "results/national_summary.csv")["counties_failed_count"].sum() == 0

    # a finished county forced to run again converts the tiles it needs again, then reclaims them
    forced = snakemake(work, "-f", "results/states/east/county_runs/92001.json", "--configfile", str(cfg))
    assert forced.stderr.count("(Rule: process_county)") == 1 and "(Rule: convert_tile)" not in forced.stderr
    assert "converting it again" in (work / "logs/process_county/east/92001.log").read_text()
    assert tifs(work, "east") == [] and ended(work, "east")["counties_ok"] == ["92001"]


@pytest.mark.parametrize("broken", [["92001"], ["92001", "93001"]], ids=["one_state", "every_state"])
def test_a_state_whose_every_county_failed_is_in_the_national_summary(tmp_path, broken):
    """A state with no county done (a one-county state, as DC is, whose county failed) made the national
    map's values categories: summarize_national crashed ("Legend.__init__() got an unexpected keyword
    argument 'label'") and the run had no national summary of the states that did finish."""
    specs = {k: STATES[k] for k in ("east", "south")}
    states = generate_states(tmp_path / "data", specs)
    work = tmp_path / "run"
    cfg = config(tmp_path, states, state="all", states_in_flight=1)
    snakemake(work, "results/states/east/index", "results/states/south/index", "--configfile", str(cfg))
    for county in broken:
        state = {"92001": "east", "93001": "south"}[county]
        (work / f"results/states/{state}/index/parcels/{county}.parquet").write_bytes(b"not parquet")

    proc = snakemake(work, "--configfile", str(cfg), check=False)
    assert proc.returncode != 0 and "summarize_national failed" not in proc.stderr, proc.stderr[-3000:]
    summary = pd.read_csv(work / "results/national_summary.csv").set_index("state")
    for state, county in (("east", "92001"), ("south", "93001")):
        failed = county in broken
        assert summary.loc[state, "counties_failed_count"] == failed
        assert summary.loc[state, "counties_done_count"] == (not failed)
        assert (summary.loc[state, "forest_aboveground_dry_short_tons"] > 0) == (not failed)
    assert (work / "results/national_map.png").stat().st_size > 20_000


@pytest.mark.parametrize("fault", ["county", "tile"])
def test_a_failed_county_or_tile_runs_again_once_snakemakes_folder_is_deleted(tmp_path, fault):
    """A failed county or tile ran again by its failed_attempts param, which only .snakemake/ remembers:
    deleted (the cure for a stale lock) after the fix, the next runs never ran it and failed at every
    run with the old reason ("the next run tries it again")."""
    states = generate_states(tmp_path / "data", {"east": STATES["east"]})
    work = tmp_path / "run"
    cfg = config(tmp_path, states, state=["east"], states_in_flight=1)
    if fault == "county":
        snakemake(work, "results/states/east/index", "--configfile", str(cfg))
        broken = work / "results/states/east/index/parcels/92001.parquet"
        good = broken.read_bytes()
        broken.write_bytes(b"not parquet")
    else:  # the local WorldCover tile moved away, then back with its time (mv)
        broken = Path(states["east"]["worldcover"].format(tile="N39W090"))
        broken.rename(tmp_path / "away.tif")
    assert snakemake(work, "--configfile", str(cfg), check=False).returncode != 0
    assert ended(work, "east")["counties_failed"]
    if fault == "county":
        broken.write_bytes(good)
    else:
        (tmp_path / "away.tif").rename(broken)
    shutil.rmtree(work / ".snakemake")
    snakemake(work, "--configfile", str(cfg))
    assert ended(work, "east")["counties_failed"] == {} and (work / "results/states/east/DONE.json").exists()
    proc = snakemake(work, "--configfile", str(cfg))
    assert "Nothing to be done" in proc.stdout + proc.stderr
