"""A county reads every block of every raster once, whatever its processing windows and processes
(issue 15.3: the one-county bench read 118 MB from 104 MB of tiles), and the results do not depend on
how it was cut."""

import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

from tilewise.biomass import county as county_module
from tilewise.biomass import crop_tables, crops
from tilewise.biomass.blocks import read_groups, touched_blocks
from tilewise.biomass.county import CountyInputs, S2Tile, process_county
from tilewise.biomass.forest import state_plot_densities
from tilewise_demo import state
from tilewise_demo.layout import CDL_YEAR, NASS_YIELDS, S2_DATE

BOX = (-88.40, 40.02, -88.12, 40.22)  # inside tile 16TCK: about 4,500 parcels
SPEC = state.StateSpec("99", {"99001": ("Test", *BOX)}, 0.005, 5)


def tiled(path, block=64):
    """The raster as an internally tiled GeoTIFF with small blocks: many block and window edges."""
    out = path.with_name(path.stem + "_tiled.tif")
    rasterio.shutil.copy(path, out, driver="GTiff", tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    return out


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    d = tmp_path_factory.mktemp("county")
    (d / "fia").mkdir()
    (d / NASS_YIELDS).parent.mkdir(parents=True)
    rows = state.sentinel2(d, ("16TCK",), BOX)
    bands = {r["band"]: tiled(d / r["href"]) for r in rows}
    with rasterio.open(bands["SCL"]) as ds:  # SCL at twice the bands' pixel, as Sentinel-2's 20 m
        scl, t = ds.read(1)[::2, ::2], ds.transform
    grid = from_origin(t.c, t.f, 2 * t.a, 2 * t.a)
    profile = dict(driver="GTiff", width=scl.shape[1], height=scl.shape[0], count=1, dtype=scl.dtype, crs=ds.crs)
    with rasterio.open(d / "scl20.tif", "w", transform=grid, **profile) as out:
        out.write(scl, 1)
    bands["SCL"] = tiled(d / "scl20.tif", 32)
    state.worldcover(d, BOX)
    state.cdl(d, (BOX[0] - 0.05, BOX[1] - 0.05, BOX[2] + 0.05, BOX[3] + 0.05))
    state.fia(d, SPEC)
    state.yields(d)
    plots, _, _ = state_plot_densities(
        *(d / "fia" / f"{t}.csv" for t in ("PLOT", "COND", "TREE")), "exclude_plot", SPEC.fips
    )
    files = [str(d / NASS_YIELDS), str(crop_tables.NATIONAL_YIELDS)]
    yields = crops.Yields(CDL_YEAR, crops.yields_table(*files, "99", CDL_YEAR), files)
    s2 = S2Tile("16TCK", S2_DATE, dict.fromkeys(bands, -1000.0), bands)
    return CountyInputs(
        state.parcel_layer(SPEC), [tiled(d / state.WORLDCOVER)], [tiled(d / state.CDL)], [s2], plots, yields, 15, 2
    )


def run(inputs, monkeypatch, group_px: int, workers: int):
    monkeypatch.setattr(county_module, "GROUP_PX", group_px)
    return process_county(inputs, workers=workers)


def assert_same_results(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> None:
    """Equal column by column: exactly, but floats to `rtol` (and 1e-6 absolute)."""
    for column in a.columns:
        x, y = a[column], b[column]
        if column == "geometry" or not pd.api.types.is_float_dtype(x):
            assert x.equals(y), column
        else:
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=rtol, atol=1e-6, err_msg=column)


def test_every_block_is_read_once_across_windows_and_processes(county, monkeypatch):
    assert len(county.parcels) >= 2 * county_module.MIN_PARCELS_PER_WORKER  # two processes do run
    alone, _, once = run(county, monkeypatch, 1_000_000, 1)  # one window, one process: nothing to share
    whole, whole_crops, whole_stats = run(county, monkeypatch, 1_000_000, 2)  # two strips
    cut, cut_crops, cut_stats = run(county, monkeypatch, 100, 2)  # two strips of windows of 100 px
    for stats in (once, whole_stats, cut_stats):  # the same blocks, those the parcels touch, each once
        assert stats["blocks_read_again_count"] == 0
        assert stats["blocks_read_count"] == once["blocks_read_count"] > 300
        assert stats["read_bytes"] == once["read_bytes"] <= once["tile_bytes"]
    # every block's bytes go to its parcels once
    assert cut["read_bytes"].sum() == pytest.approx(cut_stats["read_bytes"], rel=1e-9)
    assert whole["read_bytes"].sum() == pytest.approx(whole_stats["read_bytes"], rel=1e-9)
    # the same results; a float may differ in float32's last bits: WorldCover cell areas are float32
    # per row of the window, and a window that starts elsewhere rounds them differently
    assert whole.index.equals(cut.index)
    assert_same_results(whole, cut, rtol=1e-6)
    # one process or two: the same results (one equal-area projection for the county, not one per strip);
    # float32 window rounding only (~1e-8): one projection per strip made the FIA columns differ by 1e-6
    assert_same_results(alone, whole, rtol=1e-7)
    key = ["parcel_id", "cdl_code", "component"]
    pd.testing.assert_frame_equal(
        whole_crops.sort_values(key).reset_index(drop=True),
        cut_crops.sort_values(key).reset_index(drop=True),
        rtol=1e-6,
    )


def test_touched_blocks_are_the_blocks_each_box_overlaps(county):
    rng = np.random.default_rng(3)
    with rasterio.open(county.s2[0].bands["B04"]) as ds:
        left, bottom, right, top = ds.bounds
        x = rng.uniform(left - 9000, right, 300)  # some boxes wholly outside
        y = rng.uniform(bottom - 500, top, 300)
        boxes = np.column_stack([x, y, x + rng.uniform(0, 4000, 300), y + rng.uniform(0, 4000, 300)])
        got = {b: sorted(m.tolist()) for b, m in touched_blocks(ds, 1, boxes).items()}
        want: dict = {}
        for i, (x0, y0, x1, y1) in enumerate(boxes):  # by hand: the window of each box, its blocks
            win = rasterio.windows.from_bounds(x0, y0, x1, y1, ds.transform)
            c0, r0 = max(int(np.floor(win.col_off)), 0), max(int(np.floor(win.row_off)), 0)
            c1 = min(int(np.ceil(win.col_off + win.width)), ds.width)
            r1 = min(int(np.ceil(win.row_off + win.height)), ds.height)
            for br in range(r0 // 64, (r1 - 1) // 64 + 1 if r1 > r0 else 0):
                for bc in range(c0 // 64, (c1 - 1) // 64 + 1 if c1 > c0 else 0):
                    want.setdefault((br, bc), []).append(i)
        assert got == want
        assert touched_blocks(ds, 1, boxes - [1e6, 0, 1e6, 0]) == {}  # all far outside: none


def test_a_block_two_windows_share_is_read_once_and_kept_only_until_the_second(county):
    with rasterio.open(county.s2[0].bands["B04"]) as ds:
        x, y = ds.transform * (64, 64)  # the corner of four blocks
        boxes = np.array([[x - 50, y + 10, x - 10, y + 50], [x - 30, y - 30, x + 30, y + 30]])  # NW, centre
        first, second = read_groups(ds, 1, boxes, [np.array([0]), np.array([1])], 0)
        assert first.blocks_read == [(0, 0)]
        assert sorted(second.blocks_read) == [(0, 1), (1, 0), (1, 1)]  # (0, 0) came from the first
        whole = ds.read(1, window=rasterio.windows.Window(0, 0, 128, 128))
        assert np.array_equal(second.array, whole)
        # block (0, 0)'s bytes are split between both boxes, each box paying once
        assert first.bytes_per_box.sum() + second.bytes_per_box.sum() == pytest.approx(
            first.bytes_read + second.bytes_read
        )
