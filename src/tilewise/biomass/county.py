"""One county: per-parcel land cover, vegetation indices, crop and forest biomass.

Every raster is read only where parcels touch it (blocks.py), in its own CRS, and summarised with
exact coverage fractions (zonal.py). The model is documented in docs/biomass-model.md.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import CRS
from rasterio.warp import transform_bounds

from tilewise.biomass import crop_tables, crops, indices, state_index
from tilewise.biomass.areas import reconcile
from tilewise.biomass.blocks import Preloaded, read_groups, touched_blocks
from tilewise.biomass.forest import forest_columns
from tilewise.biomass.grids import geodesic_row_areas_m2, s2_footprint, wrap_lon
from tilewise.biomass.quality import area_fraction, pixels_to_acres
from tilewise.biomass.raster_checks import (
    cell_area_factor_m2,
    check_cell_areas,
    check_class_raster,
    check_s2_band,
    check_s2_grids,
)
from tilewise.biomass.tiles import tile_size_bytes
from tilewise.biomass.zonal import class_areas, mean_std_count
from tilewise.shared.errors import TilewiseError
from tilewise.shared.geometry import to_crs, transformer

log = logging.getLogger(__name__)
M2_PER_ACRE = crops.M2_PER_ACRE
GROUP_PX = 4096  # parcels are processed in windows of about this many pixels a side
MIN_PARCELS_PER_WORKER = 2000  # below this a second process costs more than it saves
WORLDCOVER_CLASSES = {
    10: "tree_cover",
    20: "shrubland",
    30: "grassland",
    40: "cropland",
    50: "built_up",
    60: "bare_sparse",
    70: "snow_ice",
    80: "permanent_water",
    90: "herbaceous_wetland",
    95: "mangroves",
    100: "moss_lichen",
}
FOREST_CLASSES = (10, 95)
S2_BANDS = (*indices.INDEX_BANDS, "SCL")  # the bands a county reads of each Sentinel-2 tile
S2_COUNTS = ("s2_data_pixels_count", "s2_clear_pixels_count", "s2_nonphysical_pixels_count")


@dataclass
class S2Tile:
    tile: str
    date: str
    boa_add_offset_dn: dict[str, float]  # per band
    bands: dict[str, Path]  # B02, B03, B04, B08 and SCL


@dataclass
class CountyInputs:
    parcels: gpd.GeoDataFrame  # parcel_id, geometry (any CRS)
    worldcover: list[Path]
    cdl: list[Path]
    s2: list[S2Tile]
    fia_plots: pd.DataFrame  # from forest.plot_densities
    yields: crops.Yields
    fia_radius_km: float
    idw_power: float
    preloaded: Preloaded | None = None  # blocks several parts of the county touch, read before they start
    laea: CRS | None = None  # the county's equal-area projection, the same in every part (else its parcels')

    @classmethod
    def from_index(
        cls, index_dir: Path, county: str, tiles: list[dict], fia_radius_km: float, idw_power: float
    ) -> CountyInputs:
        """A county's inputs: its parcels and the FIA plots from the state index, and `tiles` (rows of
        the index's tile table with `path`, the converted tile to read)."""
        s2: dict[tuple[str, str], S2Tile] = {}
        for t in (t for t in tiles if t["product"] == "sentinel2"):
            tile = s2.setdefault((t["tile"], t["date"]), S2Tile(t["tile"], t["date"], {}, {}))
            tile.bands[t["band"]] = Path(t["path"])
            tile.boa_add_offset_dn[t["band"]] = float(t["boa_add_offset_dn"])
        return cls(
            parcels=state_index.read_county_parcels(index_dir, county),
            worldcover=[Path(t["path"]) for t in tiles if t["product"] == "worldcover"],
            cdl=[Path(t["path"]) for t in tiles if t["product"] == "cdl"],
            s2=[s2[k] for k in sorted(s2)],
            fia_plots=state_index.read_fia_plots(index_dir),
            yields=state_index.read_yields(index_dir),
            fia_radius_km=fia_radius_km,
            idw_power=idw_power,
        )


@dataclass
class ReadStats:
    bytes_read: int = 0
    files: set = field(default_factory=set)
    block_reads: Counter = field(default_factory=Counter)  # (file name, band, block) -> reads from the file

    def add(self, path: Path, mosaic, band: int = 1) -> None:
        self.bytes_read += mosaic.bytes_read
        self.files.add(Path(path))
        self.block_reads.update((str(path), band, block) for block in mosaic.blocks_read)

    def merge(self, other: ReadStats) -> None:
        self.bytes_read += other.bytes_read
        self.files |= other.files
        self.block_reads.update(other.block_reads)


