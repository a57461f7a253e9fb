"""A state's results correspond to its inputs and config of now, or the run makes them again: every file
the index read (the state's inputs with a shapefile's sidecars, the local tiles it chose) and the config
that shapes the state are recorded with its index (tilewise.biomass.made_from), and each run's planning
compares them with what is there now. Snakemake alone compared times (a copy keeping an older or equal
time, a symlink swapped to an older export, a file replaced while the index read it were never seen),
not a shapefile's .dbf (only the .shp is an input), and no config edit once .snakemake/ was deleted.

One mini state (tests/support/mini_state.py) run once; its changes are checked by dry-runs, then one
run makes the results of the inputs of now, and the run after it does nothing."""

import os
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from support.mini_state import Mini

pytestmark = pytest.mark.workflow

BOX = (-88.30, 40.00, -88.27, 40.02)


def _parcels(n, shift=0.0, prefix="A") -> gpd.GeoDataFrame:
    w, s, _, _ = BOX
    polys = [
        shapely.box(w + 0.002 + i * 0.004 + shift, s + 0.004, w + 0.005 + i * 0.004 + shift, s + 0.008)
        for i in range(n)
    ]
    return gpd.GeoDataFrame({"parcel_id": [f"{prefix}{i}" for i in range(n)]}, geometry=polys, crs=4326)


def _county_shapefile(m: Mini, folder, name: str) -> None:
    counties = gpd.read_file(m.inp / "counties.gpkg")
    counties["NAME"] = name
    folder.mkdir(exist_ok=True)
    counties.to_file(folder / "counties.shp")


def _mini(root) -> Mini:
    """The mini state with counties as a shapefile and its parcels behind a folder symlink
    (in/current -> v1; v2, an export written before the run, is there too)."""
    m = Mini(root)
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    m.build(_parcels(6))
    _county_shapefile(m, m.inp, "Alder")
    for version, parcels in (("v1", _parcels(6)), ("v2", _parcels(4, shift=0.001, prefix="B"))):
        (m.inp / version).mkdir()
        parcels.to_parquet(m.inp / version / "parcels.parquet")
    (m.inp / "current").symlink_to("v1")
    (m.inp / "parcels_2024.parquet").write_bytes((m.inp / "v2" / "parcels.parquet").read_bytes())
    m.config(counties="in/counties.shp", parcels="in/current/parcels.parquet")
    return m


def _edit_config(m: Mini, change) -> None:
    cfg = yaml.safe_load((m.root / "mini.yaml").read_text())
    change(cfg)
    (m.root / "mini.yaml").write_text(yaml.safe_dump(cfg))


def _older_copy(path, seconds=86400) -> None:
    """`path` replaced by a copy of itself whose time is older (cp -p of an older export, rsync -a)."""
    t = path.stat().st_mtime - seconds
    tmp = path.with_name(path.name + ".new")
    shutil.copyfile(path, tmp)
    os.utime(tmp, (t, t))
    os.replace(tmp, path)


def _same_size_same_time(path, edit=None) -> None:
    """`path` replaced by a file of the same size and modification time (other bytes when `edit`)."""
    st = path.stat()
    data = path.read_bytes()
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(edit(data) if edit else data)
    assert tmp.stat().st_size == st.st_size
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


def _planned(m: Mini) -> str:
    proc = m.run("-n", check=True)
    return proc.stdout + proc.stderr


