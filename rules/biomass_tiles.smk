# Each needed tile and band as a verified COG; temp(): gone once every county reading it is done.


rule convert_tile:
    input:
        index=state_index_dir,
        original=local_tile_original,
    output:
        tif=temp(TILE),
        manifest=TILE_MANIFEST,
    log:
        "logs/convert_tile/{state}/{product}/{key}.log",
    conda:
        "../envs/tilewise.yaml"
    resources:
        net=1,
    params:
        href=lambda wildcards: tile_row(wildcards)["href"],
        codec=BIOMASS.tile_codec,
        download=config["download"],
        tiles_dir=lambda wildcards: TILES.format(state=wildcards.state),
    script:
        "../scripts/convert_tile.py"
