"""Names and places of the demo state's generated inputs (light: the Snakefile imports it)."""

STATE_FIPS = "99"
COUNTIES = {  # GEOID: (name, west, south, east, north) in lon/lat, inside central Illinois' real S2 grid
    "99001": ("Alder", -88.60, 40.00, -88.30, 40.25),
    "99003": ("Birch", -88.30, 40.00, -88.00, 40.25),
    "99005": ("Cedar", -88.00, 40.00, -87.75, 40.25),
}
S2_TILES = ("16TCK", "16TDK")
S2_DATE = "20240815"
S2_BANDS = ("B02", "B03", "B04", "B08", "SCL")
WORLDCOVER = "worldcover/ESA_WorldCover_10m_2021_v200_N39W090_Map.tif"
CDL = "cdl/2023_30m_cdls_demo.tif"


def s2_file(tile: str, band: str) -> str:
    return f"sentinel2/T{tile}_{S2_DATE}_{band}.tif"


def demo_state_files() -> list[str]:
    """Every file the generator writes, relative to its folder (the rule that runs it declares them)."""
    s2 = [s2_file(t, b) for t in S2_TILES for b in S2_BANDS]
    return [
        "counties.gpkg",
        "parcels.parquet",
        "sentinel2_catalog.csv",
        *s2,
        WORLDCOVER,
        CDL,
        "fia/PLOT.csv",
        "fia/TREE.csv",
        "COMPLETE",
    ]
