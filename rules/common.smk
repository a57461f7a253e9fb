# Helpers only (no rules): config validation, the parse-time plan, and path functions.
import sys
from pathlib import Path

from snakemake.utils import validate

from tilewise.errors import TilewiseError
from tilewise.plan import plan_sources


validate(config, "../config/schema.yaml")

CATALOG = Path(config["catalog"] or Path(workflow.basedir) / "catalog").resolve()
try:
    PLANS = plan_sources(config, CATALOG)
except TilewiseError as err:
    sys.exit(f"tilewise: {err}")


wildcard_constraints:
    source="|".join(PLANS),
    chunk=r"\d{4}",


def plan(wildcards):
    return PLANS[wildcards.source]


def chunk_ledgers(wildcards):
    return expand(
        "work/{source}/chunks/{chunk}.json",
        source=wildcards.source,
        chunk=plan(wildcards).chunk_ids(),
    )


def license_pdf(wildcards):
    return str(plan(wildcards).source.license_pdf())


def metadata_json(wildcards):
    return str(plan(wildcards).source.folder / "metadata.json")


def source_targets():
    targets = []
    for name in PLANS:
        targets += [
            f"tar-store/{name}.tar",
            f"tar-store/{name}.tar.md5",
            f"reports/{name}/coverage.png",
        ]
    return targets
