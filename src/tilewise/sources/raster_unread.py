"""Files of a download that look like rasters but give no raster to convert: a damaged raster (cut
short, garbage, empty) and a container of several rasters (subdatasets). Mapterhorn's unzip prints
GDAL's error and goes on, so the source ships incomplete without a word; here each such file is its
download's recorded failure, named with GDAL's reason and the fix."""

from __future__ import annotations

import ctypes
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from tilewise.shared.errors import FileFailure
from tilewise.shared.libgdal import declare, rasterio_libgdal
from tilewise.sources import raw_headers

# Suffixes of formats that hold only rasters: such a file GDAL cannot open is a damaged raster, also when
# too little of it is left for GDAL to tell its format (a zero-byte or garbage `.tif`)
RASTER_SUFFIXES = {
    ".tif",
    ".tiff",
    ".asc",
    ".xyz",
    ".grd",
    ".hgt",
    ".dt0",
    ".dt1",
    ".dt2",
    ".jp2",
    ".img",
    ".bil",
    ".flt",
    ".dem",
}
_GDAL_OF_RASTER, _GDAL_OF_VECTOR = 0x02, 0x04


class UnreadableRasters(FileFailure):
    """The download fails: files in it look like rasters but give none (each named, with the fix)."""

    def __init__(self, problems: list[str]):
        super().__init__("convert", "; ".join(problems))


def damaged(path: Path, rel: str, error: Exception) -> str | None:
    """Why the file at `path` (`rel` inside the download), which GDAL could not open, is a damaged
    raster; None when it is no raster at all (a readme, a vector layer, a macOS `._dem.tif`)."""
    if _apple_double(path) or (path.suffix.lower() not in RASTER_SUFFIXES and not _gdal_identifies_raster(path)):
        return None
    return _damaged(path, rel, error)


