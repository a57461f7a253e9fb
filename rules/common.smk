# Helpers only (no rules): config validation, the parse-time plan, output paths, input functions.
import os
import sys
import threading
from pathlib import Path

from snakemake.utils import validate

from tilewise.biomass import plan as biomass_plan
from tilewise.biomass import made_from, outcomes, state_index
from tilewise.biomass.state_files import (
    BIOMASS_MAP,
    COUNTY_CROPS,
    COUNTY_PARCELS,
    COUNTY_RECORD,
    COUNTY_RUN,
    COUNTY_STAGED,
    COUNTY_STATS,
    COUNTY_SUMMARY,
    DONE_RECORD,
    REPUBLISH,
    RERUN_FAILED,
    STATE_DONE,
    STATE_ENDED,
    STATE_INDEX,
    STATE_PARCELS,
    STATE_PARCELS_GPKG,
    SUMMARY_RECORD,
    TILE,
    TILE_MANIFEST,
)
from tilewise.shared import locks
from tilewise.shared.errors import TilewiseError
from tilewise.shared.url_secrets import masked
from tilewise.sources import changes_csv, store_index
from tilewise.sources import tarball as tarball_file
from tilewise.sources.plan import catalog_folder, plan_sources, record_chunk_counts


def tell(text):
    """A message of the main process on stderr, a URL's secrets written *** (`url_secrets.masked`): a
    refusal or a refresh names the file list's lines, wget's names keep a URL's query.
    """
    print(masked(text), file=sys.stderr)


# The top folders of every output path below (tests/test_hygiene.py checks that they are all here).
OUTPUT_FOLDERS = (
    "work",
    "source-store",
    "polygon-store",
    "tar-store",
    "reports",
    "results",
    "resources",
    "logs",
    "benchmarks",
)

# One snakemake per working folder (Snakemake's own lock is not atomic), and per output folder shared
# with other working folders through a symlink; jobs it starts skip this.
if workflow.is_main_process and not workflow.output_settings.dryrun:
    try:
        locks.hold_run_lock(Path.cwd(), OUTPUT_FOLDERS)
    except TilewiseError as err:
        sys.exit(masked(f"tilewise: {err}"))

validate(config, "../config/schema.yaml")

# Output paths: decided here once; rules, input functions and scripts take them from here.
LEDGER = "work/{source}/chunks/{chunk}.json"
CHUNK_COUNT = "work/{source}/chunk-count.txt"  # K of the source's chunks, recorded by the last run that started jobs
SCRATCH = "work/{source}/scratch/{chunk}"
STAGING = (
    "work/{source}/staging"  # one folder per chunk: its COGs until the merge moves them
)
STORE_INDEX = "work/{source}/store-index.json"
REBUILD = "work/{source}/rebuild/{step}.{token}"  # why a chunk (step: its id), the merge or the tarball runs again
# the built tarball's size, its md5 file and the catalog files it ships; beside PUBLISHED
# (scripts/build_tarball.py derives it from there)
TARBALL_RECORD = "work/{source}/tarball.json"
STORE = "source-store/{source}"
BOUNDS = "source-store/{source}/bounds.csv"
COVERAGE = "polygon-store/{source}.gpkg"
FAILURES = "reports/{source}/failures.csv"
SKIPPED = "reports/{source}/skipped.csv"
COVERAGE_MAP = "reports/{source}/coverage.png"
TARBALL = "tar-store/{source}.tar"
TARBALL_MD5 = "tar-store/{source}.tar.md5"
CHANGES = "tar-store/{source}.changes.csv"  # what changed since the tarball before
# where earlier versions kept a copy of the changes file; now the name the tarball job's files beside it
# are derived from (scripts/build_tarball.py), and a copy it reads once if there is no state yet
PUBLISHED = "work/{source}/published.changes.csv"
# the published state: the last tarball's md5 and the changes file its build wrote (Snakemake deletes
# a job's outputs before it runs, and after it fails)
PUBLISHED_STATE = "work/{source}/published.json"
KEPT_TARBALL = "work/{source}/published"  # a hard link to the last tarball built, restored after a failed run
REMOTE_STATE = "work/{source}/remote/{chunk}.json"  # versions a refresh found (params of the chunk)
REFRESH_REPORT = "reports/{source}/refresh.csv"
NATIONAL_SUMMARY = "results/national_summary.csv"
NATIONAL_MAP = "results/national_map.png"
# what summarize_national recorded of the two files it wrote (tilewise.biomass.published)
NATIONAL_RECORD = "results/published/national.json"
# why a state runs again from its index, or the national summary again (see stale_states)
STATE_REBUILD = "results/states/{state}/rebuild/{token}"
NATIONAL_REBUILD = "results/rebuild/national/{token}"
POSTGIS_LOAD = "results/states/{state}/postgis_load.json"
DEMO_STATE_DATA = "resources/demo_state"

