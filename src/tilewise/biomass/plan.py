"""The biomass pipeline's part of the config, read once into typed settings (no defaults here:
config/config.yaml holds every default, checked against config/schema.yaml at start).

Rules pass plain dicts to their scripts (`as_params()`), and scripts rebuild the typed objects, so a
job never unpickles a tilewise class before `scripts/_paths.py` has made the package importable.
Relative paths of a state's inputs are relative to the working directory, like every Snakemake path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from tilewise.shared.errors import TilewiseError


def _is_url(href: str) -> bool:
    return "://" in href


@dataclass(frozen=True)
class StateInputs:
    state_fips: str
    counties: str
    parcels: str
    worldcover_template: str  # href with {tile}, e.g. .../ESA_WorldCover_10m_2021_v200_{tile}_Map.tif
    cdl: tuple[str, ...]
    cdl_year: int  # the crop year of the CDL files and of the NASS yields used with them
    nass_yields: str | None  # the state's NASS Quick Stats export (None: the national table only)
    fia_plot: str
    fia_cond: str
    fia_tree: str
    sentinel2_catalog: str | None  # a table of tile, date, band, href, processing_baseline …
    sentinel2_template: str | None  # … or an href with {tile}, {date}, {band}
    sentinel2_date: str | None  # None: the latest date with every band (catalog only)
    sentinel2_processing_baseline: str | None  # with the template

    @classmethod
    def from_config(cls, entry: dict) -> StateInputs:
        return cls(
            state_fips=entry["fips"],
            counties=entry["counties"],
            parcels=entry["parcels"],
            worldcover_template=entry["worldcover"],
            cdl=tuple(entry["cdl"]),
            cdl_year=entry["cdl_year"],
            nass_yields=entry["nass_yields"],
            fia_plot=entry["fia_plot"],
            fia_cond=entry["fia_cond"],
            fia_tree=entry["fia_tree"],
            sentinel2_catalog=entry.get("sentinel2_catalog"),
            sentinel2_template=entry.get("sentinel2_template"),
            sentinel2_date=entry.get("sentinel2_date"),
            sentinel2_processing_baseline=entry.get("sentinel2_processing_baseline"),
        )

    def as_params(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict) -> StateInputs:
        return cls(**{**params, "cdl": tuple(params["cdl"])})

    def local_files(self) -> list[str]:
        """Inputs on this machine that Snakemake must see (a change reruns the index)."""
        files = [self.counties, self.parcels, self.fia_plot, self.fia_cond, self.fia_tree, self.nass_yields]
        files += [self.sentinel2_catalog, *self.cdl]
        return [f for f in files if f is not None and not _is_url(f)]


class _Section:
    """A settings dataclass read from one config section: every field is a key of `SECTION`."""

    SECTION: ClassVar[str]

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{f.name: config[cls.SECTION][f.name] for f in fields(cls)})


@dataclass(frozen=True)
class BiomassSettings(_Section):
    """The model's settings (docs/biomass-model.md) and the codec of the converted tiles."""

    SECTION = "biomass"
    fia_radius_km: float
    idw_power: float
    fia_missing: str  # error | exclude_plot
    nass_national_yields: str | None  # None: the national table shipped with tilewise
    tile_codec: str


def state_names(config: dict) -> list[str]:
    value = config["state"]
    names = [value] if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in config["states"]]
    if unknown:
        raise TilewiseError(f"state {unknown} not in the config's `states` (known: {sorted(config['states'])})")
    return names


def state_inputs(config: dict) -> dict[str, StateInputs]:
    """Every selected state's inputs."""
    return {name: StateInputs.from_config(config["states"][name]) for name in state_names(config)}


def postgis_settings(config: dict) -> dict:
    """Where `load_postgis` writes a state's parcels: dsn (never a password), schema and table."""
    return {key: config["postgis"][key] for key in ("dsn", "schema", "table")}
