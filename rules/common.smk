# Helpers only (no rules): config validation, the parse-time plan, output paths, input functions.
import sys
import threading
from pathlib import Path

from snakemake.utils import validate

from tilewise.biomass import plan as biomass_plan
from tilewise.biomass import state_index
from tilewise.shared import locks
from tilewise.shared.errors import TilewiseError
from tilewise.sources.plan import catalog_folder, plan_sources

# One snakemake per working folder (Snakemake's own lock is not atomic); jobs it starts skip this.
if workflow.is_main_process and not workflow.output_settings.dryrun:
    try:
        locks.hold_run_lock(Path.cwd())
    except TilewiseError as err:
        sys.exit(f"tilewise: {err}")

validate(config, "../config/schema.yaml")

CATALOG = catalog_folder(config, Path(workflow.basedir))
try:
    PLANS = plan_sources(config, CATALOG)
    STATES = biomass_plan.state_inputs(config)
    BIOMASS = biomass_plan.BiomassSettings.from_config(config)
    POSTGIS = biomass_plan.postgis_settings(config)
except TilewiseError as err:
    sys.exit(f"tilewise: {err}")

if not PLANS and not STATES:
    print(
        "tilewise: nothing selected. Name a source (--config source=NAME catalog=FOLDER) or a state "
        "(--config state=NAME); `make run` runs both demos.",
        file=sys.stderr,
    )


wildcard_constraints:
    source="|".join(PLANS) or "^$",
    chunk=r"\d{4}",
    state="|".join(STATES) or "^$",
    county=r"\d{5}",
    product="sentinel2|worldcover|cdl",
    key=r"[^/]+",


# Output paths: decided here once; rules, input functions and scripts take them from here.
LEDGER = "work/{source}/chunks/{chunk}.json"
SCRATCH = "work/{source}/scratch/{chunk}"
STORE = "source-store/{source}"
BOUNDS = "source-store/{source}/bounds.csv"
COVERAGE = "polygon-store/{source}.gpkg"
FAILURES = "reports/{source}/failures.csv"
COVERAGE_MAP = "reports/{source}/coverage.png"
TARBALL = "tar-store/{source}.tar"
TARBALL_MD5 = "tar-store/{source}.tar.md5"
STATE_INDEX = "results/states/{state}/index"
TILES = "results/states/{state}/tiles"
TILE = "results/states/{state}/tiles/{product}/{key}.tif"
TILE_MANIFEST = "results/states/{state}/tiles/{product}/{key}.json"
COUNTY_PARCELS = "results/states/{state}/counties/{county}.parquet"
COUNTY_CROPS = "results/states/{state}/counties/{county}.crops.parquet"
COUNTY_STATS = "results/states/{state}/counties/{county}.stats.json"
STATE_PARCELS = "results/states/{state}/parcels.parquet"
STATE_PARCELS_GPKG = "results/states/{state}/parcels.gpkg"
COUNTY_SUMMARY = "results/states/{state}/county_summary.csv"
BIOMASS_MAP = "results/states/{state}/biomass_map.png"
STATE_DONE = "results/states/{state}/DONE.json"
POSTGIS_LOAD = "results/states/{state}/postgis_load.json"
DEMO_STATE_DATA = "resources/demo_state"


def release_rate_limiter_timer():
    """Snakemake's job rate limiter leaves a 1 s threading.Timer (not a daemon) behind, and the
    interpreter waits for it before exiting: cancelling it saves about a second per run (measured).
    """
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


# --- sources ---


def plan(wildcards):
    return PLANS[wildcards.source]


def chunk_ledgers(wildcards):
    return expand(LEDGER, source=wildcards.source, chunk=plan(wildcards).chunk_ids())


def license_pdf(wildcards):
    return str(plan(wildcards).source.license_pdf())


def metadata_json(wildcards):
    return str(plan(wildcards).source.folder / "metadata.json")