CATALOG = catalog_folder(config, Path(workflow.basedir))
try:
    PLANS = plan_sources(
        config,
        CATALOG,
        check_values=workflow.is_main_process,
        ledgers=os.path.dirname(LEDGER),
        record=CHUNK_COUNT,
    )
    STATES = biomass_plan.state_inputs(config)
    NATIONAL = bool(STATES) and biomass_plan.is_national(config)
    STATES_IN_FLIGHT = biomass_plan.states_in_flight(config)
    BIOMASS = biomass_plan.BiomassSettings.from_config(config)
    POSTGIS = biomass_plan.postgis_settings(config)
except TilewiseError as err:
    sys.exit(masked(f"tilewise: {err}"))

if not PLANS and not STATES:
    tell(
        "tilewise: nothing selected. Name a source (--config source=NAME catalog=FOLDER) or a state "
        "(--config state=NAME); `make run` runs both demos."
    )


wildcard_constraints:
    source="|".join(PLANS) or "^$",
    chunk=r"\d{4}",
    step=r"\d{4}|merge|tarball",
    token=r"[0-9a-f]{16}",
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


# --- sources ---


def plan(wildcards):
    return PLANS[wildcards.source]


def chunk_ledgers(wildcards):
    return expand(LEDGER, source=wildcards.source, chunk=plan(wildcards).chunk_ids())


def file_list(wildcards):
    # ancient: the merge reads it for failures.csv's line numbers, but an edit that changes no chunk
    # (a blank line, a comment) must not rebuild the tarball
    return ancient(str(plan(wildcards).source.folder / "file_list.txt"))


def damaged_chunks():
    """Per source, the chunks whose ledger is cut off or whose COGs were deleted or changed in the
    store since the merge that recorded them (checked with one stat per COG, main process only).
    """
    damaged = {}
    for name, source_plan in PLANS.items():
        ledgers = {
            c: Path(LEDGER.format(source=name, chunk=c))
            for c in source_plan.chunk_ids()
        }
        found = store_index.damaged_chunks(
            Path(STORE_INDEX.format(source=name)),
            ledgers,
            Path(STORE.format(source=name)),
        )
        _say_prepared_again(name, found)
        damaged[name] = found
    return damaged


def _say_prepared_again(source, found):
    for chunk, why in sorted(found.items()):
        tell(f"tilewise: source {source}: chunk {chunk} is prepared again: {why}")


DAMAGED = damaged_chunks() if workflow.is_main_process else {}


def damaged_products():
    """Per source, why its merge or its tarball runs again: a merged store whose index is missing
    (nothing vouches for it) or whose bounds.csv or coverage has other bytes than the merge wrote, a
    tarball or md5 changed or deleted after the build (main process only). A published state lost
    with the work folder is taken back first (tilewise.sources.changes_csv.recover_state).
    """
    found = {}
    for name, source_plan in PLANS.items():
        if not workflow.output_settings.dryrun and changes_csv.recover_state(
            *(
                Path(p.format(source=name))
                for p in (PUBLISHED_STATE, PUBLISHED, TARBALL, TARBALL_MD5, CHANGES)
            )
        ):
            tell(
                f"tilewise: source {name}: the published state was lost with the work folder; "
                f"taken back from {TARBALL.format(source=name)} and its changes file, "
                "so the next changes file compares with that tarball"
            )
        catalog_files = [
            source_plan.source.folder / f for f in ("LICENSE.pdf", "metadata.json")
        ]
        whys = {
            "merge": store_index.unvouched(
                Path(STORE_INDEX.format(source=name)),
                Path(BOUNDS.format(source=name)),
                Path(COVERAGE.format(source=name)),
            ),
            "tarball": tarball_file.damage(
                Path(TARBALL.format(source=name)),
                Path(TARBALL_MD5.format(source=name)),
                Path(TARBALL_RECORD.format(source=name)),
                catalog_files,
                Path(KEPT_TARBALL.format(source=name)),
                Path(CHANGES.format(source=name)),
            ),
        }
        for step, why in whys.items():
            if why:
                tell(f"tilewise: source {name}: the {step} runs again: {why}")
                found[name, step] = why
    return found


