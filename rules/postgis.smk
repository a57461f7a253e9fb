# Optional: a state's parcel results in PostGIS, one transaction per county (not part of `all`).


rule load_postgis:
    input:
        parcels=lambda wildcards: county_outputs(wildcards, COUNTY_PARCELS),
    output:
        POSTGIS_LOAD,
    log:
        "logs/load_postgis/{state}.log",
    conda:
        "../envs/tilewise.yaml"
    params:
        dsn=POSTGIS["dsn"],
        schema=POSTGIS["schema"],
        table=POSTGIS["table"],
    script:
        "../scripts/load_postgis.py"
