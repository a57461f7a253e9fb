# The demos' input data, generated here so that a fresh clone runs offline. Data are generated only
# into a selected demo source (its metadata names the demo producer), never into another catalog
# entry; the demo state's data go to resources/ in the working folder.
from tilewise_demo.layout import DEMO_SOURCE_PRODUCER, demo_state_files

DEMO_FILES = [
    str(e.local_path(p.source.folder))
    for p in PLANS.values()
    if p.source.metadata.get("producer") == DEMO_SOURCE_PRODUCER
    for e in p.source.files
]


rule generate_demo_data:
    output:
        DEMO_FILES,
    log:
        "logs/generate_demo_data.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/generate_demo_data.py"


rule generate_demo_state:
    output:
        [f"{DEMO_STATE_DATA}/{name}" for name in demo_state_files()],
    log:
        "logs/generate_demo_state.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/generate_demo_state.py"