def _apple_double(path: Path) -> bool:
    """A macOS zip's `__MACOSX/._dem.tif`: the Finder's metadata of dem.tif (AppleDouble), no raster."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x00\x05\x16\x07"
    except OSError:
        return False


@contextmanager
def reading(path: Path, rel: str) -> Iterator[None]:
    """A raster that opened but whose pixels cannot be read (cut short after its header) is damaged
    too: GDAL's block read error becomes the download's failure with the fix."""
    try:
        yield
    except (RasterioError, CPLE_BaseError) as exc:
        gdal = exc.__cause__ or exc.__context__ or exc  # rasterio's "Read failed" chains GDAL's error
        if "IReadBlock failed" not in str(gdal):  # GDAL's words for a block it could not read
            raise
        raise UnreadableRasters([_damaged(path, rel, gdal)]) from exc


# SRTM's .hgt sides (3" and 1"): GDAL's SRTMHGT driver places such a file by its name alone
_HGT_SIDES = (1201, 3601)


# the keys an ESRI or GRASS ASCII grid's header starts with; GDAL reads one only when such a key starts its file
_ASCII_GRID_KEYS = re.compile(rb"(ncols|nrows|xllc|yllc|cellsize|north:|south:|east:|west:|rows:|cols:)", re.I)
_UTF8_BOM = b"\xef\xbb\xbf"


def _ascii_header_after(path: Path) -> str | None:
    """What comes before an ASCII grid header that does not start its file: a byte-order mark, blanks."""
    with open(path, "rb") as f:
        head = f.read(1024)
    rest = head.removeprefix(_UTF8_BOM)
    if not _ASCII_GRID_KEYS.match(rest.lstrip()) or rest.lstrip() == head:
        return None
    return "a byte-order mark" if rest != head else "blanks or blank lines"


def _damaged(path: Path, rel: str, error: Exception) -> str:
    reason = str(error).replace(str(path), rel)  # GDAL names the scratch path, the user knows the member
    if path.is_file() and (before := _ascii_header_after(path)):
        return (
            f"{rel}: an ASCII grid whose header comes after {before}, and GDAL reads one only when its header starts "
            f"the file ({reason}): remove them in a copy of the download and list that, or drop it with "
            f"`exclude: [{path.name!r}]` in the recipe (source.yaml)"
        )
    hgt = path.suffix.lower() == ".hgt" and path.is_file()
    side = next((n for n in _HGT_SIDES if path.stat().st_size == 2 * n * n), None) if hgt else None
    if side:
        return (
            f"{rel}: an SRTM .hgt of {side}×{side} heights, but GDAL places a .hgt by its name, and "
            f"{path.name!r} names no south-west corner ({reason}): rename it after its corner (N47E008.hgt, "
            f"s13w077.hgt) in the archive, or drop it with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
        )
    if "Ungridded dataset" in reason:  # GDAL's XYZ reader: points off one regular grid (rounded, repeated)
        return (
            f"{rel}: its points do not lie on one regular grid ({reason}), the only XYZ GDAL reads: grid them first "
            f"(gdal_grid, or coordinates written with enough decimals, each point once) and list that file, or drop "
            f"it with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
        )
    return (
        f"{rel}: GDAL cannot read this raster ({reason}); it is damaged or cut short: download it again, or "
        f"drop it with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def cut_short(ds, path: Path, rel: str) -> str | None:
    """Why a raster GDAL would read without an error is damaged all the same: a file of a format whose
    reader fills what is missing (with zeros, or with the next row's values) holds less, or other,
    than its header describes. Read line by line (`convert_set.gdal_env`), GDAL fails a short read
    of every raw format but ENVI (whose data files it lets be sparse); it reads PCIDSK's missing
    blocks and the missing end of a PCRaster map or a classic netCDF file as zeros, and an ASCII grid's
    values as one stream, whatever rows they are written in, and a DTED's voids written in two's complement
    as 0 m. Each would ship wrong elevations."""
    if ds.driver in ASCII_GRIDS:
        return (
            _header_not_plain(ds, path, rel)
            or _values_not_filling_the_grid(ds, path, rel)
            or _value_no_number(ds, path, rel)
            or _zero_read_as_a_void(ds, path, rel)
        )
    if ds.driver == "GSAG":  # Surfer ASCII: one stream of values, as the ASCII grids
        return _value_no_number(ds, path, rel) or _values_not_filling_the_grid(ds, path, rel)
    if ds.driver == "XYZ":
        holes = _xyz_holes_without_nodata(ds, path, rel) if ds.nodata is None else None
        return _value_no_number(ds, path, rel) or holes
    if ds.driver == "EHdr" and (unordered := _ehdr_without_byte_order(ds, rel)):
        return unordered
    if ds.driver == "ENVI" and (unordered := _envi_without_byte_order(ds, rel)):
        return unordered
    if ds.driver == "DTED":
        return _dted_negative_zeros(ds, path, rel)
    described = _DESCRIBED_BYTES[ds.driver](ds, path) if ds.driver in _DESCRIBED_BYTES else None
    size = path.stat().st_size
    if described is None or size >= described:
        return None
    return (
        f"{rel}: GDAL would read this {ds.driver} raster, but it holds {size:,} bytes where its header describes "
        f"{described:,}; it is cut short: download it again, or drop it with `exclude: [{path.name!r}]` in the "
        "recipe (source.yaml)"
    )


def _xyz_holes_without_nodata(ds, path: Path, rel: str) -> str | None:
    """GDAL fills the cells an XYZ file has no point for with a nodata value it picks among the values the
    file does not hold (0, −32768); when the values leave it none (Byte values including 0) it declares
    none and fills them with 0, which is then read as an elevation. Fewer points than cells are holes."""
    points, after_line, first = 0, True, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            first = first or chunk[:4096]
            chars = np.frombuffer(chunk, dtype=np.uint8)
            ends = (chars == 10) | (chars == 13)  # LF, CRLF or CR alone (GDAL reads each)
            solid = ~ends & (chars != 32) & ((chars < 9) | (chars > 13))  # not a blank: a line of spaces is none
            is_end = ends[ends | solid]  # the ends and solid bytes in order: a line's first solid one follows an end
            if is_end.size:
                after = np.concatenate(([after_line], is_end[:-1]))
                points += int(np.count_nonzero(~is_end & after))  # lines with something on them
                after_line = bool(is_end[-1])
    points -= raw_headers.xyz_data_start(first) > 0  # a header line: "X Y Z", '"x","y","z"' (as GDAL finds it)
    cells = ds.width * ds.height
    if points >= cells:
        return None
    return (
        f"{rel}: this XYZ grid has {points:,} points for {cells:,} cells, and GDAL found no value its holes could "
        "take as nodata (its values include 0), so it fills them with 0, an elevation: add the missing cells as "
        "points with a value that is no elevation (e.g. -9999) and set it as `nodata:` in the recipe, or convert it "
        "with gdal_translate -a_nodata after filling; or drop it with "
        f"`exclude: [{path.name!r}]` (source.yaml)"
    )


def _ehdr_without_byte_order(ds, rel: str) -> str | None:
    """A BIL/BIP/BSQ or FLT of samples wider than a byte whose .hdr gives no byte order (no BYTEORDER, or
    one of no order GDAL knows: `BYTEORDER`, `BYTEORDER 0`, `X`): GDAL reads it big-endian, ESRI's default
    is the writer's machine (a PC: little-endian), so heights of 1 m read as 256 m without a word. Which
    order the file holds cannot be told from it."""
    if np.dtype(ds.dtypes[0]).itemsize == 1:
        return None
    hdr = next((Path(f) for f in ds.files if Path(f).suffix.lower() == ".hdr"), None)
    if hdr is None:
        return None
    words = [line.split() for line in hdr.read_text("latin-1").splitlines()]
    orders = [w[1] if len(w) > 1 else "" for w in words if w and w[0].lower() == "byteorder"]
    # GDAL reads I…, L… (LSBFIRST) as little-endian and anything else as big-endian: M…, B… (BIG) say so too
    if orders and orders[-1][:1].upper() in ("I", "L", "M", "B"):
        return None
    given = f"gives BYTEORDER {orders[-1]!r}, which says no byte order," if orders else "gives no byte order"
    return (
        f"{rel}: its {hdr.name} {given} for its {ds.dtypes[0]} values, and GDAL reads them big-endian "
        "where a PC writes little-endian (1 m read as 256 m); add `BYTEORDER I` (little-endian, Intel) or "
        f"`BYTEORDER M` (big-endian) to {hdr.name} in the archive, whichever the producer wrote, or drop the raster "
        f"with `exclude: [{Path(ds.files[0]).name!r}]` in the recipe (source.yaml)"
    )


def _envi_without_byte_order(ds, rel: str) -> str | None:
    """An ENVI raster of samples wider than a byte whose .hdr gives no `byte order`: GDAL reads it in the
    reading machine's order (little-endian here), the producer wrote its own machine's, so heights of
    1 m read as 256 m on the other kind. ENVI writes the key in every header; which order a header
    without it means cannot be told."""
    if np.dtype(ds.dtypes[0]).itemsize == 1 or "byte_order" in {k.lower() for k in ds.tags(ns="ENVI")}:
        return None
    hdr = next((Path(f).name for f in ds.files if Path(f).suffix.lower() == ".hdr"), "its header")
    return (
        f"{rel}: its {hdr} gives no `byte order` for its {ds.dtypes[0]} values, and GDAL reads them in this machine's "
        "order (little-endian) whatever order the producer's machine wrote (1 m read as 256 m): add `byte order = 0` "
        f"(little-endian) or `byte order = 1` (big-endian) to {hdr} in the archive, whichever the producer wrote, or "
        f"drop the raster with `exclude: [{Path(ds.files[0]).name!r}]` in the recipe (source.yaml)"
    )


# GDAL's DTED reader takes a "negative" height of a magnitude above this for two's complement (as some
# producers write) and reads it again so; DTED's void, 0xFFFF, is −32767 in signed magnitude
_DTED_TWOS_COMPLEMENT_ABOVE, _DTED_VOID = 16000, 0xFFFF


def _dted_negative_zeros(ds, path: Path, rel: str) -> str | None:
    """Heights stored as 0x8000: −0 m in DTED's signed magnitude, which GDAL reads as 0 m, but −32768,
    the void, in the two's complement some producers write. A file whose other negative heights are
    in signed magnitude wrote a rounded −0 m; one whose negatives are in two's complement, or that
    has none, may have written voids, which would ship as 0 m: which one cannot be told."""
    raw = raw_headers.dted_raw_heights(path, ds.width, ds.height)
    if raw is None or not (zeros := int(np.count_nonzero(raw == 0x8000))):
        return None
    negative = (raw & 0x8000).astype(bool) & (raw != 0x8000) & (raw != _DTED_VOID)
    magnitude = raw & 0x7FFF
    signed = int(np.count_nonzero(negative & (magnitude <= _DTED_TWOS_COMPLEMENT_ABOVE)))
    twos = int(np.count_nonzero(negative & (magnitude > _DTED_TWOS_COMPLEMENT_ABOVE)))
    if signed and not twos:
        return None
    coding = (
        f"its {twos:,} other negative heights are in two's complement, so these are voids"
        if twos and not signed
        else "its other negative heights do not say which coding it uses"
    )
    return (
        f"{rel}: {zeros:,} of its heights are stored as 0x8000, −0 m in DTED's signed magnitude (GDAL reads 0 m) "
        f"but −32768, the void, in the two's complement some producers write; {coding}, and voids would ship as "
        "0 m: ask the producer for the file with its voids as DTED's −32767 (0xFFFF), or drop it with "
        f"`exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def _envi_bytes(ds, path: Path) -> int | None:
    header = ds.tags(ns="ENVI")
    if header.get("file_compression", "0").strip() not in ("", "0"):
        return None  # gzipped data (`file compression = 1`): a cut stream fails its read
    offset = int(header.get("header_offset", "0") or 0)
    return offset + ds.width * ds.height * sum(np.dtype(t).itemsize for t in ds.dtypes)


def _pcidsk_bytes(ds, path: Path) -> int | None:
    with open(path, "rb") as f:
        blocks = f.read(32)[16:32].strip()  # the file header's size in 512-byte blocks
    return int(blocks) * 512 if blocks.isdigit() else None


_DESCRIBED_BYTES = {
    "ENVI": _envi_bytes,
    "PCIDSK": _pcidsk_bytes,
    "PCRaster": lambda ds, path: raw_headers.pcraster_bytes(path),
    "netCDF": lambda ds, path: raw_headers.classic_netcdf_bytes(path),
}

# GDAL's text grids read by one reader (AAIGRasterBand): values as one stream of tokens
ASCII_GRIDS = {"AAIGrid", "GRASSASCIIGrid"}


_ORIGINS = ({"xllcorner", "yllcorner"}, {"xllcenter", "yllcenter"})


def _header_not_plain(ds, path: Path, rel: str) -> str | None:
    """An ASCII grid's header must say each thing once, one way. GDAL reads without an error
    - a key given twice (two `cellsize`, `xllcorner` or `nodata_value` lines): it takes one of them;
    - `cellsize` beside `dx`/`dy`: it takes `cellsize`;
    - an ESRI header that places the grid by no pair (`xllcorner` beside `yllcenter`, or one missing):
      at 0, 0, in a world CRS (EPSG:4326, 3857) a place on the Earth, in the Gulf of Guinea;
    - an ESRI cell size that is no positive number (a flipped grid, or cells 0 wide);
    - a GRASS header's `multiplier:` (ignored) or a bound as degrees:minutes:seconds (read as degrees).
    Which one the producer meant cannot be told, so the file fails."""
    header = raw_headers.ascii_grid_header(path)
    if header is None:
        return None
    keys = [key for key, _ in header]
    fix = f"fix the header, or drop the file with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        return f"{rel}: its header gives {', '.join(twice)} more than once, and GDAL takes one without a word: {fix}"
    if ds.driver != "AAIGrid":
        return _grass_header_read_otherwise(header, rel, fix)
    if "cellsize" in keys and {"dx", "dy"} & set(keys):
        return f"{rel}: its header gives both cellsize and dx/dy, and GDAL takes cellsize without a word: {fix}"
    for key, value in header:
        if key in ("cellsize", "dx", "dy") and not (_number(value) or 0) > 0:
            return (
                f"{rel}: its header says {key} {value}; a cell size must be a positive number (GDAL reads a negative "
                f"one as a grid flipped about its corner, 0 as cells 0 wide): {fix}"
            )
    if any(pair <= set(keys) for pair in _ORIGINS):
        return None
    given = ", ".join(sorted(set(keys) & set.union(*_ORIGINS))) or "none of them"
    return (
        f"{rel}: its header places the grid by {given}; GDAL needs xllcorner and yllcorner, or xllcenter and "
        f"yllcenter, and without a pair puts the grid at 0, 0 without a word: {fix} (both corners or both centres)"
    )


_GRASS_BOUNDS = ("north", "south", "east", "west")


def _grass_header_read_otherwise(header: list[tuple[str, str]], rel: str, fix: str) -> str | None:
    """GRASS's r.in.ascii multiplies every value by `multiplier:`; GDAL ignores it (decimetres or feet
    shipped as metres). A lat/long location writes its bounds as `47:30:00N`; GDAL reads 47."""
    for key, value in header:
        if key == "multiplier" and _number(value) != 1 or key in _GRASS_BOUNDS and _number(value) is None:
            if key == "multiplier":
                why = "ignores (GRASS's r.in.ascii multiplies every value by it): convert the values to metres first"
            else:
                why = "reads as another number (a degrees:minutes:seconds bound): write the bounds as decimal degrees"
            return f"{rel}: its header says {key}: {value}, which GDAL {why}; {fix}"
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _values_not_filling_the_grid(ds, path: Path, rel: str) -> str | None:
    """An ASCII grid must hold exactly ncols × nrows values. GDAL reads them as one stream: a value
    missing shifts every pixel after it (and the last reads as 0), a header's nrows too small cuts
    rows off, an ncols too small shears every row; none of it is an error."""
    values = (raw_headers.surfer_ascii_values if ds.driver == "GSAG" else raw_headers.ascii_grid_values)(path)
    described = ds.width * ds.height
    if values is None or values == described:
        return None
    return (
        f"{rel}: GDAL would read this {ds.driver} raster, but it holds {values:,} values where its header describes "
        f"{ds.height:,} rows of {ds.width:,} ({described:,}); read as one stream, its values would land in other "
        f"pixels (a value missing, or a wrong ncols or nrows): ask the producer for a fixed file, or drop it with "
        f"`exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def _value_no_number(ds, path: Path, rel: str) -> str | None:
    """Every value of an ASCII grid or an XYZ file must be a number GDAL reads as written (or an ASCII
    grid header's nodata/null token): GDAL reads anything else as 0 or a part of it, an elevation,
    without an error."""
    if ds.driver == "XYZ":
        found = raw_headers.xyz_no_number(path)
    elif ds.driver == "GSAG":
        found = raw_headers.surfer_ascii_no_number(path)
    else:
        found = raw_headers.ascii_grid_no_number(path, float_band=np.dtype(ds.dtypes[0]).kind == "f")
    if found is None:
        return None
    line, token = found
    return (
        f"{rel}: line {line} holds {token!r}, no number GDAL reads as written (it reads it as 0 or part of it, "
        "an elevation, without a word): write voids as the header's NODATA_value (GRASS: `null:`; XYZ: leave the "
        "point out) and values as decimal numbers, or drop the file with "
        f"`exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def _zero_read_as_a_void(ds, path: Path, rel: str) -> str | None:
    """A void token that is no number (GRASS r.out.ascii's `null: *`, `NODATA_value NA`) GDAL reads as 0,
    its nodata: every height of 0 m is a void too, without a word. A grid without a 0 is read right."""
    found = raw_headers.ascii_grid_zero_beside_a_void_token(path) if ds.nodata == 0 else None
    if found is None:
        return None
    line, value, token = found
    return (
        f"{rel}: its header's void token {token!r} is no number, which GDAL reads as 0, so line {line}'s height "
        f"{value!r} would ship as a void too: write the voids as a number no height takes (e.g. `-9999` in the "
        f"header and for every {token!r}), or drop the file with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def container(ds, path: Path, rel: str) -> str | None:
    """Why a dataset that holds subdatasets (a GeoPackage with several raster tables, a NetCDF or HDF
    file with several variables, a GeoTIFF of several images, whose first GDAL opens with bands) is not
    converted: which of them is the elevation is the user's choice, and converting all would ship a DSM
    or an error grid as elevation too (converting the first drops the others without a word)."""
    if not ds.subdatasets:
        return None
    names = [s.replace(str(path), path.name) for s in ds.subdatasets]
    out = f"{path.stem}.tif" if path.suffix.lower() != ".tif" else f"{path.stem}_elevation.tif"  # not over itself
    return (
        f"{rel} holds {len(names)} rasters (subdatasets {', '.join(names)}), not one: convert the elevation one "
        f"to a GeoTIFF first (gdal_translate {shlex.quote(names[0])} {out}) and list that file, or drop "
        f"it with `exclude: [{path.name!r}]` in the recipe (source.yaml)"
    )


def raster_driver(path: Path) -> str | None:
    """GDAL's raster driver for `path` without opening it (Identify reads only the header)."""
    lib = _lib()
    driver = lib.GDALIdentifyDriverEx(str(path).encode(), _GDAL_OF_RASTER, None, None)
    return lib.GDALGetDriverShortName(driver).decode() if driver else None


def _gdal_identifies_raster(path: Path) -> bool:
    """GDAL recognises the file as a raster format by its first bytes (a truncated GeoTIFF); a format
    that also holds vectors (GeoPackage, NetCDF) counts only when the file does not open as vectors."""
    lib = _lib()
    driver = lib.GDALIdentifyDriverEx(str(path).encode(), _GDAL_OF_RASTER, None, None)
    if not driver:
        return False
    if not lib.GDALGetMetadataItem(driver, b"DCAP_VECTOR", None):
        return True
    vectors = lib.GDALOpenEx(str(path).encode(), _GDAL_OF_VECTOR, None, None, None)
    if vectors:
        lib.GDALClose(vectors)
    return not vectors


@cache
def _lib() -> ctypes.CDLL:
    p, s = ctypes.c_void_p, ctypes.c_char_p
    return declare(
        rasterio_libgdal(),
        [
            ("GDALIdentifyDriverEx", p, [s, ctypes.c_uint, p, p]),
            ("GDALGetDriverShortName", s, [p]),
            ("GDALGetMetadataItem", s, [p, s, s]),
            ("GDALOpenEx", p, [s, ctypes.c_uint, p, p, p]),
            ("GDALClose", None, [p]),
        ],
    )
