# One job per county, largest first: per-parcel land cover, indices, crop and forest biomass.


rule process_county:
    input:
        index=state_index_dir,
        tiles=county_tile_files,
    output:
        parcels=COUNTY_PARCELS,
        crops=COUNTY_CROPS,
        stats=COUNTY_STATS,
    log:
        "logs/process_county/{state}/{county}.log",
    priority: lambda wildcards: county_parcels(wildcards)
    conda:
        "../envs/tilewise.yaml"
    threads: 2
    params:
        tiles=county_tile_table,
        fia_radius_km=BIOMASS.fia_radius_km,
        idw_power=BIOMASS.idw_power,
    script:
        "../scripts/process_county.py"