def _laea(geoms: gpd.GeoSeries) -> CRS:
    """A Lambert azimuthal equal-area projection centred on the parcels: areas exact, distances close.
    The centre is the mean direction of the parcels' centres on the sphere: a box's centre in lon/lat
    lies on the far side of the Earth for a county across ±180° (Aleutians West), distorting distances."""
    points = shapely.get_coordinates(to_crs(shapely.centroid(geoms.values), geoms.crs, 4326))
    lon, lat = np.radians(points[:, 0]), np.radians(points[:, 1])
    x, y, z = (np.mean(np.cos(lat) * np.cos(lon)), np.mean(np.cos(lat) * np.sin(lon)), np.mean(np.sin(lat)))
    lon, lat = np.degrees(np.arctan2(y, x)), np.degrees(np.arctan2(z, np.hypot(x, y)))
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs")


def _cell_areas(ds, mosaic) -> np.ndarray:
    """m² of ground per cell: geodesic in lon/lat, else |a·e| in m² (check_cell_areas refused projections
    that do not keep areas)."""
    if ds.crs.is_geographic:
        return geodesic_row_areas_m2(mosaic.bounds[3], mosaic.transform.e, mosaic.transform.a, mosaic.array.shape[0])[
            :, None
        ]
    return np.array(abs(mosaic.transform.a * mosaic.transform.e) * cell_area_factor_m2(ds.crs))


def check_files(inp: CountyInputs) -> None:
    """Refuse, before any parcel is read, a raster whose cells would be measured or combined wrong:
    CDL and WorldCover in a CRS that does not keep areas, a Sentinel-2 band outside its tile's UTM CRS
    or off the grid of the tile's B04 (raster_checks)."""
    for path in [*inp.cdl, *inp.worldcover]:
        with rasterio.open(path) as ds:
            check_class_raster(ds, str(path))
            check_cell_areas(ds, str(path))
    for tile in inp.s2:
        with ExitStack() as stack:
            files = {band: stack.enter_context(rasterio.open(path)) for band, path in tile.bands.items()}
            for band, ds in files.items():
                check_s2_band(ds, tile.tile, band, str(tile.bands[band]))
            if "B04" in files:
                for band, ds in files.items():
                    check_s2_grids(
                        tile.tile, tile.date, band, ds, str(tile.bands[band]), files["B04"], str(tile.bands["B04"])
                    )


