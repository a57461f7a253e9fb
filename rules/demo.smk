# The demo source's data, generated here so that a fresh clone runs offline.
from tilewise.demo import demo_files

DEMO_DATA = CATALOG / "demo" / "data"


rule generate_demo_data:
    output:
        [str(DEMO_DATA / name) for name in demo_files()],
    log:
        "logs/generate_demo_data.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/generate_demo_data.py"
