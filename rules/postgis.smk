# Optional: a state's parcel results in PostGIS, one transaction per county (not part of `all`).


rule load_postgis:
    input:
        parcels=lambda wildcards: county_outputs(wildcards, "parquet"),
    output:
        "results/states/{state}/postgis_load.json",
    log:
        "logs/load_postgis/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        dsn=config["postgis"]["dsn"],
        schema=config["postgis"]["schema"],
        table=config["postgis"]["table"],
    script:
        "../scripts/load_postgis.py"
