# Merge a source's chunk ledgers: the COGs into the store, Mapterhorn's bounds.csv and coverage,
# the failure and skip reports, and the store index that the next run's planning checks the store against.


rule merge_source:
    input:
        ledgers=chunk_ledgers,
        file_list=file_list,
        again=merge_again_flags,
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
        store_index=STORE_INDEX,
    log:
        "logs/merge_source/{source}.log",
    benchmark:
        "benchmarks/merge_source/{source}.tsv"
    conda:
        "../envs/tilewise.yaml"
    # a large source's coverage union cleans two halves at once (20,000 tiles: 27 → 20 s)
    threads: lambda wildcards: plan(wildcards).merge_threads()
    params:
        store=STORE,
        staging=STAGING,
        remote_state=lambda wildcards: os.path.dirname(
            REMOTE_STATE.format(source=wildcards.source, chunk="x")
        ),
        recipe_file=lambda wildcards: str(plan(wildcards).source.recipe_file),
        coverage_crs=lambda wildcards: plan(wildcards).source.recipe.coverage_crs,
    script:
        "../scripts/merge_source.py"
