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

# `state: all` selects every entry of `states` but this one: config.yaml carries the demo state so
# that `make run` works, and a user's config file adds its states to it.
DEMO_STATE = "demo"


def _is_url(href: str) -> bool:
    return "://" in href


@dataclass(frozen=True)
class StacSearch:
    """Sentinel-2 from a STAC API: per MGRS tile the clearest item of `collection` in `datetime`."""

    stac: str  # the API's root URL
    collection: str
    datetime: str  # "2024-06-01/2024-09-30" (dates are whole UTC days) or RFC 3339 instants
    max_cloud_cover: float  # percent, the items' eo:cloud_cover
    sign: str  # "planetary-computer": sign blob hrefs at read time; "none"

    @classmethod
    def from_config(cls, section: dict) -> StacSearch:
        return cls(**{f.name: section[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class StateInputs:
    state_fips: str
    counties: str | dict  # a file, or {query, dsn}: a PostGIS query
    parcels: str | dict  # a file (GeoParquet, GeoPackage), or {query, dsn}
    worldcover_template: str  # href with {tile}, e.g. .../ESA_WorldCover_10m_2021_v200_{tile}_Map.tif
    cdl: tuple[str, ...]
    cdl_year: int  # the crop year of the CDL files and of the NASS yields used with them
    nass_yields: str | None  # the state's NASS Quick Stats export (None: the national table only)
    fia_plot: str  # a FIADB CSV table, or FIADB's SQLite database (tilewise.biomass.fiadb)
    fia_cond: str
    fia_tree: str
    sentinel2_catalog: str | None  # a table of tile, date, band, href, processing_baseline …
    sentinel2_template: str | None  # … or an href with {tile}, {date}, {band} …
    sentinel2_date: str | None  # None: the latest date with every band (catalog only)
    sentinel2_processing_baseline: str | None  # with the template
    sentinel2_stac: dict | None  # … or a STAC API search (StacSearch's config section)

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
            sentinel2_stac=dict(entry["sentinel2"]) if entry.get("sentinel2") else None,
        )

    def as_params(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict) -> StateInputs:
        return cls(**{**params, "cdl": tuple(params["cdl"])})

    def stac(self) -> StacSearch | None:
        return StacSearch.from_config(self.sentinel2_stac) if self.sentinel2_stac else None

    def local_files(self) -> list[str]:
        """Inputs on this machine that Snakemake must see (a change reruns the index)."""
        files = [self.counties, self.parcels, self.fia_plot, self.fia_cond, self.fia_tree, self.nass_yields]
        files += [self.sentinel2_catalog, *self.cdl]
        return [f for f in files if isinstance(f, str) and not _is_url(f)]


class _Section:
    """A settings dataclass read from one config section: every field is a key of `SECTION`."""

    SECTION: ClassVar[str]

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{f.name: config[cls.SECTION][f.name] for f in fields(cls)})


@dataclass(frozen=True)
class BiomassSettings(_Section):
    """The model's settings (docs/biomass-model.md), and how tiles are read and converted."""

    SECTION = "biomass"
    fia_radius_km: float
    idw_power: float
    fia_missing: str  # error | exclude_plot
    nass_national_yields: str | None  # None: the national table shipped with tilewise
    tile_codec: str
    local_copy: bool  # convert even tiles that could be read where they live
    signed_href_min_ttl_seconds: float  # a signed href handed to a job stays valid at least this long


def state_names(config: dict) -> list[str]:
    """The selected states: one name, a list, or `all` (every entry of `states` but the demo)."""
    value = config["state"]
    if value == "all":
        names = sorted(n for n in config["states"] if n != DEMO_STATE)
    else:
        names = [value] if isinstance(value, str) else list(dict.fromkeys(value))
    unknown = [n for n in names if n not in config["states"]]
    if unknown:
        raise TilewiseError(f"state {unknown} not in the config's `states` (known: {sorted(config['states'])})")
    by_fips: dict[str, list[str]] = {}
    for name in names:
        by_fips.setdefault(str(config["states"][name]["fips"]), []).append(name)
    twice = {fips: both for fips, both in by_fips.items() if len(both) > 1}
    if twice:  # the national summary would add one state's parcels, stocks and flows once per entry
        listing = "; ".join(f"{', '.join(both)} (fips {fips})" for fips, both in sorted(twice.items()))
        raise TilewiseError(
            f"states {listing} are one state under two names: select one of them (`state:` names it), or give "
            "each entry its own fips"
        )
    return names


def is_national(config: dict) -> bool:
    """A run of `all` states or of a list (even of one) writes the national summary and map."""
    return not isinstance(config["state"], str) or config["state"] == "all"


def states_in_flight(config: dict) -> int:
    """How many states may hold converted tiles at once (their counties run at the same time)."""
    return int(config["states_in_flight"])


def state_inputs(config: dict) -> dict[str, StateInputs]:
    """Every selected state's inputs."""
    for name in state_names(config):
        entry = config["states"][name]
        beside = [key for key in ("sentinel2_date", "sentinel2_processing_baseline") if entry.get(key) is not None]
        if entry.get("sentinel2") and beside:  # the STAC search picks the date and gives the baseline per item
            raise TilewiseError(
                f"states.{name}: {', '.join(beside)} beside sentinel2 (a STAC search): the search picks each tile's "
                f"date and reads its baseline from the item, so a date of the config matches none of them; remove "
                f"{', '.join(beside)}"
            )
    return {name: StateInputs.from_config(config["states"][name]) for name in state_names(config)}


def postgis_settings(config: dict) -> dict:
    """Where `load_postgis` writes a state's parcels: dsn (never a password), schema and table."""
    return {key: config["postgis"][key] for key in ("dsn", "schema", "table")}
