"""Pins and rules: the conda environment agrees with requirements.txt, extras stay extras, rules log."""

import re

import yaml

from conftest import REPO

CONDA_TO_PYPI = {"snakemake-minimal": "snakemake", "matplotlib-base": "matplotlib", "geopandas-base": "geopandas"}


def pins(name: str = "requirements.txt") -> dict[str, str]:
    out = {}
    for line in (REPO / name).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
        if m:
            out[m[1].lower().replace("_", "-")] = m[2]
    return out


def test_conda_env_agrees_with_the_pip_pins():
    env = yaml.safe_load((REPO / "envs" / "tilewise.yaml").read_text())
    pinned = pins()
    checked = []
    for dep in env["dependencies"]:
        name, _, version = dep.partition("=")
        if name == "python":
            continue
        pypi = CONDA_TO_PYPI.get(name, name)
        assert pypi in pinned, f"envs/tilewise.yaml lists {name}, which requirements.txt does not pin"
        assert version == pinned[pypi], f"{name}: conda {version} vs pip {pinned[pypi]}"
        checked.append(pypi)
    # every runtime dependency of the package is in the conda env
    project = (REPO / "pyproject.toml").read_text().split("[project]")[1].split("[project.optional")[0]
    declared = re.findall(r'"([A-Za-z0-9_.-]+)[<>=]', project)
    missing = {d.lower() for d in declared} - set(checked)
    assert not missing, f"pyproject dependencies missing from envs/tilewise.yaml: {sorted(missing)}"


def test_the_slurm_executor_is_an_extra():
    # Snakemake imports every installed executor plugin at start-up; local runs must not pay for this one
    assert not [p for p in pins() if p.startswith("snakemake-executor-plugin-slurm")]
    assert set(pins("requirements-slurm.txt")) == {
        "snakemake-executor-plugin-slurm",
        "snakemake-executor-plugin-slurm-jobstep",
    }


def test_the_stac_api_server_of_the_pgstac_test_is_an_extra():
    # ~35 packages for one root-only test; the always-run STAC tests use rustac from requirements.txt
    extra = pins("requirements-stac-server.txt")
    assert {"stac-fastapi-pgstac", "pypgstac", "uvicorn"} <= set(extra)
    assert not set(extra) & set(pins()) and "rustac" in pins()


def test_every_rule_has_a_log_and_a_conda_env():
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for name, body in re.findall(r"^(?:rule|checkpoint) (\w+):\n((?:    .*\n|\n)*)", smk.read_text(), re.M):
            if name == "all":
                continue
            assert "    log:" in body, f"{smk.name}: rule {name} has no log:"
            assert "    conda:" in body, f"{smk.name}: rule {name} has no conda:"