DAMAGED_PRODUCTS = damaged_products() if workflow.is_main_process else {}


def restore_tarballs():
    """After a failed run (onerror): a source whose tarball, md5 and changes file are all gone (a
    failed build_tarball job: Snakemake removes its outputs) gets the last tarball built back, with
    its md5 and changes file; the next run builds it again (tarball.damage)."""
    for name in PLANS:
        paths = [Path(p.format(source=name)) for p in (TARBALL, TARBALL_MD5, CHANGES)]
        state = Path(PUBLISHED_STATE.format(source=name))
        try:
            restored = tarball_file.restore(
                *paths, state, Path(KEPT_TARBALL.format(source=name))
            )
        except OSError as exc:  # a full disk: the next run builds it anyway
            tell(f"tilewise: source {name}: its tarball could not be restored: {exc}")
            continue
        if restored:
            tell(
                f"tilewise: source {name}: its tarball was not built; the previous one, its md5 and its "
                f"changes file are back in {paths[0].parent} (the next run builds it again)"
            )


def refresh_sources():
    """With `refresh: true`, ask the servers which files changed (one-byte Range GETs, as many at once as
    the `net` resource allows) and give the changed chunks new remote-state entries: their params
    change, so exactly those chunks run again. A dry-run asks too, and writes nothing.
    """
    if not config["refresh"] or not workflow.is_main_process:
        return {}
    from tilewise.shared.download import DownloadSettings
    from tilewise.sources import refresh, refresh_csv, remote_state

    net = workflow.resource_settings.resources.get("net")
    net = getattr(
        net, "value", net
    )  # a Resource object when given by a profile or --resources
    found = {}
    for name, source_plan in PLANS.items():
        settings = DownloadSettings.from_config(source_plan.settings.download)
        paths = {
            c: (
                Path(LEDGER.format(source=name, chunk=c)),
                Path(REMOTE_STATE.format(source=name, chunk=c)),
            )
            for c in source_plan.chunk_ids()
        }
        result = refresh.check(
            source_plan.chunks,
            {c: p[0] for c, p in paths.items()},
            {c: p[1] for c, p in paths.items()},
            source_plan.source.recipe.excludes,
            settings,
            int(net) if net else settings.connections,
            source_plan.source.folder,
        )
        tell("\n".join(refresh.summary(name, result)))
        if not workflow.output_settings.dryrun:
            for chunk, entries in result.entries.items():
                remote_state.write(paths[chunk][1], entries)
            refresh_csv.write(name, result, Path(REFRESH_REPORT.format(source=name)))
        found[name] = result.entries
    return found


REFRESHED = refresh_sources()


def chunk_versions(source, chunk):
    """The versions a refresh found of the chunk's files: this run's refresh, else the remote state."""
    if source in REFRESHED:
        return REFRESHED[source][chunk]
    from tilewise.sources import remote_state

    return remote_state.read(Path(REMOTE_STATE.format(source=source, chunk=chunk)))


def stale_chunks():
    """Per source, the chunks whose ledger was made from other files or another recipe than the plan
    gives now: Snakemake reruns them for their changed params, but only while its record of the params
    (.snakemake/metadata) is there; deleting .snakemake/ (the usual cure for a lock) must not ship the
    COGs of an old recipe or of a file's old version. The store index answers for merged chunks.
    """
    stale = {}
    for name, source_plan in PLANS.items():
        ledgers, inputs = {}, {}
        for c in source_plan.chunk_ids():
            ledgers[c] = Path(LEDGER.format(source=name, chunk=c))
            if not ledgers[c].exists():
                continue  # Snakemake prepares it anyway (a first run: nothing to compare)
            inputs[c] = source_plan.job_inputs(c, chunk_versions(name, c))
        found = store_index.stale_chunks(
            Path(STORE_INDEX.format(source=name)), inputs, ledgers
        )
        _say_prepared_again(name, found)
        stale[name] = found
    return stale


