# tilewise: Mapterhorn-compatible source preparation and state-level parcel biomass.
# Run: snakemake --cores 8 --config source=NAME   (see README.md)

import os

from snakemake.utils import min_version

min_version("9.0")


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


onsuccess:
    release_rate_limiter_timer()


onerror:
    release_rate_limiter_timer()


rule all:
    default_target: True
    input:
        source_targets(),
        state_targets(),
