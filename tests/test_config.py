"""The config contract: every key the schema accepts reaches the code, and defaults live in one place."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from tilewise.biomass.plan import (
    BiomassSettings,
    StacSearch,
    StateInputs,
    is_national,
    postgis_settings,
    state_inputs,
    states_in_flight,
)
from tilewise.shared.download import DownloadSettings
from tilewise.sources.plan import plan_sources
from tilewise.sources.unpack import UnpackLimits

from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


class Tracked(Mapping):
    """A read-only view of a config that records the path of every key the code reads."""

    def __init__(self, data: dict, seen: set, path: tuple = ()):
        self.data, self.seen, self.path = data, seen, path

    def __getitem__(self, key):
        value = self.data[key]
        self.seen.add((*self.path, key))
        return Tracked(value, self.seen, (*self.path, key)) if isinstance(value, dict) else value

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def schema_leaves(node: dict, path: tuple = ()) -> set[tuple]:
    """Every key path the schema accepts; `*` stands for a name of the user's (a source, a state)."""
    if "$ref" in node:
        node = {**SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
    if node.get("properties"):
        return set().union(*(schema_leaves(v, (*path, k)) for k, v in node["properties"].items()))
    if isinstance(node.get("additionalProperties"), dict):
        return schema_leaves(node["additionalProperties"], (*path, "*"))
    return {path}


def test_every_key_the_schema_accepts_reaches_the_code():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = config["states"]["demo"]
    templated = {k: v for k, v in demo.items() if k != "sentinel2_catalog"}
    templated |= {
        "sentinel2_template": "https://example.org/{tile}/{date}/{band}.tif",
        "sentinel2_date": "20240815",
        "sentinel2_processing_baseline": "05.10",
    }
    stac = {k: v for k, v in demo.items() if k != "sentinel2_catalog"} | {
        "sentinel2": {
            "stac": "https://planetarycomputer.microsoft.com/api/stac/v1",
            "collection": "sentinel-2-l2a",
            "datetime": "2024-06-01/2024-09-30",
            "max_cloud_cover": 20,
            "sign": "planetary-computer",
        },
        "parcels": {"query": "SELECT parcel_id, geom AS geometry FROM parcels", "dsn": ""},
    }
    config |= {
        "source": ["demo"],
        "state": ["demo", "templated", "stac"],
        "states": {"demo": demo, "templated": templated | {"fips": "98"}, "stac": stac | {"fips": "97"}},
        "per_source": {
            "demo": {"files_per_chunk": 2, "allow_incomplete": True, "download": {**config["download"], "attempts": 2}}
        },
    }
    seen: set[tuple] = set()
    tracked = Tracked(config, seen)
    # what the Snakefile reads at parse time, and what the scripts build from the rules' params
    plans = plan_sources(tracked, REPO / "catalog")
    states = state_inputs(tracked)
    searches = [s.stac() for s in states.values()]
    is_national(tracked), states_in_flight(tracked)  # read by common.smk
    BiomassSettings.from_config(tracked)
    postgis_settings(tracked)
    DownloadSettings.from_config(plans["demo"].settings.download)
    UnpackLimits.from_config(tracked["unpack"])
    tracked["catalog"], tracked["min_free_disk_gb"], tracked["refresh"]  # read by common.smk and shared.job
    read = {tuple("*" if i == 1 and p[0] in ("states", "per_source") else k for i, k in enumerate(p)) for p in seen}
    leaves = schema_leaves(SCHEMA)
    missing = {p for p in leaves if not any(r[: len(p)] == p for r in read)}
    assert not missing, f"schema keys no code reads: {sorted(missing)}"
    # the per-source override and the template state really took effect
    assert plans["demo"].settings.files_per_chunk == 2 and plans["demo"].settings.download["attempts"] == 2
    assert (
        states["templated"].sentinel2_template.startswith("https://") and states["templated"].sentinel2_catalog is None
    )
    assert searches[:2] == [None, None] and searches[2].sign == "planetary-computer"
    assert states["stac"].local_files() == [
        p for p in states["demo"].local_files() if "parcels" not in p and "s2" not in p and "sentinel2" not in p
    ]


def test_every_default_is_documented_in_config_yaml_only():
    # the settings classes carry no defaults of their own: config/config.yaml is the one place
    for cls in (DownloadSettings, UnpackLimits, StateInputs, BiomassSettings, StacSearch):
        defaulted = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
        assert not defaulted, f"{cls.__name__} has defaults {defaulted}; they belong in config/config.yaml"
    # and config.yaml sets every key the schema requires
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert set(SCHEMA["required"]) <= set(config)
    for key in ("download", "unpack", "biomass", "postgis"):
        node = SCHEMA["properties"][key]
        required = node.get("required") or SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]].get("required", [])
        required = node.get("required", required)
        assert set(required) == set(config[key]), key


