# One job per chunk of a source's file list: download, unpack, recipe, COG, bounds, coverage.


rule prepare_chunk:
    input:
        lambda wildcards: plan(wildcards).local_inputs(wildcards.chunk),
    output:
        ledger=LEDGER,
    log:
        "logs/prepare_chunk/{source}/{chunk}.log",
    benchmark:
        "benchmarks/prepare_chunk/{source}/{chunk}.tsv"
    # largest chunks first, so the last round of a source is not one big chunk alone on a core
    priority: lambda wildcards: len(plan(wildcards).chunks[wildcards.chunk])
    conda:
        "../envs/tilewise.yaml"
    resources:
        net=lambda wildcards: plan(wildcards).settings.download["connections"],
    params:
        # chunk membership and recipe are params, so a changed list or recipe reruns the chunk
        files=lambda wildcards: [
            [e.line, e.url, e.name, e.group]
            for e in plan(wildcards).chunks[wildcards.chunk]
        ],
        entry_dir=lambda wildcards: str(plan(wildcards).source.folder),
        recipe=lambda wildcards: plan(wildcards).source.recipe.as_dict(),
        download=lambda wildcards: plan(wildcards).settings.download,
        unpack=config["unpack"],
        store=STORE,
        scratch=SCRATCH,
    message:
        "{wildcards.source}: chunk {wildcards.chunk}"
    script:
        "../scripts/prepare_chunk.py"
