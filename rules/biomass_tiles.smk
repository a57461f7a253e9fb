# Each needed tile and band: read in place, or clipped/converted to a verified COG. One manifest per
# tile; a tile that fails records why (its counties fail, the rest goes on). In a national run a
# state's tiles wait for its turn (state_turn).


rule convert_tile:
    input:
        index=state_index_dir,
        original=local_tile_original,
        turn=state_turn,
        again=lambda wildcards: failed_flags(TILE_MANIFEST, wildcards),
    output:
        manifest=TILE_MANIFEST,
    log:
        "logs/convert_tile/{state}/{product}/{key}.log",
    conda:
        "../envs/tilewise.yaml"
    resources:
        net=1,
    params:
        row=tile_row,
        tif=TILE,
        settings=tile_settings(),
        failed_before=lambda wildcards: failed_attempts(TILE_MANIFEST, wildcards),
        # every state's tiles (results/states), where the manifest records what is on disk
        states_root=lambda wildcards, output: str(Path(output.manifest).parents[3]),
    script:
        "../scripts/convert_tile.py"
