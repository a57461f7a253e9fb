"""Pins, rules and scripts: the conda environment agrees with requirements.txt, extras stay extras,
rules log, script jobs run this repository's code and end at once."""

import re
import subprocess
import sys

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


def test_a_job_runs_this_repositorys_code_before_an_installed_copy(tmp_path):
    # Snakemake hands a script job its own search path, where another checkout's editable install
    # (or an older release) comes before this repository's src/: scripts/_paths.py must still win
    installed = tmp_path / "site" / "tilewise"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    code = (
        f"import sys; sys.path[:] = [{str(tmp_path)!r}, {str(tmp_path / 'site')!r}, {str(REPO / 'src')!r},"
        f" {str(REPO / 'scripts')!r}, *sys.path]\n"
        "import _paths, tilewise; print(tilewise.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(REPO / "src" / "tilewise" / "__init__.py")


def test_a_job_that_succeeds_exits_at_once_with_its_log_written(tmp_path):
    log = tmp_path / "job.log"
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'src')!r})\n"
        "import logging, atexit\n"
        "from tilewise.shared import job\n"
        f"job.log_to({str(log)!r})\n"
        "atexit.register(print, 'teardown ran')\n"
        "logging.getLogger('tilewise').info('the last line of the job')\n"
        "print('stdout flushed', end='')\n"
        "job.done()\n"
        "print('after done')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == "stdout flushed"  # no teardown, nothing after done()
    assert "the last line of the job" in log.read_text()
    # every script job ends that way, and only there: a job that raised exits as Python does
    for script in sorted((REPO / "scripts").glob("*.py")):
        text = script.read_text()
        if "job.start(" in text:
            assert text.rstrip().endswith("job.done()"), f"{script.name} does not end with job.done()"


def test_each_pipeline_wing_imports_only_itself_and_the_shared_pieces():
    """sources/ and biomass/ never import each other, shared/ imports neither: what both use is in shared/."""
    allowed = {"sources": {"sources", "shared"}, "biomass": {"biomass", "shared"}, "shared": {"shared"}}
    crossing = []
    for wing, may in allowed.items():
        for path in sorted((REPO / "src" / "tilewise" / wing).glob("*.py")):
            for line_no, line in enumerate(path.read_text().splitlines(), 1):
                for found in re.findall(r"^\s*(?:from|import) tilewise\.(\w+)", line):
                    if found not in may:
                        crossing.append(f"{path.relative_to(REPO)}:{line_no}: {line.strip()}")
    assert not crossing, "\n".join(crossing)


def test_every_output_folder_is_locked_when_it_is_shared():
    """A run locks each top folder of its outputs that a symlink leads elsewhere (common.smk's
    OUTPUT_FOLDERS): a folder missing from that list would be written by two working folders at once."""
    text = "".join(p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))])
    used = set(re.findall(r'"([a-z][a-z_-]*)/', text)) - {"rules", "report"}  # the workflow's own files
    listed = re.search(r"^OUTPUT_FOLDERS = \(([^)]*)\)", (REPO / "rules" / "common.smk").read_text(), re.M)
    assert used and used <= set(re.findall(r'"([^"]+)"', listed[1])), used
