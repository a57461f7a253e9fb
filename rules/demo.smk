# The demo source's data, generated here so that a fresh clone runs offline: the files its
# file_list.txt names.
from tilewise.catalog import parse_file_list

DEMO_ENTRY = CATALOG / "demo"
DEMO_FILES = (
    [
        str(e.local_path(DEMO_ENTRY))
        for e in parse_file_list(DEMO_ENTRY / "file_list.txt")
    ]
    if (DEMO_ENTRY / "file_list.txt").is_file()
    else []
)


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
