"""Sentinel-2 L2A from a STAC API: per MGRS tile, the clearest item in a time window.

Both big public catalogues work; their items differ:

==========================  ==============================  ======================================
                            Planetary Computer              Earth Search (v1, sentinel-2-l2a)
==========================  ==============================  ======================================
tile                        ``s2:mgrs_tile`` = "29UNU"      ``grid:code`` = "MGRS-29UNU" (and
                                                            ``mgrs:utm_zone/latitude_band/grid_square``)
band assets                 B02 B03 B04 B08 SCL             blue green red nir scl
BOA offset in the pixels    yes from baseline 04.00         removed where
                                                            ``earthsearch:boa_offset_applied``
==========================  ==============================  ======================================

The search uses what the server's /conformance advertises: a CQL2 filter (one request per tile:
``eo:cloud_cover <= max AND (s2:mgrs_tile = T OR grid:code = 'MGRS-T')``), else the query extension
(one tile property at a time: query has no OR), else only collections + datetime + bbox, fetched once
and filtered here. pystac-client merely warns when asked for an extension a server lacks and sends it
anyway, and a server without it may then match nothing (rustac's in-memory server does): so nothing
is sent that is not advertised, and every candidate is checked here again (tile, cloud cover, window,
all five assets, the collection) whatever the server did. The clearest leaves the largest share of the
tile clear: (100 − ``s2:nodata_pixel_percentage``) × (100 − ``eo:cloud_cover``), so a granule at the
edge of an orbit's swath (0 % cloud over the 3 % of the tile it holds) loses to a whole tile at 1 %,
and one that leaves none of it clear (100 % no data or cloud) is no candidate (the tile stays unserved);
ties go to the latest datetime, then to the latest processing baseline (a reprocessed take), then to
the id. An item's numbers that are not numbers (a cloud cover of "5" or NaN, a flag of "true") are
refused, naming the item: read wrong, they pick the wrong item or the wrong offset without a word.
So is an item that names two tiles (its tile properties, its id, its band hrefs' files or folders),
a band href whose folder or file names other days than the item's,
an item whose id or band files name another baseline (N0212) than its property, and band assets
whose raster:bands scale or offset disagree with the baseline (Earth Search's are
its collection's, the same on every item: there its flag is read). Paging that loops or stops short
of numberMatched is refused too: either leaves the clearest item unseen.
Hrefs are absolute (an asset's relative href is resolved against the item's own URL) and stay
unsigned (see pc_sign).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from urllib.parse import urljoin

import pystac
import pystac_client
from pystac_client.conformance import ConformanceClasses
from pystac_client.warnings import DoesNotConformTo

from tilewise.biomass.indices import QUANTIFICATION, boa_offset, processing_baseline
from tilewise.shared.errors import TilewiseError

log = logging.getLogger(__name__)

BANDS = ("B02", "B03", "B04", "B08", "SCL")
ASSET_KEYS = {  # per band: Planetary Computer's key, then Earth Search's
    "B02": ("B02", "blue"),
    "B03": ("B03", "green"),
    "B04": ("B04", "red"),
    "B08": ("B08", "nir"),
    "SCL": ("SCL", "scl"),
}
PAGE_SIZE = 100  # items per page of a search (pystac-client follows the `next` links)


@dataclass(frozen=True)
class Pick:
    tile: str
    item_id: str
    datetime: datetime
    cloud_cover_percent: float
    processing_baseline: str | None
    boa_add_offset_dn: int  # 0 or -1000
    hrefs: dict[str, str] = field(default_factory=dict)  # band -> href, unsigned


def normalize_tile(tile: str) -> str:
    """'T29UNU', '29unu', 'MGRS-29UNU', '9UWV' -> '29UNU' / '09UWV'."""
    if not isinstance(tile, str):
        raise ValueError(f"not an MGRS tile id: {tile!r}")
    t = tile.strip().upper().removeprefix("MGRS-").removeprefix("T")
    zone = t[:-3]
    if not (zone.isdigit() and 1 <= int(zone) <= 60 and t[-3:].isalpha()):
        raise ValueError(f"not an MGRS tile id: {tile!r}")
    return f"{int(zone):02d}{t[-3:]}"


def item_tile(props: dict) -> str | None:
    """The item's MGRS tile, normalized, from whichever properties the catalogue sets."""
    if props.get("s2:mgrs_tile"):
        return normalize_tile(props["s2:mgrs_tile"])
    if str(props.get("grid:code", "")).startswith("MGRS-"):
        return normalize_tile(props["grid:code"])
    if all(props.get(k) is not None for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square")):
        return normalize_tile(f"{props['mgrs:utm_zone']}{props['mgrs:latitude_band']}{props['mgrs:grid_square']}")
    return None


def _asset_key(item: pystac.Item, band: str) -> str | None:
    """The item's asset key of `band` (Planetary Computer's, else Earth Search's), or None."""
    return next((k for k in ASSET_KEYS[band] if k in item.assets), None)


def _path_segments(text: str) -> list[str]:
    """An id's or href's parts between slashes, its query string (a signature) left out."""
    return text.split("?")[0].split("/")


# a tile in an id or a path segment, between underscores: ESA/PC's T29UNU, Earth Search's S2B_29UNU_20240701_0_L2A
_TILE_TOKEN = re.compile(r"^T?(\d{1,2}[C-X][A-Z]{2})$")


def _named_tiles(text: str) -> set[str]:
    """The MGRS tiles an item id or an href's path names (its query string, a signature, is left out)."""
    tokens = (m[1] for seg in _path_segments(text) for tok in seg.split("_") if (m := _TILE_TOKEN.match(tok)))
    return {normalize_tile(t) for t in tokens if 1 <= int(t[:-3]) <= 60}  # zone 0 or 61+: not a tile


def _tile_sources(item: pystac.Item) -> list[tuple[str, str]]:
    """(where, tile) for each of the item's properties and its id that name a tile."""
    props = item.properties
    parts = [props.get(f"mgrs:{k}") for k in ("utm_zone", "latitude_band", "grid_square")]
    given = [
        ("s2:mgrs_tile", props.get("s2:mgrs_tile")),
        ("grid:code", props.get("grid:code") if str(props.get("grid:code", "")).startswith("MGRS-") else None),
        ("mgrs:*", "".join(map(str, parts)) if all(p is not None for p in parts) else None),
    ]
    found = []
    for key, value in given:
        if value in (None, ""):
            continue
        try:
            found.append((key, normalize_tile(value)))
        except ValueError:  # read loosely, 29 or "29-UNU" crashed the search without the item's name
            raise TilewiseError(
                f"STAC item {item.id}: {key} is {value!r}, not an MGRS tile id (29UNU, T29UNU or MGRS-29UNU); fix "
                "the catalogue's item"
            ) from None
    return found + [("its id", t) for t in sorted(_named_tiles(item.id))]


def _refuse_two_tiles(item: pystac.Item, hrefs: dict[str, str], tile: str) -> None:
    """An item whose properties, id or band hrefs name another tile beside `tile`: which tile its pixels
    cover cannot be told, and read as `tile` they lay another place's fields on its parcels."""
    where = f"STAC item {item.id}"
    sources = _tile_sources(item)
    if len({t for _, t in sources}) > 1:
        named = sorted(sources, key=lambda s: s[1] == tile)  # the other tile first
        raise TilewiseError(
            f"{where}: {', '.join(f'{w} names tile {t}' for w, t in named)}; which tile its pixels cover cannot "
            "be told: fix the catalogue's item (its tile properties and id must name one tile)"
        )
    for band, href in hrefs.items():
        other = _named_tiles(href) - {tile}
        if other:
            key = _asset_key(item, band)
            raise TilewiseError(
                f"{where}: asset {key!r} ({href}) is in a file or folder of tile {', '.join(sorted(other))}, not "
                f"{tile}; fix the catalogue's asset href (another tile's band is read as this tile's without a word)"
            )


_DAY_TOKEN = re.compile(r"^(20\d{6})(?:T\d{6})?$")  # 20240701 or 20240701T112121 between _ or .


def _refuse_other_day(item: pystac.Item, hrefs: dict[str, str]) -> None:
    """A band href whose folder or file names days, none of them the item's (Earth Search's
    S2B_29UNU_20240615_0_L2A/SCL.tif under an item of 1 July): another day's pixels or clouds. A product
    name holds its processing day too, so one of the days a name holds must be the item's."""
    day = item.datetime.astimezone(UTC).strftime("%Y%m%d")
    for band, href in hrefs.items():
        for seg in _path_segments(href):
            days = {m[1] for tok in re.split(r"[_.]", seg) if (m := _DAY_TOKEN.match(tok))}
            if days and day not in days:
                key = _asset_key(item, band)
                raise TilewiseError(
                    f"STAC item {item.id}: asset {key!r} ({href}): {seg} names {', '.join(sorted(days))}, not the "
                    f"item's day {day}; fix the catalogue's asset href (another day's band or clouds are read as "
                    "this day's without a word)"
                )


def _check_raster_bands(item: pystac.Item, offset_dn: int) -> None:
    """A band asset's raster:bands scale and offset (reflectance = DN × scale + offset) must say what the
    baseline says: 0.0001 and −0.1 (−1000 DN) or 0. Earth Search writes its collection's −0.1 on every
    item whatever its pixels hold (Element84/earth-search#66), so there its flag alone is read."""
    props = item.properties
    where = f"STAC item {item.id}"
    for band in BANDS[:-1]:  # SCL holds classes, not reflectances
        key = _asset_key(item, band)
        raster = (item.assets[key].extra_fields.get("raster:bands") or [{}])[0]
        scale, offset = raster.get("scale"), raster.get("offset")
        if scale is not None and not math.isclose(scale, 1 / QUANTIFICATION):
            raise TilewiseError(
                f"{where}: asset {key!r} raster:bands scale {scale}, not 0.0001: its DN are not Sentinel-2 L2A's "
                f"(reflectance = DN / {QUANTIFICATION}); use the catalogue's L2A collection or fix its item"
            )
        if offset is None or "earthsearch:boa_offset_applied" in props:
            continue
        said = round(offset * QUANTIFICATION) + 0  # + 0: no −0
        if said != offset_dn:
            baseline = props.get(_baseline_key(props) or "", "none")
            raise TilewiseError(
                f"{where}: asset {key!r} raster:bands offset {offset} ({_dn(said)} DN), not the {_dn(offset_dn)} DN "
                f"of processing baseline {baseline}: whether its pixels still carry the offset cannot be told; fix "
                "the catalogue's item, or give the offset in a CSV catalog (boa_add_offset column)"
            )


_BASELINE_TOKEN = re.compile(r"^N(\d{2})(\d{2})$")  # the product name's field: S2A_MSIL2A_…_N0510_R037_…


def _refuse_other_baseline(item: pystac.Item, hrefs: dict[str, str]) -> None:
    """The baseline the item's id or its band files' product name (N0510) give must be its property's:
    a reprocessed take's files under the old take's item carry another offset than the one read."""
    key = _baseline_key(item.properties)
    if key is None:
        return  # boa_offset_dn has refused it already
    given = processing_baseline(item.properties[key], key)
    names = [("its id", item.id)] + [(f"asset {_asset_key(item, b)!r}", h) for b, h in hrefs.items()]
    for where, text in names:
        for seg in _path_segments(text):
            for tok in seg.split("_"):
                found = _BASELINE_TOKEN.match(tok)
                if found and (int(found[1]), int(found[2])) != given:
                    raise TilewiseError(
                        f"STAC item {item.id}: {where} names {tok}, not its {key} {item.properties[key]}: which "
                        "processing baseline (and −1000 DN offset or none) its pixels have cannot be told; fix the "
                        "catalogue's item"
                    )


def _dn(value: int) -> str:
    return str(value).replace("-", "−")


def _tile_terms(tile: str) -> list[tuple[str, str]]:
    """(property, value) pairs that name `tile` in the known catalogues."""
    terms = [("s2:mgrs_tile", tile), ("grid:code", f"MGRS-{tile}")]
    if tile.startswith("0"):  # stactools wrote grid:code without the zone's leading zero until 2025
        terms.append(("grid:code", f"MGRS-{tile[1:]}"))
    return terms


def boa_offset_dn(props: dict, where: str = "STAC item") -> int:
    """DN to add before dividing by 10000, from the processing baseline and the catalogue's flag."""
    applied = props.get("earthsearch:boa_offset_applied")
    if applied is not None and not isinstance(applied, bool):  # "true" or 1: which one the catalogue meant is a guess
        raise TilewiseError(
            f"{where}: earthsearch:boa_offset_applied is {applied!r}, not a JSON boolean; whether its pixels still "
            "carry the −1000 offset cannot be told (read as false it is applied twice); fix the catalogue's item"
        )
    if applied:
        return 0  # Earth Search removed the offset from the pixels already
    key = _baseline_key(props)
    if key is not None:
        return int(boa_offset(props[key], None, f"{where} {key}"))
    raise TilewiseError(
        f"{where}: neither s2:processing_baseline nor processing:version is given, so whether its DN carry the "
        "−1000 offset (baseline 04.00 on) cannot be told; use a STAC API that gives the baseline, or a CSV "
        "catalog (biomass tile catalog) with a boa_add_offset column"
    )


def band_hrefs(item: pystac.Item) -> dict[str, str] | None:
    """band -> absolute href for BANDS, or None if the item lacks one of them. A relative href
    (`./B04.tif`) is the item's neighbour, not a file of the run's folder."""
    hrefs = {}
    for band in BANDS:
        key = _asset_key(item, band)
        if key is None:
            return None
        href = item.assets[key].href
        if "://" not in href and not href.startswith("/"):  # a URL or a path stays as given
            base = item.get_self_href()
            if base is None:
                raise TilewiseError(
                    f"STAC item {item.id}: asset {key!r} has the relative href {href!r} and the item has no URL of "
                    "its own to resolve it against; the catalogue must give absolute hrefs or self links"
                )
            href = urljoin(base, href)
        hrefs[band] = href
    return hrefs


def _percent(props: dict, key: str, where: str) -> float | None:
    """A percentage property (eo:cloud_cover, s2:nodata_pixel_percentage): None if absent, else a
    number in [0, 100]; anything else is refused, naming the item."""
    value = props.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:  # NaN fails too
        raise TilewiseError(f"{where}: {key} is {value!r}, not a percentage from 0 to 100; fix the catalogue's item")
    return float(value)


def _baseline_key(props: dict) -> str | None:
    """The property that gives the item's processing baseline: Earth Search's and the Planetary
    Computer's, else CDSE's; None when neither is given."""
    return next((k for k in ("s2:processing_baseline", "processing:version") if props.get(k) not in (None, "")), None)


def _baseline_order(props: dict) -> tuple[int, int]:
    """The item's processing baseline as a sortable pair; (0, 0) when it gives none or one Sentinel-2
    does not write (boa_offset_dn refuses it, naming the item, if this item is picked)."""
    key = _baseline_key(props)
    try:
        return processing_baseline(props[key], key) if key else (0, 0)
    except TilewiseError:
        return (0, 0)


def _search(client, **kwargs) -> list[pystac.Item]:
    """Every item of the search, once. pystac-client follows `next` links for as long as they come: a
    page of items all seen already is a link that loops (it would never end), and fewer items than the
    first page's numberMatched is paging that stopped early (the clearest may be on a page never served)."""
    with warnings.catch_warnings():
        # only advertised extensions are sent; pystac-client 0.9 does not know pgstac's v1.1.0 sort URI
        warnings.simplefilter("ignore", DoesNotConformTo)
        search = client.search(**kwargs)
        items: dict[str, dict] = {}
        matched = None
        for number, page in enumerate(search.pages_as_dicts(), start=1):
            features = page.get("features", [])
            if number == 1:
                matched = page.get("numberMatched", page.get("context", {}).get("matched"))
            elif all(f.get("id") in items for f in features):
                what = f"({kwargs.get('collections')}, {kwargs.get('datetime')})"
                raise TilewiseError(
                    f"{search.url}: page {number} of the search {what} repeats items of earlier pages: its `next` "
                    "link loops and paging would never end; fix the STAC API or use another one"
                )
            items.update((f.get("id"), f) for f in features)  # an item on two pages is one item
    if isinstance(matched, int) and not isinstance(matched, bool) and len(items) < matched:
        raise TilewiseError(
            f"{search.url}: the search ({kwargs.get('collections')}, {kwargs.get('datetime')}) says {matched} items "
            f"match (numberMatched) but its pages served {len(items)}: paging stopped early and the clearest item "
            "may be among those never served; retry, lower the page limit, or use another STAC API"
        )
    return [pystac.Item.from_dict(f, root=client, preserve_dict=False) for f in items.values()]


def _candidates(client, base: dict, max_cloud_cover: float, tile: str) -> tuple[list[pystac.Item], str]:
    if client.conforms_to(ConformanceClasses.FILTER):
        tile_or = {"op": "or", "args": [{"op": "=", "args": [{"property": p}, v]} for p, v in _tile_terms(tile)]}
        cql = {"op": "and", "args": [{"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud_cover]}, tile_or]}
        return _search(client, **base, filter=cql, filter_lang="cql2-json"), "filter"
    if client.conforms_to(ConformanceClasses.QUERY):
        for prop, value in _tile_terms(tile):
            found = _search(client, **base, query={"eo:cloud_cover": {"lte": max_cloud_cover}, prop: {"eq": value}})
            if found:
                return found, "query"
        return [], "query"
    return _search(client, **base), "client-side"


def pick_items(
    url: str,
    collection: str,
    interval: str,
    max_cloud_cover: float,
    tiles: list[str],
    bbox: list[float] | None = None,
    client: pystac_client.Client | None = None,
    limit: int = PAGE_SIZE,
) -> dict[str, Pick]:
    """Per tile, the clearest item in `interval` with eo:cloud_cover <= `max_cloud_cover` and all BANDS.
    Tiles without one are left out (the caller says which). `bbox` narrows the search of a server
    that can filter neither on the tile nor on cloud cover."""
    try:
        client = client or pystac_client.Client.open(url)
    except Exception as exc:  # noqa: BLE001 (network, HTTP and JSON errors alike)
        raise TilewiseError(f"{url}: cannot open the STAC API ({type(exc).__name__}: {exc})") from exc
    start, end = parse_interval(interval)
    base = {"collections": [collection], "datetime": f"{_rfc3339(start)}/{_rfc3339(end)}", "limit": limit}
    if bbox is not None:
        base["bbox"] = bbox
    cache: list[pystac.Item] | None = None  # the client-side strategy fetches the window once
    picks: dict[str, Pick] = {}
    for tile in dict.fromkeys(normalize_tile(t) for t in tiles):
        if cache is None:
            found, how = _candidates(client, base, max_cloud_cover, tile)
            if how == "client-side":
                cache = found
                log.warning(
                    "%s advertises neither the filter nor the query extension: fetched all %d items of %s in %s "
                    "and filtered them here",
                    url,
                    len(found),
                    collection,
                    base["datetime"],
                )
            else:
                log.info("tile %s: %d candidate(s) by %s", tile, len(found), how)
        best = _clearest(cache if cache is not None else found, tile, max_cloud_cover, start, end, collection)
        if best is not None:
            picks[tile] = best
    return picks


def _clearest(items, tile, max_cloud_cover, start, end, collection) -> Pick | None:
    best = None
    for item in items:
        props = item.properties
        if item.collection_id != collection or tile not in {t for _, t in _tile_sources(item)}:
            continue  # a server that ignores `collections` (or the tile filter) returns other items too
        where = f"STAC item {item.id}"
        cloud = _percent(props, "eo:cloud_cover", where)
        if cloud is None or cloud > max_cloud_cover:
            continue
        if item.datetime is None or not (start <= item.datetime <= end):
            continue
        hrefs = band_hrefs(item)
        if hrefs is None:
            continue
        _refuse_two_tiles(item, hrefs, tile)
        _refuse_other_day(item, hrefs)
        if item_tile(props) != tile:
            continue  # named by its id alone
        empty = _percent(props, "s2:nodata_pixel_percentage", where) or 0.0
        clear_share = (100 - empty) * (100 - cloud)
        if clear_share == 0:
            continue  # none of the tile to read (a granule that misses it, all cloud): served, it hid that
        baseline = _baseline_order(props)
        key = (-clear_share, -item.datetime.timestamp(), (-baseline[0], -baseline[1]), item.id)
        if best is None or key < best[0]:
            best = (key, item, hrefs)
    if best is None:
        return None
    _, item, hrefs = best
    props = item.properties
    offset_dn = boa_offset_dn(props, f"STAC item {item.id}")
    _check_raster_bands(item, offset_dn)
    _refuse_other_baseline(item, hrefs)
    return Pick(
        tile=tile,
        item_id=item.id,
        datetime=item.datetime,
        cloud_cover_percent=float(props["eo:cloud_cover"]),
        processing_baseline=props.get("s2:processing_baseline"),
        boa_add_offset_dn=offset_dn,
        hrefs=hrefs,
    )


def catalog_rows(picks: dict[str, Pick], sign: str) -> list[dict]:
    """The picks as rows of the Sentinel-2 catalog table the index selects from (one date per tile)."""
    return [
        {
            "tile": p.tile,
            "date": p.datetime.astimezone(UTC).strftime("%Y%m%d"),
            "band": band,
            "href": href,
            "processing_baseline": p.processing_baseline or "",
            "boa_add_offset": float(p.boa_add_offset_dn),
            "sign": sign,
            "item_id": p.item_id,
        }
        for p in picks.values()
        for band, href in p.hrefs.items()
    ]


def parse_interval(interval: str) -> tuple[datetime, datetime]:
    """'2024-06-01/2024-09-30' (dates: whole UTC days) or RFC 3339 datetimes -> aware UTC bounds."""
    try:
        start, end = interval.split("/")
        return _parse_instant(start, end_of_day=False), _parse_instant(end, end_of_day=True)
    except ValueError:
        raise TilewiseError(f"datetime must be 'start/end' (dates or RFC 3339 datetimes): {interval!r}") from None


def _parse_instant(text: str, end_of_day: bool) -> datetime:
    text = text.strip()
    if len(text) == 10:  # a date
        return datetime.combine(date.fromisoformat(text), time.max if end_of_day else time.min, tzinfo=UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"datetime without a time zone: {text!r}")
    return value.astimezone(UTC)


def _rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
