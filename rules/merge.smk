# Merge a source's chunk ledgers into Mapterhorn's bounds.csv and coverage, plus the failure and skip reports.


rule merge_source:
    input:
        ledgers=chunk_ledgers,
    output:
        bounds=BOUNDS,
        coverage=COVERAGE,
        failures=report(
            FAILURES,
            caption="../report/failures.rst",
            category="Sources",
            subcategory="{source}",
        ),
        skipped=report(
            SKIPPED,
            caption="../report/skipped.rst",
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
        store=lambda wildcards, output: os.path.dirname(output.bounds),
        coverage_crs=lambda wildcards: plan(wildcards).source.recipe.coverage_crs,
    script:
        "../scripts/merge_source.py"
