"""tilewise: Snakemake workflows for large raster jobs.

Two pipelines, each one subpackage: `sources` (Mapterhorn-compatible source preparation) and
`biomass` (state-level parcel biomass); `shared` holds what both use (downloads, errors, job start-up,
COG options, geometry).
"""
