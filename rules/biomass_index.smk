# The tile index of a state (a checkpoint: which counties, parcels and tiles exist is data).
from tilewise.biomass.demo_layout import demo_state_files

DEMO_STATE_DATA = CATALOG / "demo_state" / "data"


rule generate_demo_state:
    output:
        [str(DEMO_STATE_DATA / name) for name in demo_state_files()],
    log:
        "logs/generate_demo_state.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/generate_demo_state.py"


checkpoint index_state:
    input:
        local_state_inputs,
    output:
        directory("results/states/{state}/index"),
    log:
        "logs/index_state/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        inputs=lambda wildcards: state_inputs_of(wildcards.state),
        base=str(CATALOG),
    script:
        "../scripts/index_state.py"