STALE = stale_chunks() if workflow.is_main_process else {}


def chunk_files(wildcards):
    """The chunk job's files (params): URL, name, archive set and, for a file a refresh found changed,
    the version it found (tilewise.sources.remote_state), so that exactly the changed chunks run again.
    """
    versions = chunk_versions(wildcards.source, wildcards.chunk)
    return plan(wildcards).job_files(wildcards.chunk, versions)


def rebuild_flags(wildcards):
    """A damaged chunk gets a new input file, written by rule flag_rebuild, so Snakemake reruns it
    (the flag is newer than its ledger) and shows it in a dry-run. Flags stay: once the chunk was
    prepared again its input set is the same as in its last run, so it does not rerun again.
    """
    why = DAMAGED.get(wildcards.source, {}).get(wildcards.chunk) or STALE.get(
        wildcards.source, {}
    ).get(wildcards.chunk)
    ledger = Path(LEDGER.format(source=wildcards.source, chunk=wildcards.chunk))
    return _flags(wildcards.source, wildcards.chunk, why, [ledger])


def merge_again_flags(wildcards):
    """The same for the merge, whose store nothing vouches for (see damaged_products)."""
    why = DAMAGED_PRODUCTS.get((wildcards.source, "merge"))
    return _flags(wildcards.source, "merge", why, [Path(BOUNDS.format(**wildcards))])


def tarball_again_flags(wildcards):
    """The same for the tarball, changed or deleted after its build (see damaged_products)."""
    why = DAMAGED_PRODUCTS.get((wildcards.source, "tarball"))
    paths = [Path(p.format(**wildcards)) for p in (TARBALL, TARBALL_MD5)]
    return _flags(wildcards.source, "tarball", why, paths)


def _flags(source, step, why, stamped):
    """The flags `step` has, and with `why` the one naming this damage of the `stamped` files."""
    folder = Path(REBUILD.format(source=source, step="x", token="x")).parent
    flag = (
        REBUILD.format(
            source=source, step=step, token=store_index.damage_token(why, *stamped)
        )
        if why
        else None
    )
    return _planning_flags(folder, lambda f: f.startswith(f"{step}."), flag)


_FLAGS_MADE = set()


def _planning_flags(folder, kept, flag=None):
    """The flags in `folder` whose names `kept` accepts, and `flag`, made now (not in a dry-run), newer
    than the job's output: it reruns the job by the times alone, also when Snakemake's record of the
    job's inputs, .snakemake/, is gone. Made once a run (a DAG update after a checkpoint asks again,
    maybe after the job ran); newer also when the same damage was seen before. Flags stay: once the job
    ran again, its inputs are the same as in its last run, so it does not run again."""
    flags = {str(folder / f) for f in _listdir(folder) if kept(f)}
    if flag:
        if not workflow.output_settings.dryrun and flag not in _FLAGS_MADE:
            Path(flag).parent.mkdir(parents=True, exist_ok=True)
            open(flag, "a").close()
            os.utime(flag)
            _FLAGS_MADE.add(flag)
        flags.add(flag)
    return sorted(flags)


_LISTINGS = {}


def _listdir(folder):
    if folder not in _LISTINGS:
        _LISTINGS[folder] = os.listdir(folder) if folder.is_dir() else []
    return _LISTINGS[folder]


def license_pdf(wildcards):
    return str(plan(wildcards).source.license_pdf())


def metadata_json(wildcards):
    return str(plan(wildcards).source.folder / "metadata.json")


def source_targets():
    targets = []
    for name, source_plan in PLANS.items():
        targets += [
            p.format(source=name) for p in (BOUNDS, COVERAGE, COVERAGE_MAP, SKIPPED)
        ]
        if (source_plan.source.folder / "LICENSE.pdf").is_file():
            targets += [p.format(source=name) for p in (TARBALL, TARBALL_MD5, CHANGES)]
        else:
            tell(
                f"tilewise: {source_plan.source.folder / 'LICENSE.pdf'} is missing: source {name!r} is "
                "prepared up to bounds.csv and coverage, without its tarball; add the license to build it"
            )
    return targets


# --- biomass ---