def test_settings_dataclasses_are_built_from_plain_params():
    # rules hand scripts plain dicts (no tilewise class is unpickled before scripts/_paths.py runs)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    inputs = StateInputs.from_config(config["states"]["demo"])
    params = inputs.as_params()
    assert all(type(v) in (str, int, list, tuple, type(None)) for v in params.values())
    assert StateInputs.from_params(params) == inputs
    assert Path(inputs.counties).parts[0] == "resources"  # relative to the working folder


def test_one_state_under_two_names_is_refused_and_a_stac_search_takes_no_date():
    """Two entries of one FIPS were both summed into the national summary; a sentinel2_date beside a STAC
    search matched none of its picks, so every county ran without Sentinel-2."""
    from tilewise.biomass.plan import state_inputs
    from tilewise.shared.errors import TilewiseError

    config = yaml.safe_load(Path("config/config.yaml").read_text())
    entry = config["states"]["demo"]
    config["states"] = {"north": dict(entry, fips="91"), "north_2022": dict(entry, fips="91"), "south": entry}
    config["state"] = "all"
    with pytest.raises(TilewiseError, match=r"states north, north_2022 \(fips 91\) are one state under two names"):
        state_inputs(config)
    config["state"] = ["north", "south"]
    assert list(state_inputs(config)) == ["north", "south"]
    stac = {"stac": "https://x", "collection": "c", "datetime": "2024-06-01/2024-09-30", "max_cloud_cover": 20,
            "sign": "none"}  # fmt: skip
    config["states"]["south"] = {k: v for k, v in entry.items() if not k.startswith("sentinel2")}
    config["states"]["south"].update(sentinel2=stac, sentinel2_date="20240701")
    with pytest.raises(TilewiseError, match=r"states.south: sentinel2_date beside sentinel2 \(a STAC search\)"):
        state_inputs(config)


@pytest.mark.parametrize("name", ["dem0", "Demo", "demo ", "glo3O", "denrw"])
def test_a_per_source_entry_naming_no_source_of_the_catalog_stops(tmp_path, name):
    """A misspelled per_source entry was ignored without a word: its source ran with the global settings
    (a global allow_incomplete: true shipped the tarball the entry said must be complete)."""
    from tilewise.shared.errors import CatalogError

    shutil.copytree(REPO / "catalog" / "demo", tmp_path / "demo")
    (tmp_path / "glo30").mkdir()  # an entry of the catalog not selected now: its settings may wait
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config |= {"source": "demo", "allow_incomplete": True, "per_source": {"glo30": {"files_per_chunk": 8}}}
    assert plan_sources(config, tmp_path, check_values=False)["demo"].settings.allow_incomplete
    config["per_source"][name] = {"allow_incomplete": False}
    with pytest.raises(
        CatalogError, match=rf"config per_source: '{name}' names no source of the catalog .*remove the entry"
    ):
        plan_sources(config, tmp_path, check_values=False)
