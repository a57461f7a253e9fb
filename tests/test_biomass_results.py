"""Results changed, deleted or restored by hand after a finished state run: the next plain run puts
back what the pipeline made (from its own staged copies and inputs), equal to a clean run's, and says
why; a county that runs again and fails leaves no DONE.json of the run before.

One finished mini state per module; each case works on a copy of it (times kept)."""

import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from support.mini_state import Mini

pytestmark = pytest.mark.workflow

STATE = "results/states/mini"
COUNTY = f"{STATE}/counties/99001"
STAGED = f"{STATE}/county_runs/99001"
VOLATILE = ("seconds", "bytes")
DENSITY = "forest_aboveground_density_dry_short_tons_per_acre"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    m = Mini(tmp_path_factory.mktemp("results") / "w")
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    m.build(m_parcels(m))
    m.run()
    summary = pd.read_csv(m.root / STATE / "county_summary.csv", dtype={"county_fips": str})
    assert summary["county_fips"].tolist() == ["99001"] and summary["parcels_count"].tolist() == [6]
    return m.root


def m_parcels(m):
    import shapely

    w, s, _, _ = m.box
    polys = [shapely.box(w + 0.002 + i * 0.004, s + 0.004, w + 0.005 + i * 0.004, s + 0.008) for i in range(6)]
    return gpd.GeoDataFrame({"parcel_id": [f"A{i}" for i in range(6)]}, geometry=polys, crs=4326)


def copy_of(finished: Path, dest: Path) -> Mini:
    """A copy of the results with times kept, and files of several hard links still one file; the
    inputs are the finished run's own (no test here changes them)."""
    seen = {}

    def copy(src, dst):
        st = os.stat(src)
        if st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen:
            os.link(seen[st.st_dev, st.st_ino], dst)
        else:
            shutil.copy2(src, dst)
            seen[st.st_dev, st.st_ino] = dst

    # the inputs are shared, not copied: a copy of a state's inputs is other files (new inodes and
    # times), for which the state would run again from its index (tilewise.biomass.made_from)
    shutil.copytree(finished, dest, copy_function=copy, symlinks=True, ignore=shutil.ignore_patterns("in"))
    (dest / "in").symlink_to(finished / "in", target_is_directory=True)
    m = Mini.__new__(Mini)
    m.root, m.state, m.inp = dest, "mini", dest / "in"
    return m


def _frame(path: Path) -> pd.DataFrame:
    if path.suffix == ".gpkg":
        gdf = gpd.read_file(path)
        frame = pd.DataFrame(gdf.drop(columns="geometry")).assign(wkt=gdf.geometry.to_wkt(rounding_precision=9))
    elif path.suffix == ".csv":
        frame = pd.read_csv(path, dtype={"county_fips": str})
    else:
        frame = pd.read_parquet(path)  # geometry: its WKB bytes
    return frame[[c for c in frame.columns if not any(v in c for v in VOLATILE)]]


def results(root: Path) -> dict:
    """Every published result as comparable values (times and byte counts left out)."""
    out = {}
    for rel in (
        f"{COUNTY}.parquet",
        f"{COUNTY}.crops.parquet",
        f"{STATE}/parcels.parquet",
        f"{STATE}/parcels.gpkg",
        f"{STATE}/county_summary.csv",
    ):
        out[rel] = _frame(root / rel) if (root / rel).exists() else None
    for rel, keep in ((f"{COUNTY}.stats.json", None), (f"{STATE}/DONE.json", ("state", "counties", "tiles"))):
        path = root / rel
        data = json.loads(path.read_text()) if path.exists() else None
        if data is not None:
            data = {k: v for k, v in data.items() if (k in keep if keep else not any(x in k for x in VOLATILE))}
        out[rel] = data
    out["map"] = (root / STATE / "biomass_map.png").exists()
    return out


def differs(got: dict, want: dict) -> bool:
    try:
        assert_same(got, want)
    except AssertionError:
        return True
    return False


def assert_same(got: dict, want: dict):
    assert got.keys() == want.keys()
    for key in want:
        if isinstance(want[key], pd.DataFrame):
            assert got[key] is not None, f"{key} is missing"
            pd.testing.assert_frame_equal(
                got[key].reset_index(drop=True), want[key].reset_index(drop=True), check_dtype=False, obj=key
            )
        else:
            assert got[key] == want[key], key


def _times_ten(path: Path):
    frame = gpd.read_parquet(path)
    frame[DENSITY] = frame[DENSITY] * 10
    frame.to_parquet(path)  # written over the same path: the same inode


def _edit_crops_elsewhere_and_cp(path: Path):
    frame = pd.read_parquet(path)
    frame = frame.iloc[:0] if len(frame) < 2 else frame.iloc[: len(frame) // 2]
    other = path.with_name("edited.parquet.x")
    frame.to_parquet(other)
    shutil.copyfile(other, path)  # `cp edited.parquet 99001.crops.parquet`
    other.unlink()


def _older_backup(path: Path, change, seconds: float):
    """An earlier (different) version of the file copied back with its own, older time (cp -p): an hour
    old, or a millisecond, still newer than every input of its job, so Snakemake sees no reason to run."""
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)
    change(backup)
    t = path.stat().st_mtime_ns - int(seconds * 1e9)
    os.utime(backup, ns=(t, t))
    shutil.copy2(backup, path)
    backup.unlink()


