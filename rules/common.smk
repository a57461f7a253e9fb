# Helpers only (no rules): config validation, the parse-time plan, and path functions.
import sys
import threading
from pathlib import Path

from snakemake.utils import validate

from tilewise.biomass import plan as biomass_plan
from tilewise.errors import TilewiseError
from tilewise.plan import plan_sources

validate(config, "../config/schema.yaml")

CATALOG = Path(config["catalog"] or Path(workflow.basedir) / "catalog").resolve()
try:
    PLANS = plan_sources(config, CATALOG)
    STATES = biomass_plan.state_names(config)
except TilewiseError as err:
    sys.exit(f"tilewise: {err}")


wildcard_constraints:
    source="|".join(PLANS) or "^$",
    chunk=r"\d{4}",
    state="|".join(STATES) or "^$",
    county=r"\d{5}",
    product="sentinel2|worldcover|cdl",
    key=r"[^/]+",


def release_rate_limiter_timer():
    """Snakemake's job rate limiter leaves a 1 s threading.Timer (not a daemon) behind, and the
    interpreter waits for it before exiting: cancelling it saves about a second per run (measured).
    """
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


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
    for name, source_plan in PLANS.items():
        targets += [
            f"source-store/{name}/bounds.csv",
            f"polygon-store/{name}.gpkg",
            f"reports/{name}/coverage.png",
        ]
        if (source_plan.source.folder / "LICENSE.pdf").is_file():
            targets += [f"tar-store/{name}.tar", f"tar-store/{name}.tar.md5"]
        else:
            print(
                f"tilewise: {source_plan.source.folder / 'LICENSE.pdf'} is missing: source {name!r} is "
                "prepared up to bounds.csv and coverage, without its tarball; add the license to build it",
                file=sys.stderr,
            )
    return targets


# --- biomass ---


def state_inputs_of(state):
    return biomass_plan.state_inputs(config, state, CATALOG)


def local_state_inputs(wildcards):
    return biomass_plan.local_state_files(state_inputs_of(wildcards.state))


def state_index_dir(wildcards):
    return checkpoints.index_state.get(state=wildcards.state).output[0]


def tile_row(wildcards):
    tiles = biomass_plan.read_tiles(state_index_dir(wildcards))
    return next(
        t
        for t in tiles
        if (t["product"], t["key"]) == (wildcards.product, wildcards.key)
    )


def local_tile_original(wildcards):
    href = tile_row(wildcards)["href"]
    return [] if "://" in href else [href]


def county_tile_table(wildcards):
    rows = biomass_plan.county_tiles(state_index_dir(wildcards), wildcards.county)
    return [
        {**r, "path": biomass_plan.tile_path(wildcards.state, r["product"], r["key"])}
        for r in rows
    ]


def county_tile_files(wildcards):
    return [r["path"] for r in county_tile_table(wildcards)]


def county_parcels(wildcards):
    counties = biomass_plan.read_counties(state_index_dir(wildcards))
    return next(
        int(c["parcels"]) for c in counties if c["county_fips"] == wildcards.county
    )


def county_outputs(wildcards, ext):
    counties = biomass_plan.read_counties(state_index_dir(wildcards))
    return [
        f"results/states/{wildcards.state}/counties/{c['county_fips']}.{ext}"
        for c in counties
    ]


def state_tile_manifests(wildcards):
    tiles = biomass_plan.read_tiles(state_index_dir(wildcards))
    return [
        biomass_plan.tile_path(wildcards.state, t["product"], t["key"], "json")
        for t in tiles
    ]


def state_targets():
    return [
        f"results/states/{s}/{name}"
        for s in STATES
        for name in (
            "DONE.json",
            "parcels.parquet",
            "county_summary.csv",
            "biomass_map.png",
        )
    ]
