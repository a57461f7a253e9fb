"""Rule process_county: per-parcel biomass of one county, read from the state's converted tiles."""

import _paths  # noqa: F401 (first: makes tilewise importable where it is not installed)

# isort: split
from pathlib import Path

from tilewise.biomass import county_files
from tilewise.biomass.county import CountyInputs, process_county
from tilewise.biomass.tiles import present
from tilewise.shared import job

smk = snakemake  # noqa: F821 (injected by Snakemake)
job.start(smk)
county = smk.wildcards.county
inputs = CountyInputs.from_index(
    Path(smk.input.index), county, present(smk.params.tiles), smk.params.fia_radius_km, smk.params.idw_power
)
result, crops, stats = process_county(inputs, workers=smk.threads)
result.insert(1, "county_fips", county)
county_files.write(Path(smk.output.parcels), Path(smk.output.crops), Path(smk.output.stats), result, crops, stats)