def state_index_dir(wildcards):
    return checkpoints.index_state.get(state=wildcards.state).output[0]


def tile_row(wildcards):
    """The tile's row of the index; a Sentinel-2 band's also names its tile's other bands (group_hrefs:
    a tile's bands are read in place together or converted together)."""
    rows = state_index.read_tiles(state_index_dir(wildcards))
    row = next(
        t
        for t in rows
        if (t["product"], t["key"]) == (wildcards.product, wildcards.key)
    )
    if row["product"] != "sentinel2":
        return row
    group = [
        t["href"]
        for t in rows
        if t["product"] == "sentinel2"
        and (t["tile"], t["date"]) == (row["tile"], row["date"])
    ]
    return {**row, "group_hrefs": group}


def local_tile_original(wildcards):
    """A local original is an input (a change reruns its conversion) while it exists; a missing one
    fails its conversion job, and so only the counties that read it, not the whole DAG.
    """
    href = tile_row(wildcards)["href"]
    return [href] if "://" not in href and Path(href).exists() else []


def _with_paths(state, rows):
    """Tile rows of the index with the paths of their manifest and converted COG."""
    return [
        {
            **r,
            "manifest": TILE_MANIFEST.format(
                state=state, product=r["product"], key=r["key"]
            ),
            "tif": TILE.format(state=state, product=r["product"], key=r["key"]),
        }
        for r in rows
    ]


def county_tile_table(wildcards):
    rows = state_index.county_tiles(state_index_dir(wildcards), wildcards.county)
    return _with_paths(wildcards.state, rows)


def county_tile_manifests(wildcards):
    return [r["manifest"] for r in county_tile_table(wildcards)]


def state_tile_table(wildcards):
    rows = state_index.read_tiles(state_index_dir(wildcards))
    return _with_paths(wildcards.state, rows)


def _parcels_by_county(wildcards):
    counties = state_index.read_counties(state_index_dir(wildcards))
    return {c["county_fips"]: int(c["parcels"]) for c in counties}


def county_parcels(wildcards):
    return _parcels_by_county(wildcards)[wildcards.county]


def county_threads(wildcards):
    """A county's processes: its share of --cores by its share of the state's parcels, at least one.
    A state of many counties runs them side by side, one process each (like exactextract's own pool);
    the few large counties of a small state each get several (strips, tilewise.biomass.county). Without
    --cores (a cluster), 2 per county job."""
    cores = workflow.resource_settings.cores
    if not cores:
        return 2
    parcels = _parcels_by_county(wildcards)
    share = parcels[wildcards.county] / max(1, sum(parcels.values()))
    return max(1, min(cores, round(cores * share)))


def county_outputs(wildcards, pattern):
    counties = state_index.read_counties(state_index_dir(wildcards))
    return [
        pattern.format(state=wildcards.state, county=c["county_fips"]) for c in counties
    ]


def stale_states():
    """Per selected state, why its results do not correspond to its files and config of now: its index
    records what it was made from (tilewise.biomass.made_from: each local file's size, times, inode; the
    config that shapes it). Snakemake compares times only, and params only while .snakemake/ is there:
    a file replaced by one of an older or equal time, or while the index read it, a shapefile's .dbf
    edited, a config edit after .snakemake/ was deleted would leave the old results (main process only).
    """
    found = {}
    for name, inputs in STATES.items():
        whys = made_from.changes(
            Path(STATE_INDEX.format(state=name)),
            made_from.input_files(inputs.local_files(), BIOMASS.nass_national_yields),
            made_from.config_digests(config, name),
        )
        for why in whys[:12]:
            tell(f"tilewise: state {name}: {why}")
        if whys:
            more = f" ({len(whys) - 12} more changes)" if len(whys) > 12 else ""
            tell(f"tilewise: state {name} runs again from its index{more}")
            found[name] = "; ".join(whys)
    return found


STALE_STATES = stale_states() if workflow.is_main_process else {}


def national_again():
    """Why the national summary runs again (main process): it summed other states than the selection, or
    it or the map was edited, overwritten or restored from a backup after it was written (as the state
    files are checked: damaged_results)."""
    from tilewise.biomass import published

    if not NATIONAL:
        return None
    summed = made_from.national_states(Path(NATIONAL_SUMMARY))
    why = published.damage(
        Path(NATIONAL_RECORD), [Path(NATIONAL_SUMMARY), Path(NATIONAL_MAP)]
    )
    if summed is not None and sorted(summed) != sorted(STATES):
        why = (
            f"it summed the states {sorted(summed)}, the selection is {sorted(STATES)}"
        )
    if why is None:
        return None
    tell(f"tilewise: {NATIONAL_SUMMARY} runs again: {why}")
    return why


