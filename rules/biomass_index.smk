# The tile index of a state (a checkpoint: which counties, parcels and tiles exist is data).


checkpoint index_state:
    input:
        lambda wildcards: STATES[wildcards.state].local_files(),
        [BIOMASS.nass_national_yields] if BIOMASS.nass_national_yields else [],
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
