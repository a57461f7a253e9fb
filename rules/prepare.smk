# One job per chunk of a source's file list: download, unpack, recipe, COG, bounds, coverage.


rule prepare_chunk:
    input:
        local=lambda wildcards: plan(wildcards).local_inputs(
            wildcards.chunk, frozenset(DEMO_FILES)
        ),
        rebuild=rebuild_flags,
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
        # chunk membership, recipe and the versions a refresh found are params, so a changed list,
        # recipe or file on its server reruns the chunk (no line numbers: a line added or removed
        # elsewhere in the list changes no other chunk)
        files=chunk_files,
        entry_dir=lambda wildcards: str(plan(wildcards).source.folder),
        recipe=lambda wildcards: plan(wildcards).job_recipe(wildcards.chunk),
        download=lambda wildcards: plan(wildcards).settings.job_download(),
        unpack=config["unpack"],
        staging=lambda wildcards: f"{STAGING.format(source=wildcards.source)}/{wildcards.chunk}",
        scratch=SCRATCH,
    message:
        "{wildcards.source}: chunk {wildcards.chunk}"
    script:
        "../scripts/prepare_chunk.py"


# A chunk whose COGs were deleted or changed in the store, or whose ledger was cut off, gets this
# empty flag as a new input, so the run prepares it again (see rebuild_flags in common.smk; the
# reason is printed when the run is planned). No params: they would rerun it once the damage is gone.
# The merge and the tarball get theirs the same way (merge_again_flags, tarball_again_flags).
rule flag_rebuild:
    output:
        REBUILD,
    log:
        "logs/flag_rebuild/{source}/{step}.{token}.log",
    localrule: True
    conda:
        "../envs/tilewise.yaml"
    shell:
        "touch {output:q} 2> {log:q}"
