# The coverage map of a source: where it has valid data, over its file footprints.


rule plot_coverage:
    input:
        bounds="source-store/{source}/bounds.csv",
        coverage="polygon-store/{source}.gpkg",
    output:
        png="reports/{source}/coverage.png",
    log:
        "logs/plot_coverage/{source}.log",
    conda:
        "../envs/tilewise.yaml"
    script:
        "../scripts/plot_coverage.py"
