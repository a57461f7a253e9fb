# State outputs, and the DONE record once every county succeeded and its tiles were reclaimed.


rule summarize_state:
    input:
        index=state_index_dir,
        parcels=lambda wildcards: county_outputs(wildcards, COUNTY_PARCELS),
        stats=lambda wildcards: county_outputs(wildcards, COUNTY_STATS),
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
    log:
        "logs/summarize_state/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/summarize_state.py"


rule state_done:
    input:
        parcels=lambda wildcards: county_outputs(wildcards, COUNTY_PARCELS),
        summary=COUNTY_SUMMARY,
        manifests=lambda wildcards: state_tiles(wildcards, TILE_MANIFEST),
    output:
        STATE_DONE,
    log:
        "logs/state_done/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        tiles=lambda wildcards: state_tiles(wildcards, TILE),
    script:
        "../scripts/state_done.py"
