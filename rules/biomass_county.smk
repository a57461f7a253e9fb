# One job per county, largest first: per-parcel land cover, indices, crop and forest biomass.


rule process_county:
    input:
        index=state_index_dir,
        tiles=county_tile_files,
    output:
        parcels="results/states/{state}/counties/{county}.parquet",
        crops="results/states/{state}/counties/{county}.crops.parquet",
        stats="results/states/{state}/counties/{county}.stats.json",
    log:
        "logs/process_county/{state}/{county}.log",
    priority: lambda wildcards: county_parcels(wildcards)
    conda:
        "../envs/tilewise.yaml"
    threads: 2
    params:
        tiles=lambda wildcards: county_tile_table(wildcards),
        fia_radius_km=config["biomass"]["fia_radius_km"],
        idw_power=config["biomass"]["idw_power"],
    script:
        "../scripts/process_county.py"
