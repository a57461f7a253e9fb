# One job per county, largest first: per-parcel land cover, indices, crop and forest biomass. The job
# records its outcome and never fails itself (a national run goes on to the next state once every
# county has ended); publish_county then fails for a failed county, with its reason. publish_county
# copies (never links) the staged files and records them; a published file deleted or changed later is
# published again by the next run (republish_flags in rules/common.smk).


rule process_county:
    input:
        index=state_index_dir,
        manifests=county_tile_manifests,
        again=lambda wildcards: failed_flags(COUNTY_RUN, wildcards),
    output:
        run=COUNTY_RUN,
        staged=directory(COUNTY_STAGED),
    log:
        "logs/process_county/{state}/{county}.log",
    priority: lambda wildcards: county_parcels(wildcards)
    conda:
        "../envs/tilewise.yaml"
    threads: county_threads
    params:
        tiles=county_tile_table,
        runs=runs_of,
        settings=tile_settings(),
        failed_before=lambda wildcards: failed_attempts(COUNTY_RUN, wildcards),
        states_root=lambda wildcards, output: str(Path(output.run).parents[2]),
        fia_radius_km=BIOMASS.fia_radius_km,
        idw_power=BIOMASS.idw_power,
    script:
        "../scripts/process_county.py"


rule publish_county:
    input:
        run=COUNTY_RUN,
        staged=COUNTY_STAGED,
        again=lambda wildcards: republish_flags(wildcards, wildcards.county),
    output:
        parcels=COUNTY_PARCELS,
        crops=COUNTY_CROPS,
        stats=COUNTY_STATS,
        record=COUNTY_RECORD,
    log:
        "logs/publish_county/{state}/{county}.log",
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/publish_county.py"
