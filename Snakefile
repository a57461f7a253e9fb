# tilewise: Mapterhorn-compatible source preparation and state-level parcel biomass.
# Run: snakemake --cores 8 --config source=NAME catalog=FOLDER, or state=NAME   (see README.md)

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# the workflow's own package, also where it is not installed (scripts/_paths.py does the same for jobs)
sys.path.insert(0, os.path.join(workflow.basedir, "src"))


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/prepare.smk"
include: "rules/merge.smk"
include: "rules/tarball.smk"
include: "rules/plot.smk"
include: "rules/biomass_index.smk"
include: "rules/biomass_tiles.smk"
include: "rules/biomass_county.smk"
include: "rules/biomass_state.smk"
include: "rules/postgis.smk"


# after the DAG is built, before the first job, in a run that has jobs (not -n, --dag, --summary)
onstart:
    record_chunk_counts(PLANS, CHUNK_COUNT)


onsuccess:
    release_rate_limiter_timer()
    print_run_end(log, failed=False)


onerror:
    release_rate_limiter_timer()
    restore_tarballs()
    print_run_end(log, failed=True)


rule all:
    default_target: True
    input:
        source_targets(),
        state_targets(),
