"""The snakemake command line the tests, benchmarks and crash trials run the workflow with."""

from __future__ import annotations

import sys
from pathlib import Path


def snakemake_cmd(repo: Path, workdir: Path, *args: str, cores: int = 2, profile: str | None = None) -> list[str]:
    """`python -m snakemake` on the repository's Snakefile in `workdir`: with the default workflow
    profile, or with `--profile profiles/{profile}` (and no workflow profile) when one is named."""
    profiles = (
        ["--profile", str(repo / "profiles" / profile), "--workflow-profile", "none"]
        if profile
        else ["--workflow-profile", str(repo / "profiles" / "default")]
    )
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        *profiles,
        "--cores",
        str(cores),
        *args,
    ]
