# Each needed tile and band as a verified COG; temp(): gone once every county reading it is done.


rule convert_tile:
    input:
        index=state_index_dir,
        original=local_tile_original,
    output:
        tif=temp("results/states/{state}/tiles/{product}/{key}.tif"),
        manifest="results/states/{state}/tiles/{product}/{key}.json",
    log:
        "logs/convert_tile/{state}/{product}/{key}.log",
    conda:
        "../envs/tilewise.yaml"
    resources:
        net=1,
    params:
        href=lambda wildcards: tile_row(wildcards)["href"],
        codec=config["biomass"]["tile_codec"],
        download=config["download"],
    script:
        "../scripts/convert_tile.py"