def test_a_state_reruns_from_its_index_for_every_file_it_read_and_config_it_was_made_with(tmp_path):
    m = _mini(tmp_path / "w")
    m.run()
    first = m.result()
    assert sorted(first["parcel_id"]) == [f"A{i}" for i in range(6)]
    # nothing changed: nothing runs
    again = m.run()
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "runs again from its index" not in again.stderr

    s2_b04 = next(m.inp.glob("s2/*_B04.tif"))
    changes = {
        # a directory symlink swapped to an older export (ln -sfn v2 current)
        r"in/current/parcels\.parquet changed since its index \(.*inode": lambda: _swap(m.inp / "current", "v2"),
        # a GIS edit of the county names rewrites the .dbf only; the config names the .shp
        r"in/counties\.dbf changed since its index": lambda: _dbf(m, tmp_path / "shp"),
        # cp -p of an older copy: the CDL raster, the FIA TREE table
        r"in/cdl/2023_30m_cdls_mini\.tif changed since its index": lambda: _older_copy(m.inp / m.cdl_files[0][3:]),
        r"in/fia/TREE\.csv changed since its index": lambda: _older_copy(m.inp / "fia" / "TREE.csv"),
        # the NASS yields with another digit, same size and same time
        r"in/nass/quickstats_yields\.csv changed since its index \(.*inode": lambda: _same_size_same_time(
            m.inp / "nass" / "quickstats_yields.csv", _other_digit
        ),
        # local tiles the index chose (read by convert_tile, after the index)
        r"in/wc/ESA_WorldCover_10m_2021_v200_N39W090_Map\.tif changed since its index": lambda: _older_copy(
            m.inp / "wc" / "ESA_WorldCover_10m_2021_v200_N39W090_Map.tif"
        ),
        re.escape(f"{s2_b04.resolve()} changed since its index"): lambda: _same_size_same_time(s2_b04),
    }
    for change in changes.values():
        change()
    planned = _planned(m)
    missed = [why for why in changes if not re.search(f"state mini: {why}", planned)]
    assert not missed, (missed, planned[-3000:])
    assert "state mini runs again from its index" in planned and re.search(r"\bindex_state\b", planned)

    # config edits after .snakemake/ was deleted (the cure for a stale lock): each is named
    saved = (m.root / "mini.yaml").read_text()
    _edit_config(m, lambda c: c.setdefault("biomass", {}).update(fia_radius_km=3))
    _edit_config(m, lambda c: c["states"]["mini"].update(parcels="in/parcels_2024.parquet"))
    shutil.rmtree(m.root / ".snakemake")
    planned = _planned(m)
    edited = r"state mini: its config changed since its index \(biomass\.fia_radius_km, states\.mini\.parcels\)"
    assert re.search(edited, planned), planned[-3000:]
    (m.root / "mini.yaml").write_text(saved)

    # one run makes the results of the inputs of now
    m.run()
    now = m.result()
    assert sorted(now["parcel_id"]) == sorted(pd.read_parquet(m.inp / "current" / "parcels.parquet")["parcel_id"])
    summary = pd.read_csv(m.root / "results/states/mini/county_summary.csv")
    assert summary["name"].tolist() == ["Birch"]
    # and the run after a constant of the model was edited and .snakemake/ deleted, results of the new one
    _edit_config(m, lambda c: c.setdefault("biomass", {}).update(fia_radius_km=3, idw_power=1))
    shutil.rmtree(m.root / ".snakemake")
    m.run()
    edited = m.result()
    forest = [c for c in now.columns if "forest" in c and pd.api.types.is_float_dtype(now[c])]
    assert forest and not np.allclose(now[forest].to_numpy(), edited[forest].to_numpy(), equal_nan=True)
    again = m.run()
    assert "Nothing to be done" in again.stdout + again.stderr


def _swap(link, target) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _dbf(m: Mini, folder) -> None:
    _county_shapefile(m, folder, "Birch")
    shutil.copyfile(folder / "counties.dbf", m.inp / "counties.dbf")


def _other_digit(data: bytes) -> bytes:
    i = max(data.rfind(str(d).encode()) for d in range(1, 9))
    return data[:i] + str(int(data[i : i + 1]) + 1).encode() + data[i + 1 :]


# Imported by every Python process of the run (PYTHONPATH): in the index job, the parcels are replaced by
# a new export right after the index read them, as an operator copying it into place during the run.
_HOOK = """
import os, sys
if sys.argv and sys.argv[-1].endswith("index_state.py") and os.path.exists(os.environ["NEW_PARCELS"]):
    from tilewise.biomass import vectors
    read = vectors.read_vector

    def read_then_replace(source, kind):
        found = read(source, kind)
        if kind == "parcels":
            os.replace(os.environ["NEW_PARCELS"], source)
        return found

    vectors.read_vector = read_then_replace
"""


def test_a_file_replaced_while_the_index_reads_it_is_read_again(tmp_path, monkeypatch):
    """The index fingerprints a file before it reads it: one replaced after the read is older than the
    index it did not make, but differs from the index's record at the next planning."""
    m = Mini(tmp_path / "w")
    m.s2_uniform()
    m.worldcover(10)
    m.cdl(1)
    m.build(_parcels(6))
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(_HOOK)
    new = m.inp / "new.parquet"
    _parcels(4, shift=0.001, prefix="B").to_parquet(new)
    monkeypatch.setenv("NEW_PARCELS", str(new))
    m.run(pythonpath=[tmp_path / "hook"])
    assert not new.exists()  # it replaced the parcels during the index
    assert sorted(m.result()["parcel_id"]) == [f"A{i}" for i in range(6)]  # what the index read
    m.run()  # the next run
    assert sorted(m.result()["parcel_id"]) == [f"B{i}" for i in range(4)]
