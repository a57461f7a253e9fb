# Merge a source's chunk ledgers into Mapterhorn's bounds.csv and coverage, plus the failure report.


rule merge_source:
    input:
        ledgers=chunk_ledgers,
    output:
        bounds="source-store/{source}/bounds.csv",
        coverage="polygon-store/{source}.gpkg",
        failures=report(
            "reports/{source}/failures.csv",
            caption="../report/failures.rst",
            category="Sources",
            subcategory="{source}",
        ),
    log:
        "logs/merge_source/{source}.log",
    benchmark:
        "benchmarks/merge_source/{source}.tsv"
    conda:
        "../envs/tilewise.yaml"
    params:
        coverage_crs=lambda wildcards: plan(wildcards).source.recipe.coverage_crs,
    script:
        "../scripts/merge_source.py"
