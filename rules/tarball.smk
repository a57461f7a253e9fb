# Mapterhorn's per-source tarball, its md5 and what changed since the tarball before; refused for an incomplete source unless allowed.


rule build_tarball:
    input:
        license=license_pdf,
        metadata=metadata_json,
        bounds=BOUNDS,
        coverage=COVERAGE,
        store_index=STORE_INDEX,
        failures=FAILURES,
        ledgers=chunk_ledgers,
        again=tarball_again_flags,
    output:
        tar=TARBALL,
        md5=TARBALL_MD5,
        changes=CHANGES,
    log:
        "logs/build_tarball/{source}.log",
    benchmark:
        "benchmarks/build_tarball/{source}.tsv"
    conda:
        "../envs/tilewise.yaml"
    params:
        store=lambda wildcards, input: os.path.dirname(input.bounds),
        published=PUBLISHED,
        allow_incomplete=lambda wildcards: plan(wildcards).settings.allow_incomplete,
    script:
        "../scripts/build_tarball.py"
