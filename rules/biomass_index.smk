# The tile index of a state (a checkpoint: which counties, parcels and tiles exist is data).


checkpoint index_state:
    input:
        lambda wildcards: STATES[wildcards.state].local_files(),
        [BIOMASS.nass_national_yields] if BIOMASS.nass_national_yields else [],
        rebuild=state_rebuild_flags,
    output:
        directory(STATE_INDEX),
    log:
        "logs/index_state/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        inputs=lambda wildcards: STATES[wildcards.state].as_params(),
        fia_missing=BIOMASS.fia_missing,
        nass_national_yields=BIOMASS.nass_national_yields,
    script:
        "../scripts/index_state.py"


# A state whose index was made from other files or config than now gets this empty flag as a new input
# of its index (state_rebuild_flags in common.smk; the reason is printed at planning).
rule flag_state_rebuild:
    output:
        STATE_REBUILD,
    log:
        "logs/flag_state_rebuild/{state}/{token}.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    shell:
        "touch {output:q} 2> {log:q}"