def _stats_changed(path: Path):
    data = json.loads(path.read_text())
    data["parcels"] = data.get("parcels", 0) + 5
    path.write_text(json.dumps(data))


def _fewer_rows(path: Path):
    frame = gpd.read_parquet(path)
    frame.iloc[:2].to_parquet(path)


def _summary_edited(path: Path):
    frame = pd.read_csv(path, dtype={"county_fips": str})
    frame["parcels_count"] = frame["parcels_count"] + 1
    frame.to_csv(path, index=False)


def _done_cp(path: Path):
    data = json.loads(path.read_text())
    data["counties"] = ["99001", "99003"]
    other = path.with_name("other.json.x")
    other.write_text(json.dumps(data))
    shutil.copyfile(other, path)
    other.unlink()


CASES = {
    "county parquet deleted": (f"{COUNTY}.parquet", Path.unlink),
    "county parquet edited in place by pandas": (f"{COUNTY}.parquet", _times_ten),
    "county crops overwritten with cp": (f"{COUNTY}.crops.parquet", _edit_crops_elsewhere_and_cp),
    "county stats restored from an older backup": (
        f"{COUNTY}.stats.json",
        lambda p: _older_backup(p, _stats_changed, 3600),
    ),
    "county crops deleted": (f"{COUNTY}.crops.parquet", Path.unlink),
    "county parquet restored from a backup a millisecond older": (
        f"{COUNTY}.parquet",
        lambda p: _older_backup(p, _fewer_rows, 0.001),
    ),
    "parcels.gpkg deleted": (f"{STATE}/parcels.gpkg", Path.unlink),
    "parcels.parquet restored from an older backup": (
        f"{STATE}/parcels.parquet",
        lambda p: _older_backup(p, _fewer_rows, 0.001),
    ),
    "county_summary.csv edited in place by pandas": (f"{STATE}/county_summary.csv", _summary_edited),
    "DONE.json overwritten with cp": (f"{STATE}/DONE.json", _done_cp),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_result_changed_by_hand_is_made_again_by_a_plain_rerun(finished, tmp_path, case):
    rel, damage = CASES[case]
    clean = results(finished)
    m = copy_of(finished, tmp_path / "w")
    staged_before = (m.root / STAGED / "parcels.parquet").read_bytes()
    damage(m.root / rel)
    assert differs(results(m.root), clean)
    proc = m.run()
    assert_same(results(m.root), clean)
    assert "is published again" in proc.stderr and rel in proc.stderr.replace(str(m.root) + "/", "")
    # the pipeline's own copy was never touched, and the published file is not it
    assert (m.root / STAGED / "parcels.parquet").read_bytes() == staged_before
    published = m.root / f"{COUNTY}.parquet"
    assert published.stat().st_ino != (m.root / STAGED / "parcels.parquet").stat().st_ino
    # and once put back, the same command has nothing to do
    again = m.run()
    assert "Nothing to be done" in again.stderr and "published again" not in again.stderr


def test_an_edit_of_a_published_county_file_never_reaches_the_staged_copy(finished, tmp_path):
    """The published file was a hard link of the staged one: an edit in place changed both, and a forced
    republish or the national summary shipped the edited numbers."""
    m = copy_of(finished, tmp_path / "w")
    staged = m.root / STAGED / "parcels.parquet"
    want = gpd.read_parquet(staged)[DENSITY].tolist()
    _times_ten(m.root / f"{COUNTY}.parquet")
    assert gpd.read_parquet(staged)[DENSITY].tolist() == want
    m.run("--forcerun", "publish_county")
    assert gpd.read_parquet(m.root / f"{COUNTY}.parquet")[DENSITY].tolist() == want


def test_a_plain_rerun_with_nothing_changed_does_nothing(finished, tmp_path):
    m = copy_of(finished, tmp_path / "w")
    before = {p: p.stat().st_mtime_ns for p in (m.root / STATE).rglob("*") if p.is_file()}
    proc = m.run()
    assert "Nothing to be done" in proc.stderr and "published again" not in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in (m.root / STATE).rglob("*") if p.is_file()} == before


def test_a_county_that_fails_on_a_rerun_leaves_no_done_record_of_the_run_before(finished, tmp_path):
    """A local Sentinel-2 band truncated after a complete run: the county runs again and fails; DONE.json,
    the state files and the county's file of the run before must not stay beside the failure. (Its own
    run: the index names the inputs by absolute path, so a copy would damage the shared run's band.)"""
    m = Mini(tmp_path / "w")
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    m.build(m_parcels(m))
    m.run()
    assert (m.root / STATE / "DONE.json").exists()
    band = next((m.inp / "s2").glob("*_B04.tif"))
    data = band.read_bytes()
    band.write_bytes(data[: len(data) // 2])
    proc = m.run(check=False)
    assert proc.returncode != 0
    state = m.root / STATE
    for name in ("DONE.json", "parcels.parquet", "parcels.gpkg", "county_summary.csv", "biomass_map.png"):
        assert not (state / name).exists(), name
    assert not (m.root / f"{COUNTY}.parquet").exists()
    assert "DONE.json not written" in proc.stderr
    # the band put back: the rerun completes the state, equal to the clean run
    band.write_bytes(data)
    m.run()
    assert_same(results(m.root), results(finished))
