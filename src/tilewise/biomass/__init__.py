"""State-level parcel biomass: tile index, tile preprocessing, county processing, state outputs.

The model (every formula, constant and unit) is documented in docs/biomass-model.md.
"""