def source_targets():
    targets = []
    for name, source_plan in PLANS.items():
        targets += [p.format(source=name) for p in (BOUNDS, COVERAGE, COVERAGE_MAP)]
        if (source_plan.source.folder / "LICENSE.pdf").is_file():
            targets += [TARBALL.format(source=name), TARBALL_MD5.format(source=name)]
        else:
            print(
                f"tilewise: {source_plan.source.folder / 'LICENSE.pdf'} is missing: source {name!r} is "
                "prepared up to bounds.csv and coverage, without its tarball; add the license to build it",
                file=sys.stderr,
            )
    return targets


# --- biomass ---


def state_index_dir(wildcards):
    return checkpoints.index_state.get(state=wildcards.state).output[0]


def tile_row(wildcards):
    return next(
        t
        for t in state_index.read_tiles(state_index_dir(wildcards))
        if (t["product"], t["key"]) == (wildcards.product, wildcards.key)
    )


def local_tile_original(wildcards):
    """A local original is an input (a change reruns its conversion) while it exists; a missing one
    fails its conversion job, and so only the counties that read it, not the whole DAG.
    """
    href = tile_row(wildcards)["href"]
    return [href] if "://" not in href and Path(href).exists() else []


def county_tile_table(wildcards):
    rows = state_index.county_tiles(state_index_dir(wildcards), wildcards.county)
    return [
        {
            **r,
            "path": TILE.format(
                state=wildcards.state, product=r["product"], key=r["key"]
            ),
            "manifest": TILE_MANIFEST.format(
                state=wildcards.state, product=r["product"], key=r["key"]
            ),
        }
        for r in rows
    ]


def county_tile_files(wildcards):
    return [r["path"] for r in county_tile_table(wildcards)]


def county_parcels(wildcards):
    counties = state_index.read_counties(state_index_dir(wildcards))
    return next(
        int(c["parcels"]) for c in counties if c["county_fips"] == wildcards.county
    )


def county_outputs(wildcards, pattern):
    counties = state_index.read_counties(state_index_dir(wildcards))
    return [
        pattern.format(state=wildcards.state, county=c["county_fips"]) for c in counties
    ]


def state_tiles(wildcards, pattern):
    return [
        pattern.format(state=wildcards.state, product=t["product"], key=t["key"])
        for t in state_index.read_tiles(state_index_dir(wildcards))
    ]


def state_targets():
    return [
        pattern.format(state=s)
        for s in STATES
        for pattern in (STATE_DONE, STATE_PARCELS, COUNTY_SUMMARY, BIOMASS_MAP)
    ]


# --- the end of a run ---


def print_run_end(snakemake_log, failed):
    """Per source and state: what was done and where it is; on failure, each failed job's reason."""
    from tilewise.biomass.summary import state_lines
    from tilewise.shared.run_end import failure_lines
    from tilewise.sources.summary import source_lines

    lines = []
    for name, source_plan in PLANS.items():
        ledgers = [
            Path(p) for p in expand(LEDGER, source=name, chunk=source_plan.chunk_ids())
        ]
        outputs = {
            what: Path(pattern.format(source=name))
            for what, pattern in (
                ("tarball", TARBALL),
                ("bounds", BOUNDS),
                ("coverage", COVERAGE),
                ("map", COVERAGE_MAP),
                ("failures", FAILURES),
            )
        }
        lines += source_lines(name, ledgers, outputs)
    for name in STATES:
        lines += state_lines(
            name,
            Path(STATE_INDEX.format(state=name)),
            COUNTY_PARCELS.format(state=name, county="{county}"),
            Path(STATE_DONE.format(state=name)),
        )
    logs = (
        [snakemake_log] if isinstance(snakemake_log, str) else list(snakemake_log or [])
    )
    if failed and logs:  # Snakemake hands over its log file(s); the last is this run's
        lines += ["", "What failed, and why:"] + failure_lines(Path(logs[-1]))
    if lines:
        print("\n".join(["", "tilewise summary", *lines]), file=sys.stderr)