NATIONAL_AGAIN = national_again() if workflow.is_main_process else None


def state_rebuild_flags(wildcards):
    """A state whose index was made from other files or config than now (stale_states) gets a new input
    of its index, made now (newer than the index: it runs again by the times alone, also without
    .snakemake/) and by rule flag_state_rebuild in a dry-run. Flags stay, as the sources' do.
    """
    index = Path(STATE_INDEX.format(state=wildcards.state)) / "index.json"
    why = STALE_STATES.get(wildcards.state)
    return _biomass_flags(STATE_REBUILD, {"state": wildcards.state}, why, index)


def national_rebuild_flags(wildcards):
    """The same for the national summary (national_again)."""
    return _biomass_flags(NATIONAL_REBUILD, {}, NATIONAL_AGAIN, Path(NATIONAL_SUMMARY))


def _biomass_flags(pattern, fields, why, stamped):
    folder = Path(pattern.format(**fields, token="x")).parent
    flag = (
        pattern.format(**fields, token=store_index.damage_token(why, stamped))
        if why
        else None
    )
    return _planning_flags(
        folder, lambda f: len(f) == 16 and all(c in "0123456789abcdef" for c in f), flag
    )


def state_tiles(wildcards, pattern):
    return [
        pattern.format(state=wildcards.state, product=t["product"], key=t["key"])
        for t in state_index.read_tiles(state_index_dir(wildcards))
    ]


def failed_attempts(pattern, wildcards):
    """How often this job's record says it failed: a param, so a failed county or tile runs again."""
    return outcomes.failed_attempts(pattern.format(**wildcards))


def failed_flags(pattern, wildcards):
    """A county or tile job whose record says its last run failed gets a flag made at planning (as
    _planning_flags): the failed_attempts param reruns it only while .snakemake/ keeps the params it ran
    with; deleted (the cure for a stale lock), the failed county was never run again and its publish
    failed at every run with the old reason. A new failure (a new record) is a new flag.
    """
    record = Path(pattern.format(**wildcards))
    what = (
        wildcards.county
        if "county" in wildcards.keys()
        else f"{wildcards.product}.{wildcards.key}"
    )
    folder = Path(
        RERUN_FAILED.format(state=wildcards.state, what="x", token="x")
    ).parent
    flag = (
        RERUN_FAILED.format(
            state=wildcards.state,
            what=what,
            token=store_index.damage_token("failed", record),
        )
        if outcomes.last_failed(record)
        else None
    )
    return _planning_flags(folder, lambda f: f.rsplit(".", 1)[0] == what, flag)


def runs_of(wildcards):
    """Where the state's county outcomes are, with `{county}` left in."""
    return COUNTY_RUN.format(state=wildcards.state, county="{county}")


_ORDER = []  # known once every index exists (they do not change during a run)


def state_order():
    """The selected states, largest first (parcels in their index: every state's index comes first)."""
    if len(STATES) == 1:
        return list(STATES)
    if not _ORDER:
        parcels = {
            name: state_index.read_summary(
                checkpoints.index_state.get(state=name).output[0]
            )["parcels"]
            for name in STATES
        }
        _ORDER.extend(sorted(STATES, key=lambda name: (-parcels[name], name)))
    return _ORDER


def state_turn(wildcards):
    """What a state's tile jobs wait for: the end (every county succeeded or failed) of the state
    `states_in_flight` places before it. ancient(): when that state's failed county is run again
    later, its new end does not make this state's finished work run again."""
    order = state_order()
    rank = order.index(wildcards.state)
    if rank < STATES_IN_FLIGHT:
        return []
    return [ancient(STATE_ENDED.format(state=order[rank - STATES_IN_FLIGHT]))]


def tile_settings():
    """How tiles are read and converted (tilewise.biomass.tiles.TileSettings), as plain params."""
    return {
        "codec": BIOMASS.tile_codec,
        "local_copy": BIOMASS.local_copy,
        "signed_href_min_ttl_seconds": BIOMASS.signed_href_min_ttl_seconds,
        "download": config["download"],
    }


