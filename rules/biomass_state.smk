# The end of a state's turn (every county succeeded or failed), state outputs, the DONE record once
# every county succeeded and its tiles were reclaimed, and the national summary and map.


rule end_state:
    input:
        index=state_index_dir,
        runs=lambda wildcards: county_outputs(wildcards, COUNTY_RUN),
        manifests=lambda wildcards: state_tiles(wildcards, TILE_MANIFEST),
    output:
        STATE_ENDED,
    log:
        "logs/end_state/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        tiles=state_tile_table,
        runs=runs_of,
    script:
        "../scripts/end_state.py"


rule summarize_state:
    input:
        index=state_index_dir,
        parcels=lambda wildcards: county_outputs(wildcards, COUNTY_PARCELS),
        stats=lambda wildcards: county_outputs(wildcards, COUNTY_STATS),
        again=lambda wildcards: republish_flags(wildcards, "summary"),
    output:
        parquet=STATE_PARCELS,
        gpkg=STATE_PARCELS_GPKG,
        summary=report(
            COUNTY_SUMMARY,
            caption="../report/county_summary.rst",
            category="Biomass",
            subcategory="{state}",
        ),
        png=report(
            BIOMASS_MAP,
            caption="../report/biomass_map.rst",
            category="Biomass",
            subcategory="{state}",
        ),
        record=SUMMARY_RECORD,
    log:
        "logs/summarize_state/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        staged=lambda wildcards: COUNTY_STAGED,  # a pattern: a function keeps {state} {county}
    script:
        "../scripts/summarize_state.py"


rule state_done:
    input:
        parcels=lambda wildcards: county_outputs(wildcards, COUNTY_PARCELS),
        summary=COUNTY_SUMMARY,
        ended=STATE_ENDED,
        manifests=lambda wildcards: state_tiles(wildcards, TILE_MANIFEST),
        again=lambda wildcards: republish_flags(wildcards, "done"),
    output:
        done=STATE_DONE,
        record=DONE_RECORD,
    log:
        "logs/state_done/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        tiles=lambda wildcards: state_tiles(wildcards, TILE),
    script:
        "../scripts/state_done.py"


rule summarize_national:
    input:
        ended=expand(STATE_ENDED, state=list(STATES)),
        indexes=lambda wildcards: [
            checkpoints.index_state.get(state=s).output[0] for s in STATES
        ],
        rebuild=national_rebuild_flags,
    output:
        summary=report(
            NATIONAL_SUMMARY,
            caption="../report/national_summary.rst",
            category="Biomass",
            subcategory="national",
        ),
        png=report(
            NATIONAL_MAP,
            caption="../report/national_map.rst",
            category="Biomass",
            subcategory="national",
        ),
        record=NATIONAL_RECORD,
    log:
        "logs/summarize_national.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        states=list(STATES),
        staged=lambda wildcards: COUNTY_STAGED,  # a pattern: a function keeps {state} {county}
    script:
        "../scripts/summarize_national.py"


# The national summary of other states than the selection gets this flag (national_rebuild_flags).
rule flag_national_rebuild:
    output:
        NATIONAL_REBUILD,
    log:
        "logs/flag_national_rebuild/{token}.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    shell:
        "touch {output:q} 2> {log:q}"


# A flag for a job whose published files were deleted, edited or replaced after it ran (made at planning,
# see republish_flags in rules/common.smk; this job makes it in a dry-run's plan only).
rule flag_republish:
    output:
        REPUBLISH,
    log:
        "logs/flag_republish/{state}/{what}.{token}.log",
    wildcard_constraints:
        what=r"\d{5}|summary|done",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    shell:
        "touch {output:q} 2> {log:q}"


# A flag for a county or tile job whose record says its last run failed (failed_flags in rules/common.smk;
# made at planning; this job makes it in a dry-run's plan only).
rule flag_rerun_failed:
    output:
        RERUN_FAILED,
    log:
        "logs/flag_rerun_failed/{state}/{what}.{token}.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    shell:
        "touch {output:q} 2> {log:q}"
