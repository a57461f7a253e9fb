# The coverage map of a source: where it has valid data, over its file footprints.


rule plot_coverage:
    input:
        ledgers=chunk_ledgers,
    output:
        png=report(
            COVERAGE_MAP,
            caption="../report/coverage.rst",
            category="Sources",
            subcategory="{source}",
        ),
    log:
        "logs/plot_coverage/{source}.log",
    benchmark:
        "benchmarks/plot_coverage/{source}.tsv"
    # a by-product: after the merge (two threads) and beside the tarball, never holding either up
    priority: -1
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/plot_coverage.py"
