# State outputs, and the DONE record once every county succeeded and its tiles were reclaimed.


rule summarize_state:
    input:
        index=state_index_dir,
        parcels=lambda wildcards: county_outputs(wildcards, "parquet"),
        stats=lambda wildcards: county_outputs(wildcards, "stats.json"),
    output:
        parquet="results/states/{state}/parcels.parquet",
        gpkg="results/states/{state}/parcels.gpkg",
        summary=report(
            "results/states/{state}/county_summary.csv",
            caption="../report/county_summary.rst",
            category="Biomass",
            subcategory="{state}",
        ),
        png=report(
            "results/states/{state}/biomass_map.png",
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
        parcels=lambda wildcards: county_outputs(wildcards, "parquet"),
        summary="results/states/{state}/county_summary.csv",
        manifests=state_tile_manifests,
    output:
        "results/states/{state}/DONE.json",
    log:
        "logs/state_done/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        tiles=lambda wildcards, input: [
            m[: -len(".json")] + ".tif" for m in input.manifests
        ],
    script:
        "../scripts/state_done.py"
