"""The state pipeline run by snakemake on the generated demo state."""

import json
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from conftest import seed_demo_state, snakemake

pytestmark = pytest.mark.workflow
# every number carries its unit, and a mass its basis: dry matter, a stock or a flow per year (`_code`:
# a class code, a name in numbers)
UNIT = re.compile(
    r"_(acres|unitless|count|m2|dry_short_tons(_per_acre|_per_year)?|km|fraction|year|bytes|seconds|code)$"
)


def args(tmp_path, *extra):
    return ["--config", "state=demo", *extra]


def tiles_on_disk(work):
    return sorted(
        p.relative_to(work / "results/states/demo/tiles").as_posix()
        for p in (work / "results/states/demo/tiles").rglob("*.tif")
    )


def test_state_run_failing_county_keeps_its_tiles_then_completes(tmp_path, demo_state_inputs):
    work = tmp_path / "run"
    seed_demo_state(demo_state_inputs, work)
    snakemake(work, "results/states/demo/index", *args(tmp_path))
    index = work / "results/states/demo/index"
    counties = pd.read_csv(index / "counties.csv", dtype={"county_fips": str})
    assert counties["county_fips"].tolist() == ["99001", "99003", "99005"]
    tiles = pd.read_csv(index / "tiles.csv", dtype=str)
    assert set(tiles.loc[tiles["product"] == "sentinel2", "tile"]) == {"16TCK", "16TDK"}

    # county 99005 cannot be read: it fails, the others finish
    good = (index / "parcels" / "99005.parquet").read_bytes()
    (index / "parcels" / "99005.parquet").write_bytes(b"not parquet")
    proc = snakemake(work, *args(tmp_path), check=False)
    assert proc.returncode != 0
    out = work / "results/states/demo"
    assert (out / "counties/99001.parquet").exists() and (out / "counties/99003.parquet").exists()
    assert not (out / "counties/99005.parquet").exists() and not (out / "DONE.json").exists()
    left = tiles_on_disk(work)
    # 16TDK, WorldCover and CDL are read by 99005: kept; 16TCK is read only by 99001 and 99003: reclaimed
    assert left and all(not t.startswith("sentinel2/16TCK") for t in left)
    assert {t for t in left if t.startswith("sentinel2/16TDK")} == {
        f"sentinel2/16TDK_20240815_{b}.tif" for b in ("B02", "B03", "B04", "B08", "SCL")
    }
    assert "worldcover/N39W090.tif" in left and "cdl/2023_30m_cdls_demo.tif" in left

    # fixed: the rerun does only what is missing, then reclaims every tile and writes DONE.json
    (index / "parcels" / "99005.parquet").write_bytes(good)
    rerun = snakemake(work, *args(tmp_path))
    assert "(Rule: convert_tile)" not in rerun.stderr and rerun.stderr.count("(Rule: process_county)") == 1
    assert tiles_on_disk(work) == []
    done = json.loads((out / "DONE.json").read_text())
    assert done["counties"] == ["99001", "99003", "99005"] and len(done["tiles"]) == len(tiles)
    manifests = [json.loads(p.read_text()) for p in (out / "tiles").rglob("*.json")]
    assert all(m["verified_pixels_equal"] for m in manifests)
    assert done["converted_tile_bytes_reclaimed"] == sum(m["bytes"] for m in manifests)
    assert 0 < done["converted_tile_bytes_peak"] <= done["converted_tile_bytes_reclaimed"]

    # outputs: one row per parcel, a unit in every numeric column name, totals that add up
    parcels = gpd.read_parquet(out / "parcels.parquet")
    assert len(parcels) == counties["parcels"].sum() and parcels["parcel_id"].is_unique
    summary = pd.read_csv(out / "county_summary.csv", dtype={"county_fips": str})
    assert summary["parcels_count"].sum() == len(parcels)
    # blocks, not files: each county reads a small part of the originals (tiles are clipped to the state)
    assert (summary["read_bytes"] < 0.5 * sum(m["original_bytes"] for m in manifests)).all()
    assert {m["read"] for m in manifests} == {"clip"}  # every demo original reaches past the state
    crops = pd.concat(pd.read_parquet(p) for p in sorted((out / "counties").glob("*.crops.parquet")))
    for table in (parcels, summary, crops):
        assert [c for c in table.select_dtypes("number").columns if not UNIT.search(c)] == []
    # a stock (forest, dry short tons) and a flow (crops, dry short tons per year) are never one number
    masses = [c for c in (*parcels.columns, *summary.columns) if "short_tons" in c]
    assert masses and not [c for c in masses if "forest" in c and "crop" in c]
    assert not [c for c in masses if c.startswith("crop") and not c.endswith("_per_year")]
    assert "confidence_0to1" not in parcels
    assert (parcels["worldcover_valid_area_acres"] <= parcels["parcel_area_acres"] * (1 + 1e-6)).all()
    assert (
        parcels["forest_area_acres"] + parcels["crop_area_acres"] <= parcels["parcel_area_acres"] * (1 + 1e-9)
    ).all()
    assert parcels["s2_tile"].notna().all() and parcels["s2_tile_contains_parcel"].all()
    for name in ("ndvi", "evi", "savi", "ndwi"):
        assert parcels[f"{name}_mean_unitless"].dropna().abs().max() <= 1
    for fraction in (
        "s2_clear_fraction",
        "s2_coverage_fraction",
        "worldcover_coverage_fraction",
        "cdl_coverage_fraction",
    ):
        assert parcels[fraction].between(0, 1).all(), fraction
    assert (parcels["s2_clear_fraction"] < 0.9).any()  # the demo's clouds
    forest = parcels[parcels["forest_area_acres"] > 1]
    assert (forest["forest_aboveground_dry_short_tons"] > 0).all()
    assert forest["forest_aboveground_density_sd_dry_short_tons_per_acre"].notna().all()
    assert summary["parcels_count"].sum() == len(parcels)
    for column in ("forest_aboveground_dry_short_tons", "crop_production_dry_short_tons_per_year", "crop_area_acres"):
        assert summary[column].sum() == pytest.approx(parcels[column].sum())
    assert (summary["crop_year"] == 2023).all() and (summary["fia_plot_last_year"] == 2021).all()
    assert summary["forest_crop_conflict_acres"].notna().all()
    assert (summary["read_bytes"] < summary["tile_bytes"]).all()
    # the demo's crops: corn and soybeans from its own Quick Stats table, winter wheat (withheld there)
    # from the national one, alfalfa without a sourced hay moisture: area, no made-up dry matter
    assert set(crops["cdl_code"]) <= {1, 5, 24, 36}
    by_crop = crops.groupby("cdl_code")
    assert set(by_crop["yield_source"].first().dropna().items()) == {(1, "state"), (5, "state"), (24, "national")}
    assert crops.loc[crops["cdl_code"] == 36, "production_dry_short_tons_per_year"].isna().all()
    assert (crops.loc[crops["cdl_code"] != 36, "production_dry_short_tons_per_year"] > 0).all()
    index = json.loads((out / "index" / "index.json").read_text())
    assert index["fia"]["forest_plots_zero_biomass"] >= 1 and index["fia"]["older_visit_used"] >= 1
    assert index["fia"]["live_trees_on_nonforest_conditions_ignored"] >= 1
    assert gpd.read_file(out / "parcels.gpkg").shape[0] == len(parcels)
    assert (out / "biomass_map.png").stat().st_size > 20_000
    snakemake(work, *args(tmp_path), "--report", str(work / "report.html"))
    html = (work / "report.html").read_text()
    for expected in ("Forest biomass (a stock) and crop production", "biomass_map.png", "county_summary.csv"):
        assert expected in html, expected