def _groups(boxes: np.ndarray, transform, group_px: int) -> list[np.ndarray]:
    """Parcel index arrays grouped by the processing window their box centre falls in."""
    inv = ~transform
    c, r = inv * ((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2)
    key = np.floor(r / group_px).astype(np.int64) * 1_000_003 + np.floor(c / group_px).astype(np.int64)
    order = np.argsort(key, kind="stable")
    splits = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(order, splits)


def _class_areas_over(
    paths,
    geoms: gpd.GeoSeries,
    stats: ReadStats,
    bytes_per_parcel: np.ndarray,
    known,
    on_mosaic=None,
    preloaded: Preloaded | None = None,
    parcel_m2: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Long table (row, cls, m2) summed over several categorical rasters of one product, the valid area
    per row, and per row the sum of the extra m² layer `on_mosaic(mosaic, ds, idx)` returns (None:
    nothing). A class not in `known` is an error naming the file: it has no rule.

    Every place is counted once: the files are taken in their order (the index's) and a file's cell
    whose centre lies on valid data of an earlier file is nodata here (_counted_before) — files that
    overlap (a national CDL and a state clip of it) are mosaicked, the first with data at a place wins.
    Where that happened, a parcel's valid area is capped at `parcel_m2` (its classes and extra scaled
    alike): on two different grids the seam can count up to half a cell twice."""
    parts, valid, extra = [], np.zeros(len(geoms)), np.zeros(len(geoms))
    earlier_of = _earlier_overlapping(paths)
    kept: dict[int, list] = {i: [] for i in {i for earlier in earlier_of for i in earlier}}
    masked_rows = np.zeros(len(geoms), bool)
    for k, path in enumerate(paths):
        earlier = [part for i in earlier_of[k] for part in kept[i]]
        covered_cells = differing_cells = 0
        with rasterio.open(path) as ds:
            local = parcels_in_raster_crs(geoms, ds)
            boxes = shapely.bounds(local)
            nodata = ds.nodata if ds.nodata is not None else 0
            groups = _groups(boxes, ds.transform, GROUP_PX)
            for idx, mosaic in zip(groups, read_groups(ds, 1, boxes, groups, nodata, preloaded), strict=True):
                if mosaic is None:
                    continue
                stats.add(path, mosaic)
                bytes_per_parcel[idx] += mosaic.bytes_per_box
                if k in kept:
                    kept[k].append((ds.crs, mosaic.transform, mosaic.array, nodata))
                if earlier:
                    covered, differing = _counted_before(earlier, ds.crs, mosaic, nodata)
                    if covered.any():
                        array = np.where(covered, mosaic.array.dtype.type(nodata), mosaic.array)
                        mosaic = replace(mosaic, array=array)
                        masked_rows[idx] = True
                        covered_cells += int(covered.sum())
                        differing_cells += differing
                cells = _cell_areas(ds, mosaic)
                layer = on_mosaic(mosaic, ds, idx, cells) if on_mosaic else None
                df = class_areas(
                    shapely.to_wkb(local[idx]), ds.crs.to_wkt(), mosaic.array, cells, mosaic.bounds, nodata, layer
                )
                valid[idx] += df["valid_m2"].to_numpy()
                if layer is not None:
                    extra[idx] += df["extra_m2"].to_numpy()
                long = pd.DataFrame({"row": idx, "cls": df["classes"].to_numpy(), "m2": df["area_m2"].to_numpy()})
                parts.append(long.explode(["cls", "m2"]).dropna())
                unknown = {int(c) for c in parts[-1]["cls"]} - {int(c) for c in known}
                if unknown:
                    raise TilewiseError(
                        f"{path}: class values {sorted(unknown)} inside parcels are not in the product's "
                        "legend (docs/biomass-model.md): is this the right file?"
                    )
        if covered_cells:
            _log_overlap(path, [paths[i] for i in earlier_of[k]], covered_cells, differing_cells)
    table = pd.concat(parts) if parts else pd.DataFrame({"row": [], "cls": [], "m2": []})
    table = (
        table.astype({"row": np.int64, "cls": np.int64, "m2": np.float64}).groupby(["row", "cls"], as_index=False).sum()
    )
    if parcel_m2 is not None and masked_rows.any():
        over = masked_rows & (valid > parcel_m2)
        if over.any():
            factor = np.ones(len(geoms))
            factor[over] = parcel_m2[over] / valid[over]
            table["m2"] *= factor[table["row"].to_numpy()]
            valid, extra = valid * factor, extra * factor
    return table, valid, extra


def parcels_in_raster_crs(geoms: gpd.GeoSeries, ds) -> np.ndarray:
    """The parcels in the raster's CRS; into longitudes with every vertex within 180° of the raster's centre:
    a parcel across ±180° (Aleutians West), reprojected vertex by vertex, was a band around the globe that
    covered the whole width of the lon/lat tiles it touched (WorldCover's E177 and W180, a CDL in lon/lat)."""
    local = to_crs(geoms.values, geoms.crs, ds.crs)
    if not ds.crs.is_geographic:
        return local
    centre = (ds.bounds.left + ds.bounds.right) / 2
    return shapely.transform(local, lambda xy: np.column_stack([wrap_lon(xy[:, 0] - centre) + centre, xy[:, 1]]))


def _earlier_overlapping(paths) -> list[list[int]]:
    """Per file, the earlier files (positions in `paths`) whose extent reaches under some of its cell
    centres: only those are looked up (tiles side by side, WorldCover's, are not)."""
    extents = []
    for path in paths:
        with rasterio.open(path) as ds:
            extents.append((ds.crs, tuple(ds.bounds), abs(ds.transform.a), abs(ds.transform.e)))
    out = []
    for k, (crs, (x0, y0, x1, y1), px, py) in enumerate(extents):
        mine = []
        for i in range(k):
            other, bounds = extents[i][0], extents[i][1]
            if other != crs:
                bounds = transform_bounds(other, crs, *bounds, densify_pts=21)
            # no centre of this file's cells lies within a quarter cell of its edge
            if min(x1, bounds[2]) - max(x0, bounds[0]) > px / 4 and min(y1, bounds[3]) - max(y0, bounds[1]) > py / 4:
                mine.append(i)
        out.append(mine)
    return out


def _counted_before(earlier: list[tuple], crs, mosaic, nodata) -> tuple[np.ndarray, int]:
    """Which valid cells of `mosaic` have their centre on a valid cell of an earlier file's mosaics
    (`earlier`: crs, transform, class array, nodata of each), and how many of those hold another class
    there. On one grid (a clip of the other, tiles of one product) that is exact."""
    array, t = mosaic.array, mosaic.transform
    h, w = array.shape
    valid = array != nodata
    covered, differs = np.zeros((h, w), bool), np.zeros((h, w), bool)
    for part_crs, pt, values, part_nodata in earlier:
        if part_crs == crs and t.b == t.d == pt.b == pt.d == 0:  # north-up grids in one CRS: rows and columns
            cols = np.floor((t.c + t.a * (np.arange(w) + 0.5) - pt.c) / pt.a).astype(np.int64)
            rows = np.floor((t.f + t.e * (np.arange(h) + 0.5) - pt.f) / pt.e).astype(np.int64)
            ci = np.flatnonzero((cols >= 0) & (cols < values.shape[1]))
            ri = np.flatnonzero((rows >= 0) & (rows < values.shape[0]))
            if not len(ci) or not len(ri):
                continue
            there, at = values[np.ix_(rows[ri], cols[ci])], np.ix_(ri, ci)
            hit = valid[at] & (there != part_nodata)
            covered[at] |= hit
            differs[at] |= hit & (there != array[at])
            continue
        r, c = np.nonzero(valid & ~covered)
        x, y = t * (c + 0.5, r + 0.5)
        px, py = transformer(crs, part_crs).transform(np.asarray(x), np.asarray(y))
        pc, pr = ~pt * (px, py)
        pc, pr = np.floor(pc).astype(np.int64), np.floor(pr).astype(np.int64)
        inside = (pr >= 0) & (pr < values.shape[0]) & (pc >= 0) & (pc < values.shape[1])
        r, c, there = r[inside], c[inside], values[pr[inside], pc[inside]]
        hit = there != part_nodata
        covered[r[hit], c[hit]] = True
        differs[r[hit], c[hit]] |= there[hit] != array[r[hit], c[hit]]
    return covered, int(differs.sum())


def _log_overlap(path, earlier: list, covered: int, differing: int) -> None:
    names = ", ".join(str(p) for p in earlier)
    message = "%s overlaps %s: %d of its cells read have data there already and are not counted again (the "
    message += "first file with data at a place counts it, docs/biomass-model.md §1)"
    if differing:
        log.warning(
            message + "; %d of them have another class than the earlier file's: are they one product and year?",
            path,
            names,
            covered,
            differing,
        )
    else:
        log.info(message, path, names, covered)


class CropAreaLookup:
    """The CDL crop-area pixels read for a county, to look up under other rasters' cells (nearest)."""

    def __init__(self):
        self.parts: list[tuple] = []  # (crs, inverse transform, bool array)
        self.crop_codes = crop_tables.legend().index[crop_tables.legend()["is_crop_area"]].to_numpy()

    def keep(self, mosaic, ds, idx, cells) -> None:
        self.parts.append((ds.crs, ~mosaic.transform, _member(mosaic.array, self.crop_codes)))

    def at(self, x: np.ndarray, y: np.ndarray, crs) -> np.ndarray:
        """Whether the CDL pixel under each point (in `crs`) is crop area (False where none was read)."""
        out = np.zeros(len(x), bool)
        for part_crs, inverse, mask in self.parts:
            px, py = transformer(crs, part_crs).transform(x, y)
            c, r = inverse * (px, py)
            c, r = np.floor(c).astype(np.int64), np.floor(r).astype(np.int64)
            inside = (r >= 0) & (r < mask.shape[0]) & (c >= 0) & (c < mask.shape[1])
            out[inside] |= mask[r[inside], c[inside]]
        return out


def _member(array: np.ndarray, codes) -> np.ndarray:
    """np.isin for class rasters: a lookup table for 8- and 16-bit unsigned codes (several times faster)."""
    if array.dtype.kind == "u" and array.dtype.itemsize <= 2:
        table = np.zeros(2 ** (8 * array.dtype.itemsize), bool)
        table[[c for c in codes if 0 <= c < len(table)]] = True
        return table[array]
    return np.isin(array, codes)


def _forest_on_crop(lookup: CropAreaLookup, has_crop: np.ndarray):
    """An `on_mosaic` for WorldCover: m² of each forest cell (tree cover, mangroves) whose CDL pixel is
    crop area — only where some parcel of the group has crop area at all."""

    def layer(mosaic, ds, idx, cells):
        if not has_crop[idx].any():
            return None
        r, c = np.nonzero(_member(mosaic.array, FOREST_CLASSES))
        x, y = mosaic.transform * (c + 0.5, r + 0.5)
        hit = lookup.at(np.asarray(x), np.asarray(y), ds.crs)
        out = np.zeros(mosaic.array.shape, np.float32)
        out[r[hit], c[hit]] = np.broadcast_to(cells, mosaic.array.shape)[r[hit], c[hit]]
        return out

    return layer


def _s2_candidates(geoms: gpd.GeoSeries, tiles: list[S2Tile]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per parcel and tile (n × k): whether the tile is a candidate, its rank by place (lower first) and
    whether it contains the whole parcel. The candidates are the tiles that touch the parcel (one that
    contains it may have no data there: outside the swath); by place, a tile that contains the whole
    parcel first, then the parcel's own UTM zone, then the nearest tile centre (the parcel sits deepest
    inside it)."""
    # the centre taken in the parcels' own CRS: in lon/lat, a parcel across ±180° has its centre near 0°
    lon = shapely.get_x(to_crs(shapely.centroid(geoms.values), geoms.crs, 4326))
    own_zone = np.floor((lon + 180) / 6).astype(int) + 1
    shape = (len(geoms), len(tiles))
    inside, touches, place = np.zeros(shape, bool), np.zeros(shape, bool), np.full(shape, np.inf)
    for k, t in enumerate(tiles):
        epsg, bounds = s2_footprint(t.tile)
        local = to_crs(geoms.values, geoms.crs, epsg)
        box = shapely.box(*bounds)
        inside[:, k] = shapely.contains(box, local)
        touches[:, k] = shapely.intersects(box, local)
        centre = np.array([(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2])
        dist = np.hypot(*(shapely.get_coordinates(shapely.centroid(local)) - centre).T)
        place[:, k] = np.where(inside[:, k], 0.0, 1e8) + np.where(own_zone == epsg % 100, 0.0, 1e7) + dist
    return touches, place, inside


def _choose_s2_tile(candidate: np.ndarray, place: np.ndarray, clear: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Index of the tile each parcel uses (−1: none): among its candidates the largest clear share of the
    parcel, then the largest share with data, then by place — a tile without data over the parcel
    (outside the swath) never wins over one with data. `clear`, `data`: shares of the parcel's pixels."""
    n, k = candidate.shape
    best = np.full(n, -1)
    key = np.full((n, 3), np.inf)  # (−clear, −data, place) of the best so far, smallest wins
    for j in range(k):
        mine = np.column_stack([-np.round(clear[:, j], 6), -np.round(data[:, j], 6), place[:, j]])
        # lexicographic "mine < key" row by row
        less = np.zeros(n, bool)
        equal = np.ones(n, bool)
        for c in range(3):
            less |= equal & (mine[:, c] < key[:, c])
            equal &= mine[:, c] == key[:, c]
        better = candidate[:, j] & less
        best[better], key[better] = j, mine[better]
    return best


def _s2_boxes(geoms: gpd.GeoSeries, tile: S2Tile, rows: np.ndarray):
    """The parcels `rows` in the tile's CRS, their boxes, the CRS's WKT and the band grid's transform."""
    with rasterio.open(tile.bands["B04"]) as ref:
        local = to_crs(geoms.values[rows], geoms.crs, ref.crs)
        return local, shapely.bounds(local), ref.crs.to_wkt(), ref.transform


def _s2_stats(
    geoms: gpd.GeoSeries,
    tiles: list[S2Tile],
    stats: ReadStats,
    bytes_per_parcel: np.ndarray,
    preloaded: Preloaded | None = None,
) -> pd.DataFrame:
    """Index statistics of every parcel from the one tile it uses (_choose_s2_tile); a parcel in the
    overlap of several tiles is read in each, to see which has data there."""
    n = len(geoms)
    out = pd.DataFrame(index=range(n), columns=["s2_tile", "s2_date"], dtype=object)
    for column in (*S2_COUNTS, "s2_evi_outside_range_pixels_count"):
        out[column] = 0.0
    out["s2_pixel_area_m2"] = np.nan
    for name in indices.INDEX_NAMES:  # a county's columns never depend on its data: NaN where no tile was read
        out[f"{name}_mean_unitless"] = out[f"{name}_std_unitless"] = np.nan
    candidate, place, inside = _s2_candidates(geoms, tiles)
    per_tile = [
        _s2_tile_stats(geoms, tile, np.flatnonzero(candidate[:, k]), stats, bytes_per_parcel, preloaded)
        for k, tile in enumerate(tiles)
    ]
    # compared as fractions of the parcel: tiles of two UTM zones have pixels of different ground area
    # (the zone farther from its meridian has smaller ones, so more of them over one parcel)
    clear, data = np.zeros(candidate.shape), np.zeros(candidate.shape)
    for k, df in enumerate(per_tile):
        size = _parcel_pixels(geoms, tiles[k], df.index.to_numpy())
        for counts, column in ((clear, "s2_clear_pixels_count"), (data, "s2_data_pixels_count")):
            got = df[column].to_numpy(float) if len(df) else np.zeros(0)
            counts[df.index, k] = np.divide(got, size, out=np.zeros_like(got), where=size > 0)
    for tile, df in zip(tiles, per_tile, strict=True):
        _refuse_offset_removed(tile, df)
    choice = _choose_s2_tile(candidate, place, clear, data)
    for k, df in enumerate(per_tile):
        rows = np.flatnonzero(choice == k)
        for column in df.columns:
            out.loc[rows, column] = df.loc[rows, column].to_numpy()
    used = np.flatnonzero(choice >= 0)
    out["s2_tile_contains_parcel"] = False
    out.loc[used, "s2_tile_contains_parcel"] = inside[used, choice[used]]
    return out


# Real L2A of baseline 04.00 on has few scene-clear pixels below its −1000 DN offset (tile 29UNU: 0.6 % of
# vegetation, 4 % of bare soil in red); DN whose offset was already removed put most of them there.
OFFSET_REMOVED_SHARE = 0.5
OFFSET_JUDGED_FROM_PX = 1000  # scene-clear pixels over the county's parcels (10 ha of 10 m pixels)


def _refuse_offset_removed(tile: S2Tile, df: pd.DataFrame) -> None:
    """Refuse a tile whose scene-clear pixels (SCL 4–6) over the parcels are mostly not physical once its
    BOA offset is added: its DN already lack the offset (a harmonized collection such as Earth Engine's
    S2_SR_HARMONIZED, a product before baseline 04.00 catalogued as a later one), and the parcels read as
    cloudy (clear fraction 0, indices NaN)."""
    if not len(df) or not any(tile.boa_add_offset_dn[b] for b in indices.INDEX_BANDS):
        return
    bad, good = df["s2_nonphysical_pixels_count"].sum(), df["s2_clear_pixels_count"].sum()
    if bad + good >= OFFSET_JUDGED_FROM_PX and bad >= OFFSET_REMOVED_SHARE * (bad + good):
        offset, share = tile.boa_add_offset_dn["B04"], bad / (bad + good)
        raise TilewiseError(
            f"{tile.bands['B04']}: Sentinel-2 tile {tile.tile} {tile.date}: {share:.0%} of the scene-clear pixels "
            f"(SCL 4–6) over the county's parcels have a band at reflectance ≤ 0 or above 1 once the BOA offset "
            f"({offset:g} DN) is added: the DN already lack the offset (a harmonized collection such as Earth Engine's "
            "S2_SR_HARMONIZED, or a product before baseline 04.00 catalogued as a later one); give these files "
            "boa_add_offset 0 in the catalog, or the L2A product's own bands"
        )


def _parcel_pixels(geoms: gpd.GeoSeries, tile: S2Tile, rows: np.ndarray) -> np.ndarray:
    """How many of the tile's pixels each parcel `rows` covers (its area in the tile's CRS over a pixel's)."""
    if not len(rows):
        return np.zeros(0)
    local, _, _, transform = _s2_boxes(geoms, tile, rows)
    return shapely.area(local) / abs(transform.a * transform.e)


def _s2_tile_stats(
    geoms: gpd.GeoSeries,
    tile: S2Tile,
    rows: np.ndarray,
    stats: ReadStats,
    bytes_per_parcel: np.ndarray,
    preloaded: Preloaded | None,
) -> pd.DataFrame:
    """The S2 columns of the parcels `rows` from one tile, indexed by row."""
    out = pd.DataFrame(index=rows)
    if not len(rows):
        return out
    if "SCL" not in tile.bands:
        raise TilewiseError(
            f"Sentinel-2 tile {tile.tile} {tile.date}: no SCL band in the catalog, so clouds cannot be told "
            "from the ground; add the tile's SCL (scene classification) file"
        )
    out["s2_tile"], out["s2_date"] = tile.tile, tile.date
    for column in (*S2_COUNTS, "s2_evi_outside_range_pixels_count"):
        out[column] = 0.0  # parcels no file of the tile reaches have no data from it
    local, boxes, wkt, transform = _s2_boxes(geoms, tile, rows)
    out["s2_pixel_area_m2"] = abs(transform.a * transform.e)
    groups = _groups(boxes, transform, GROUP_PX)
    with ExitStack() as stack:
        files = {band: stack.enter_context(rasterio.open(tile.bands[band])) for band in S2_BANDS}
        # every band's blocks for one group at a time, each block read once per county
        readers = [read_groups(files[band], 1, boxes, groups, 0, preloaded) for band in S2_BANDS]
        for idx, *mosaics in zip(groups, *readers, strict=True):
            read = dict(zip(S2_BANDS, mosaics, strict=True))
            for band, mosaic in read.items():
                if mosaic is not None:
                    stats.add(tile.bands[band], mosaic)
                    bytes_per_parcel[rows[idx]] += mosaic.bytes_per_box
            if any(mosaic is None for mosaic in read.values()):
                continue  # the SCL (an extent of its own) or the bands do not reach these parcels: no data
            df = _s2_group(tile, read, local[idx], wkt, {band: ds.nodata for band, ds in files.items()})
            at = rows[idx]
            for name in df.attrs["layers"]:
                out.loc[at, f"{name}_mean_unitless"] = df[f"{name}_mean"].to_numpy()
                out.loc[at, f"{name}_std_unitless"] = df[f"{name}_std"].to_numpy()
            # NDVI is defined on every clear pixel (0 < red, NIR ≤ 1): its count is the clear count
            for column, values in zip(S2_COUNTS, (df["data_count"], df["ndvi_count"], df["data_sum"]), strict=True):
                out.loc[at, column] = values.to_numpy()
            out.loc[at, "s2_evi_outside_range_pixels_count"] = (df["ndvi_count"] - df["evi_count"]).to_numpy()
    return out


def _s2_group(tile: S2Tile, read: dict, local, wkt: str, nodata: dict | None = None) -> pd.DataFrame:
    """Index statistics of one group of parcels from its mosaics of every band (SCL included). A cell
    equal to its file's declared nodata (`nodata`: band → value) is no data, as L2A's own 0 is (a fill of
    65535 was data that is not physical, an SCL fill of 255 data that is not clear); an SCL value outside
    the L2A legend inside a parcel is an error naming the file: no rule says whether it is clear."""
    mosaic = read[indices.INDEX_BANDS[-1]]
    arrays = {band: _declared_nodata_as_zero(m.array, (nodata or {}).get(band)) for band, m in read.items()}
    bands = {b: indices.reflectance(arrays[b], tile.boa_add_offset_dn[b]) for b in indices.INDEX_BANDS}
    scl = _scl_on_grid(replace(read["SCL"], array=arrays["SCL"]), mosaic)
    outside = scl > indices.SCL_MAX
    data, clear, nonphysical = indices.masks(scl, [bands[b] for b in indices.INDEX_BANDS])
    layers = indices.vegetation_indices(bands["B02"], bands["B03"], bands["B04"], bands["B08"], clear)
    # one tally for two counts: its count is the data pixels, its sum those of them not physical
    tally = {"data": np.where(data, nonphysical.astype(np.float32), np.float32(np.nan))}
    if outside.any():
        tally["scl_outside"] = outside.astype(np.float32)
    df = mean_std_count(shapely.to_wkb(local), wkt, layers, mosaic.bounds, tally)
    if outside.any() and (df["scl_outside_sum"].fillna(0.0) > 0).any():
        values = [int(v) for v in np.unique(scl[outside])]
        shown = f"{values[:10]}"[:-1] + (f", … {len(values)} values]" if len(values) > 10 else "]")
        raise TilewiseError(
            f"{tile.bands['SCL']}: SCL values {shown} inside parcels are "
            f"not Sentinel-2 L2A scene classes (0–11) (tile {tile.tile} {tile.date}): is it the tile's SCL? A "
            "cloud-probability mask (MSK_CLDPRB) is not; a fill value must be the file's declared nodata "
            "(gdal_edit.py -a_nodata VALUE)"
        )
    df = df.fillna({c: 0.0 for c in df.columns if c.endswith(("_count", "_sum"))})
    df.attrs["layers"] = list(layers)
    return df


def _declared_nodata_as_zero(array: np.ndarray, value) -> np.ndarray:
    """`array` with the cells equal to the file's declared nodata `value` set to 0, L2A's no data."""
    if value is None or value == 0 or np.isnan(value):
        return array
    return np.where(array == value, array.dtype.type(0), array)


def _scl_on_grid(scl, mosaic) -> np.ndarray:
    """The scene classification mosaic brought onto the band mosaic's grid (nearest): each band cell takes
    the SCL cell under its centre, 0 (no data) where the SCL mosaic does not reach. The SCL file may cover
    another extent than the bands (on their grid: raster_checks.check_s2_grids), so its mosaic can start
    east or south of theirs."""
    t, st = mosaic.transform, scl.transform
    h, w = mosaic.array.shape
    cols = np.floor((t.c + t.a * (np.arange(w) + 0.5) - st.c) / st.a).astype(np.int64)
    rows = np.floor((t.f + t.e * (np.arange(h) + 0.5) - st.f) / st.e).astype(np.int64)
    ci = np.flatnonzero((cols >= 0) & (cols < scl.array.shape[1]))
    ri = np.flatnonzero((rows >= 0) & (rows < scl.array.shape[0]))
    out = np.zeros((h, w), dtype=scl.array.dtype)
    out[np.ix_(ri, ci)] = scl.array[np.ix_(rows[ri], cols[ci])]
    return out


def process_county(inp: CountyInputs, workers: int = 1) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    """Per-parcel results, per-parcel crop detail and the county's read statistics.

    With several workers the parcels are cut into west-to-east strips, one process each; the blocks
    parcels of two strips touch are read first, here, and handed to both: every block of every
    raster is read from its file once per county (`blocks_read_again_count` says if not)."""
    t0 = time.perf_counter()
    check_files(inp)
    parcels = inp.parcels.reset_index(drop=True)
    if workers > 1 and len(parcels) >= MIN_PARCELS_PER_WORKER * 2:
        order = np.argsort(shapely.get_x(shapely.centroid(parcels.geometry.values)), kind="stable")
        strips = np.array_split(order, workers)
        part_of = np.zeros(len(parcels), np.int64)
        for k, idx in enumerate(strips):
            part_of[idx] = k
        stats, preloaded = _read_shared_blocks(inp, parcels.geometry, part_of)
        # one projection for the county, not one per strip: results do not depend on the process count
        laea = _laea(parcels.geometry)
        parts = [replace(inp, parcels=parcels.iloc[idx], preloaded=preloaded, laea=laea) for idx in strips]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            done = list(pool.map(_process, parts))
        result = gpd.GeoDataFrame(pd.concat([d[0] for d in done]), crs=parcels.crs).sort_index()
        detail = pd.concat([d[1] for d in done], ignore_index=True)
        for d in done:
            stats.merge(d[2])
    else:
        result, detail, stats = _process(inp)
    return (
        result,
        detail,
        {
            "parcels_count": len(result),
            "processing_seconds": time.perf_counter() - t0,
            "read_bytes": stats.bytes_read,  # compressed bytes of the blocks read
            "tile_bytes": sum(tile_size_bytes(p) for p in stats.files),  # the tiles they came from
            "files_read_count": len(stats.files),
            "blocks_read_count": len(stats.block_reads),  # distinct (file, band, block)
            "blocks_read_again_count": sum(stats.block_reads.values()) - len(stats.block_reads),
        },
    )


def _read_shared_blocks(inp: CountyInputs, geoms: gpd.GeoSeries, part_of: np.ndarray) -> tuple[ReadStats, Preloaded]:
    """Read the blocks that parcels of more than one part touch (each raster, each part's boxes as the
    parts compute them), with the number of the county's boxes touching each."""
    stats, preloaded = ReadStats(), Preloaded()

    def load(path: Path, boxes: np.ndarray, parts: np.ndarray) -> None:
        with rasterio.open(path) as ds:
            touched = touched_blocks(ds, 1, boxes)
            shared = {b: members for b, members in touched.items() if len(np.unique(parts[members])) > 1}
            stats.bytes_read += preloaded.load(ds, 1, shared)
        stats.files.add(Path(path))
        stats.block_reads.update((str(path), 1, block) for block in shared)

    for path in [*inp.cdl, *inp.worldcover]:
        with rasterio.open(path) as ds:
            boxes = shapely.bounds(parcels_in_raster_crs(geoms, ds))
        load(path, boxes, part_of)
    candidate, _, _ = _s2_candidates(geoms, inp.s2)
    for k, tile in enumerate(inp.s2):
        rows = np.flatnonzero(candidate[:, k])
        if len(rows) and "SCL" in tile.bands:  # without SCL the parts fail, saying so
            _, boxes, _, _ = _s2_boxes(geoms, tile, rows)
            for band in S2_BANDS:
                load(tile.bands[band], boxes, part_of[rows])
    return stats, preloaded


def _process(inp: CountyInputs) -> tuple[gpd.GeoDataFrame, pd.DataFrame, ReadStats]:
    parcels = inp.parcels
    index = parcels.index
    parcels = parcels.reset_index(drop=True)
    geoms = parcels.geometry
    n = len(parcels)
    stats = ReadStats()
    bytes_per_parcel = np.zeros(n)
    laea = inp.laea or _laea(geoms)
    local = to_crs(geoms.values, geoms.crs, laea)
    area_acres = shapely.area(local) / M2_PER_ACRE
    out = pd.DataFrame({"parcel_id": parcels["parcel_id"].to_numpy(), "parcel_area_acres": area_acres})

    # crops (USDA CDL): crop-area pixels kept to compare with WorldCover's forest below
    parcel_m2 = shapely.area(local)
    lookup = CropAreaLookup()
    cdl, _, _ = _class_areas_over(
        inp.cdl, geoms, stats, bytes_per_parcel, crop_tables.legend().index, lookup.keep, inp.preloaded, parcel_m2
    )
    crops.check_cdl_codes(cdl, inp.cdl)
    detail = crops.crop_detail(cdl, out["parcel_id"].to_numpy(), inp.yields)
    crop = crops.parcel_columns(cdl, detail, n, inp.yields.year)

    # land cover (ESA WorldCover): class areas from geodesic pixel areas, and its forest on CDL crop area
    has_crop = crop["cdl_crop_area_acres"] > 0
    wc, wc_valid, overlap_m2 = _class_areas_over(
        inp.worldcover,
        geoms,
        stats,
        bytes_per_parcel,
        WORLDCOVER_CLASSES,
        _forest_on_crop(lookup, has_crop),
        inp.preloaded,
        parcel_m2,
    )
    out["worldcover_valid_area_acres"] = wc_valid / M2_PER_ACRE
    wide = wc.pivot_table(index="row", columns="cls", values="m2", aggfunc="sum").reindex(range(n)).fillna(0.0)
    for code, name in WORLDCOVER_CLASSES.items():
        out[f"{name}_acres"] = (wide[code].to_numpy() if code in wide.columns else np.zeros(n)) / M2_PER_ACRE
    out["worldcover_forest_acres"] = sum(out[f"{WORLDCOVER_CLASSES[c]}_acres"] for c in FOREST_CLASSES)
    out["cdl_valid_area_acres"] = crop.pop("cdl_valid_area_acres")
    out["cdl_forest_acres"] = crop.pop("cdl_forest_acres")

    # one parcel's acres: CDL wins on its crop area, WorldCover's forest keeps the rest
    areas = reconcile(
        area_acres, out["worldcover_forest_acres"], crop.pop("cdl_crop_area_acres"), overlap_m2 / M2_PER_ACRE
    )
    out = out.assign(**areas)

    # vegetation indices (Sentinel-2 L2A), one tile per parcel
    out = pd.concat([out, _s2_stats(geoms, inp.s2, stats, bytes_per_parcel, inp.preloaded)], axis=1)

    # flows: annual crop production and residue (dry short tons per year)
    out = out.assign(**crop)

    # stock: standing forest biomass (dry short tons), FIA plots, inverse-distance weighted
    centroids = shapely.get_coordinates(shapely.centroid(local))
    forest = forest_columns(
        centroids, laea, inp.fia_plots, out["forest_area_acres"].to_numpy(), inp.fia_radius_km, inp.idw_power
    )
    out = out.assign(**forest)

    # measured quality: how much of the parcel each product saw
    s2_area = out["s2_pixel_area_m2"].astype(float).to_numpy()
    out["s2_clear_fraction"] = area_fraction(pixels_to_acres(out["s2_clear_pixels_count"], s2_area), area_acres)
    out["s2_coverage_fraction"] = area_fraction(pixels_to_acres(out["s2_data_pixels_count"], s2_area), area_acres)
    out["worldcover_coverage_fraction"] = area_fraction(out["worldcover_valid_area_acres"], area_acres)
    out["cdl_coverage_fraction"] = area_fraction(out["cdl_valid_area_acres"], area_acres)
    out["read_bytes"] = bytes_per_parcel  # this parcel's share of the compressed blocks read
    result = gpd.GeoDataFrame(out, geometry=geoms.values, crs=geoms.crs).set_index(index)
    return result, detail.drop(columns="row"), stats