# --- biomass: published results changed, deleted or restored by hand after the run ---


def damaged_results():
    """Per (state, what), why a job that published results runs again: `what` is a county (its three
    files, from its staged copy), "summary" (parcels.parquet/gpkg, county_summary.csv, the map) or "done"
    (DONE.json). Each file is compared with what its job recorded (tilewise.biomass.published: one stat
    a file, main process only, states already indexed). A succeeded county whose files and record are
    all gone is published again too (Snakemake does not remake a missing intermediate file whose
    downstream targets are up to date)."""
    from tilewise.biomass import published

    found = {}
    for state in STATES:
        index = Path(STATE_INDEX.format(state=state))
        try:
            counties = [c["county_fips"] for c in state_index.read_counties(index)]
        except (OSError, TilewiseError):
            continue  # not indexed yet: everything runs
        checks = {}
        for county in counties:
            files = [
                Path(p.format(state=state, county=county))
                for p in (COUNTY_PARCELS, COUNTY_CROPS, COUNTY_STATS)
            ]
            checks[county] = (COUNTY_RECORD.format(state=state, county=county), files)
        summary = (STATE_PARCELS, STATE_PARCELS_GPKG, COUNTY_SUMMARY, BIOMASS_MAP)
        checks["summary"] = (
            SUMMARY_RECORD.format(state=state),
            [Path(p.format(state=state)) for p in summary],
        )
        checks["done"] = (
            DONE_RECORD.format(state=state),
            [Path(STATE_DONE.format(state=state))],
        )
        for what, (record, files) in checks.items():
            why = published.damage(Path(record), files)
            if why is None and what in counties and not any(f.exists() for f in files):
                run = _county_outcome(state, what)
                if run and run.get("status") == outcomes.OK:
                    why = f"its result files ({files[0]}, …) were deleted"
            if why:
                found[state, what] = why
                shown = f"county {what}" if what in counties else what
                tell(f"tilewise: state {state}: {shown} is published again: {why}")
    return found


def _county_outcome(state, county):
    try:
        return outcomes.read_outcome(
            Path(COUNTY_RUN.format(state=state, county=county))
        )
    except TilewiseError:
        return None  # an unreadable outcome runs the county again anyway


DAMAGED_RESULTS = damaged_results() if workflow.is_main_process else {}


def republish_flags(wildcards, what):
    """The flags of the job publishing `what` of the state (see damaged_results), as for a damaged chunk
    (_flags); the record is written again by each publish, so the same damage done again later is a
    new flag."""
    state = wildcards.state
    folder = Path(REPUBLISH.format(state=state, what="x", token="x")).parent
    why = DAMAGED_RESULTS.get((state, what))
    flag = None
    if why:
        record = {"summary": SUMMARY_RECORD, "done": DONE_RECORD}.get(
            what, COUNTY_RECORD
        )
        token = store_index.damage_token(
            why, Path(record.format(state=state, county=what))
        )
        flag = REPUBLISH.format(state=state, what=what, token=token)
    return _planning_flags(folder, lambda f: f.startswith(f"{what}."), flag)


def state_targets():
    targets = [
        pattern.format(state=s)
        for s in STATES
        for pattern in (
            STATE_DONE,
            STATE_PARCELS,
            STATE_PARCELS_GPKG,
            COUNTY_SUMMARY,
            BIOMASS_MAP,
        )
    ]
    return targets + ([NATIONAL_SUMMARY, NATIONAL_MAP] if NATIONAL else [])


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
                ("skipped", SKIPPED),
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
    if NATIONAL:
        written = Path(NATIONAL_SUMMARY).exists()
        lines.append(
            f"national: {NATIONAL_SUMMARY}, {NATIONAL_MAP}"
            + ("" if written else "  (not written yet)")
        )
    logs = (
        [snakemake_log] if isinstance(snakemake_log, str) else list(snakemake_log or [])
    )
    if failed and logs:  # Snakemake hands over its log file(s); the last is this run's
        lines += ["", "What failed, and why:"] + failure_lines(Path(logs[-1]))
    if lines:
        tell("\n".join(["", "tilewise summary", *lines]))
