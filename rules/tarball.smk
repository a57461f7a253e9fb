# Mapterhorn's per-source tarball and its md5, refused for an incomplete source unless allowed.


rule build_tarball:
    input:
        license=license_pdf,
        metadata=metadata_json,
        bounds="source-store/{source}/bounds.csv",
        coverage="polygon-store/{source}.gpkg",
        failures="reports/{source}/failures.csv",
    output:
        tar="tar-store/{source}.tar",
        md5="tar-store/{source}.tar.md5",
    log:
        "logs/build_tarball/{source}.log",
    benchmark:
        "benchmarks/build_tarball/{source}.tsv"
    conda:
        "../envs/tilewise.yaml"
    params:
        allow_incomplete=lambda wildcards: plan(wildcards).settings["allow_incomplete"],
    script:
        "../scripts/build_tarball.py"