def test_county_jobs_share_the_cores_by_their_parcels(tmp_path, demo_state_inputs):
    """A county job's processes are its share of --cores by its share of the state's parcels, at least
    one: many counties run side by side, one process each; a few large ones get several each."""
    work = tmp_path / "run"
    seed_demo_state(demo_state_inputs, work)
    snakemake(work, "results/states/demo/index", *args(tmp_path))
    counties = pd.read_csv(work / "results/states/demo/index/counties.csv", dtype={"county_fips": str})
    share = counties.set_index("county_fips")["parcels"] / counties["parcels"].sum()
    for cores in (2, 8):
        dry = snakemake(work, *args(tmp_path), "--cores", str(cores), "--dry-run")
        threads = {}
        for job in re.findall(r"rule process_county:\n((?:    .*\n)+)", dry.stdout + dry.stderr):
            shown = re.search(r"threads: (\d+)", job)  # Snakemake shows threads above one only
            threads[re.search(r"county=(\d+)", job).group(1)] = int(shown.group(1)) if shown else 1
        assert threads == {c: max(1, round(cores * s)) for c, s in share.items()}, (cores, threads)
    assert max(threads.values()) > 1  # with 8 cores the demo's 3 counties get several processes


def test_a_tile_that_fails_conversion_fails_only_its_counties(tmp_path, demo_state_inputs):
    work = tmp_path / "run"
    seed_demo_state(demo_state_inputs, work)
    snakemake(work, "results/states/demo/index", *args(tmp_path))
    original = work / "resources/demo_state/sentinel2/T16TDK_20240815_B04.tif"
    good = original.read_bytes()
    original.write_bytes(good[: len(good) // 3])  # a truncated download left in place by someone
    proc = snakemake(work, *args(tmp_path), check=False)
    assert proc.returncode != 0
    log = (work / "logs/convert_tile/demo/sentinel2/16TDK_20240815_B04.log").read_text()
    assert "T16TDK_20240815_B04.tif" in log
    out = work / "results/states/demo"
    # 16TDK is read by 99003 and 99005: they fail; 99001 does not need it and finishes
    assert (out / "counties/99001.parquet").exists()
    assert not (out / "counties/99003.parquet").exists() and not (out / "counties/99005.parquet").exists()
    assert not (out / "DONE.json").exists()
    left = tiles_on_disk(work)
    assert "sentinel2/16TCK_20240815_B04.tif" in left  # 99003 still needs it
    assert "worldcover/N39W090.tif" in left and "sentinel2/16TDK_20240815_B02.tif" in left
    # the fault fixed, the rerun finishes everything and only then reclaims the tiles
    original.write_bytes(good)
    snakemake(work, *args(tmp_path))
    assert tiles_on_disk(work) == []
    assert json.loads((out / "DONE.json").read_text())["counties"] == ["99001", "99003", "99005"]


# --- biomass inputs with gaps: absent WorldCover tiles, missing local tiles, parcels in another county ---


def _state_from_demo(demo, folder, worldcover: str, s2_missing: str | None = None) -> dict:
    """A state like the demo with county 99005 reaching east into WorldCover tile N39W087, parcels that
    carry FIPS columns (one of them naming a county it is not in), one parcel in N39W087."""
    folder.mkdir(parents=True)
    counties = gpd.read_file(demo / "counties.gpkg")
    counties.loc[counties["COUNTYFP"] == "005", "geometry"] = shapely.box(-88.0, 40.0, -86.9, 40.25)
    counties.to_file(folder / "counties.gpkg", layer="counties", driver="GPKG")
    parcels = gpd.read_parquet(demo / "parcels.parquet")
    lon = parcels.geometry.representative_point().x
    parcels["county_fips"] = np.select([lon < -88.3, lon < -88.0], ["99001", "99003"], "99005")
    extra = gpd.GeoDataFrame(
        {"parcel_id": ["EAST", "ASTRAY"], "county_fips": ["99005", "99005"]},
        geometry=[shapely.box(-86.96, 40.10, -86.95, 40.11), shapely.box(-88.50, 40.10, -88.49, 40.11)],
        crs=parcels.crs,
    )
    pd.concat([parcels, extra], ignore_index=True).to_parquet(folder / "parcels.parquet")
    catalog = pd.read_csv(demo / "sentinel2_catalog.csv", dtype=str)
    catalog["href"] = [str(demo / h) for h in catalog["href"]]
    if s2_missing:
        catalog.loc[catalog["href"].str.endswith(s2_missing), "href"] = str(folder / s2_missing)
    catalog.to_csv(folder / "sentinel2_catalog.csv", index=False)
    return {
        "fips": "99",
        "counties": str(folder / "counties.gpkg"),
        "parcels": str(folder / "parcels.parquet"),
        "sentinel2_catalog": str(folder / "sentinel2_catalog.csv"),
        "sentinel2_date": None,
        "worldcover": worldcover,
        "cdl": [str(demo / "cdl" / "2023_30m_cdls_demo.tif")],
        "cdl_year": 2023,
        "nass_yields": str(demo / "nass" / "quickstats_yields.csv"),
        "fia_plot": str(demo / "fia" / "PLOT.csv"),
        "fia_cond": str(demo / "fia" / "COND.csv"),
        "fia_tree": str(demo / "fia" / "TREE.csv"),
    }


def _run_state(work, name, state, check=True):
    cfg = work.parent / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({"state": name, "states": {name: state}}))
    return snakemake(work, "--configfile", str(cfg), check=check)


def test_a_worldcover_tile_not_published_is_absent_and_the_state_completes(tmp_path, http, demo_state_inputs):
    wc = "ESA_WorldCover_10m_2021_v200_{tile}_Map.tif"
    http.files["/wc/" + wc.format(tile="N39W090")] = (
        demo_state_inputs / "worldcover" / wc.format(tile="N39W090")
    ).read_bytes()
    work = tmp_path / "run"
    _run_state(work, "coast", _state_from_demo(demo_state_inputs, tmp_path / "coast", http.url("wc/" + wc)))
    out = work / "results/states/coast"
    done = json.loads((out / "DONE.json").read_text())
    assert done["counties"] == ["99001", "99003", "99005"] and "worldcover/N39W087" in done["tiles"]
    manifest = json.loads((out / "tiles/worldcover/N39W087.json").read_text())
    assert manifest["absent"] is True and "HTTP 404" in manifest["reason"] and "N39W090" in manifest["reason"]
    assert [r[2] for r in http.requests_for("wc/" + wc.format(tile="N39W087"))] == [404]  # one request, no retry
    parcels = gpd.read_parquet(out / "parcels.parquet").set_index("parcel_id")
    assert parcels.loc["EAST", "worldcover_valid_area_acres"] == 0 < parcels.loc["EAST", "parcel_area_acres"]
    assert (parcels.drop(index="EAST")["worldcover_valid_area_acres"] > 0).all()
    # a parcel whose FIPS columns name a county it is not in is left out, with its reason
    dropped = pd.read_csv(out / "index/dropped_parcels.csv")
    assert dropped.set_index("parcel_id").loc["ASTRAY", "reason"].startswith("outside the county its FIPS columns")
    assert "ASTRAY" not in parcels.index
    log = (work / "logs/process_county/coast/99005.log").read_text()
    assert "worldcover tile N39W087 is absent" in log


def test_a_missing_local_tile_fails_only_the_counties_that_read_it(tmp_path, demo_state_inputs):
    missing = "T16TDK_20240815_B04.tif"
    wc = str(demo_state_inputs / "worldcover" / "ESA_WorldCover_10m_2021_v200_{tile}_Map.tif")
    state = _state_from_demo(demo_state_inputs, tmp_path / "gaps", wc, s2_missing=missing)
    state["counties"] = str(demo_state_inputs / "counties.gpkg")  # the demo's counties: all in local tile N39W090
    work = tmp_path / "run"
    proc = _run_state(work, "gaps", state, check=False)
    assert proc.returncode != 0 and "MissingInputException" not in proc.stderr
    out = work / "results/states/gaps"
    assert (out / "counties/99001.parquet").exists()  # 99001 does not read 16TDK
    assert not (out / "counties/99003.parquet").exists() and not (out / "counties/99005.parquet").exists()
    assert not (out / "DONE.json").exists()
    log = (work / "logs/convert_tile/gaps/sentinel2/16TDK_20240815_B04.log").read_text()
    assert f"{tmp_path / 'gaps' / missing}: the tile does not exist" in log
    # the tile put in place, the rerun finishes the state
    shutil.copyfile(demo_state_inputs / "sentinel2" / missing, tmp_path / "gaps" / missing)
    _run_state(work, "gaps", state)
    assert json.loads((out / "DONE.json").read_text())["counties"] == ["99001", "99003", "99005"]


def _without_crs(demo, folder):
    parcels = gpd.read_parquet(demo / "parcels.parquet").set_crs(None, allow_override=True)
    parcels.to_file(folder / "parcels.gpkg", driver="GPKG")  # a GeoPackage whose layer has no SRS
    return {"parcels": str(folder / "parcels.gpkg")}


def _fia_without_column(demo, folder):
    tree = pd.read_csv(demo / "fia" / "TREE.csv", dtype=str).drop(columns="DRYBIO_AG")
    tree.to_csv(folder / "TREE.csv", index=False)
    return {"fia_tree": str(folder / "TREE.csv")}


def _parcels_of_another_state(demo, folder):
    parcels = gpd.read_parquet(folder / "parcels.parquet")
    parcels["county_fips"] = "18" + parcels["county_fips"].str[2:]  # Indiana's codes on this state's parcels
    parcels.to_parquet(folder / "parcels.parquet")
    return {}


@pytest.mark.parametrize(
    "change, message",
    [
        (_without_crs, r"parcels.gpkg: the parcels have no CRS, so where they lie is unknown; assign the CRS"),
        (_fia_without_column, r"TREE.csv: the FIADB TREE table lacks columns \['DRYBIO_AG'\]; download the state's"),
        (_parcels_of_another_state, r"parcels.parquet: no parcel's FIPS columns .* place it in one of the state's"),
    ],
)
def test_inputs_that_cannot_be_right_stop_the_state_naming_the_file_and_the_fix(
    tmp_path, demo_state_inputs, change, message
):
    state = _state_from_demo(
        demo_state_inputs, tmp_path / "bad", str(demo_state_inputs / "worldcover" / "x_{tile}.tif")
    )
    state.update(change(demo_state_inputs, tmp_path / "bad"))
    work = tmp_path / "run"
    proc = _run_state(work, "bad", state, check=False)
    assert proc.returncode != 0
    assert re.search(message, (work / "logs/index_state/bad.log").read_text())
    assert re.search(message, proc.stderr)  # the run's summary says it too
    assert not (work / "results/states/bad/index").exists() and not list(work.glob("logs/convert_tile/**/*.log"))
