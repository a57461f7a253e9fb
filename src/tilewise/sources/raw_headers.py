"""What the headers of a few formats say their files hold, read without GDAL: GDAL reads the missing
end of these files as zeros (PCRaster, classic netCDF) or their values as one stream whatever rows
they are written in (ASCII grids), so raster_unread compares each file with its header; and DTED's
heights as stored, before GDAL reads a sign into them.

Each reader returns None when the file is not laid out as it expects (another variant of the format,
a header it cannot parse): GDAL opened the file, and a check that cannot be made fails nothing.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

COUNT_BYTES = 16 << 20  # an ASCII grid is counted in pieces of this size: memory stays flat on any size
_HEAD_BYTES = 64 << 10  # GDAL finds an ASCII grid's data in the first bytes it reads (1 KiB and more)


def ascii_grid_values(path: Path) -> int | None:
    """How many values an ESRI or GRASS ASCII grid holds after its header (None: no data found)."""
    return _values_after(path, _ascii_data_start)


def _values_after(path: Path, data_start) -> int | None:
    """How many values `path` holds from where `data_start` (of its first bytes) says its data start."""
    with open(path, "rb") as f:
        start = data_start(f.read(_HEAD_BYTES))
        if start is None:
            return None
        f.seek(start)
        return _count_tokens(f)


# A value GDAL's ASCII grid reader (atof/atoi, no check) reads as written: a decimal number (GDAL takes a
# comma as the decimal point), or NaN in a grid it reads as floats
_NUMBER = rb"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?"
_NAN = rb"\+?(?:nan|NaN)|-1\.#(?:QNAN|IND)|1\.#[QS]NAN"  # exactly what GDAL reads as NaN: `NAN`, `-nan` are 0
# the bytes of plain numbers (digits, one point, a leading minus): a piece of only these is checked vectorised
_PLAIN_BYTES = b"0123456789.- \t\n\r\v\f\x00"
_TWO_POINTS = re.compile(rb"\.\d*\.")


def ascii_grid_no_number(path: Path, float_band: bool) -> tuple[int, str] | None:
    """The first value of an ESRI or GRASS ASCII grid that GDAL would not read as written, as (line,
    token): GDAL reads `*`, `NA`, `--5`, `0x1A` as 0, `2345m` as 2345, `inf` as 3.4e38 and, in a grid
    of integers, `nan` as 0, all without a word. The header's own nodata/null token is a value."""
    with open(path, "rb") as f:
        if (data := _to_ascii_grid_data(f)) is None:
            return None
        line, null = data
        value = b"|".join([_NUMBER, *([_NAN] if float_band else []), *map(re.escape, null)])
        return _first_no_number(f, line, value, b"")


def _to_ascii_grid_data(f: BinaryIO) -> tuple[int, list[bytes]] | None:
    """Move `f`, an ASCII grid, to its first value: the number of that value's line and the header's void
    tokens; None when no data is found."""
    head = f.read(_HEAD_BYTES)
    start = _ascii_data_start(head)
    if start is None:
        return None
    f.seek(start)
    return head[:start].count(b"\n") + 1, _void_tokens(head[:start])


def _void_tokens(header: bytes) -> list[bytes]:
    """The void token an ASCII grid's header gives (ESRI `NODATA_value`, GRASS `null:`, also `null:*`)."""
    lines = header.decode("latin-1").splitlines()
    pairs = [_key_value(line) for line in lines if line.split()]
    return [value.encode("latin-1") for key, value in pairs if key.lower() in ("nodata_value", "null") and value]


# a value that is 0 as GDAL reads it (0, -0.0, 000, 0,0, .0e5), a whole token
_ZERO_TOKEN = re.compile(rb"(?<![^\s\x00])[+-]?(?:0+(?:[.,]0*)?|[.,]0+)(?:[eE][+-]?\d+)?(?![^\s\x00])")


def ascii_grid_zero_beside_a_void_token(path: Path) -> tuple[int, str, str] | None:
    """When an ESRI or GRASS ASCII grid's void token is no number (GRASS r.out.ascii's `null: *`,
    `NODATA_value NA`), GDAL reads it as 0, its nodata: the first value of 0 after the header, as (line,
    token, the void token), a height of 0 m GDAL reads as a void."""
    with open(path, "rb") as f:
        if (data := _to_ascii_grid_data(f)) is None:
            return None
        line, null = data
        if not null or re.fullmatch(_NUMBER + b"|" + _NAN, null[0]):
            return None
        found = _first_token(f, line, _ZERO_TOKEN, b"")
        return None if found is None else (*found, null[0].decode("latin-1"))


def surfer_ascii_values(path: Path) -> int | None:
    """How many values a Surfer ASCII grid (DSAA) holds after its 5-line header."""
    return _values_after(path, _surfer_data_start)


def surfer_ascii_no_number(path: Path) -> tuple[int, str] | None:
    """The first value of a Surfer ASCII grid GDAL would not read as written: its reader takes values
    with strtod as one stream, so `105.2.5` is two values (105.2, .5) and every pixel after it shifts."""
    with open(path, "rb") as f:
        start = _surfer_data_start(f.read(_HEAD_BYTES))
        if start is None:
            return None
        f.seek(start)
        return _first_no_number(f, 6, _NUMBER, b"")


def _surfer_data_start(head: bytes) -> int | None:
    """Where a DSAA grid's values start: after `DSAA` and the lines of its size, x, y and z ranges."""
    ends = [m.end() for m in re.finditer(rb"\r\n?|\n", head)]
    return ends[4] if head.startswith(b"DSAA") and len(ends) > 4 else None


def xyz_no_number(path: Path) -> tuple[int, str] | None:
    """The first field of an XYZ file that GDAL would not read as written, as (line, token): its
    reader takes `-`, `.`, `+`, `--5` as 0 and `1.2.3` as 1.2 without a word. Fields are split at
    spaces, tabs, semicolons and commas; a comma is the decimal point where semicolons separate."""
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
        start = xyz_data_start(head)
        data = re.split(rb"[\r\n]", head[start:], maxsplit=1)[0]
        separators = b";" if b";" in data else b",;"
        f.seek(start)
        return _first_no_number(f, 1 + (start > 0), _NUMBER, separators)


def xyz_data_start(head: bytes) -> int:
    """Where an XYZ file's points start, from its first bytes: after its first line when that line holds a
    letter or a `"` anywhere (GDAL's XYZ reader takes it for the header: `X Y Z`, `"x","y","z"`, `1 2 3a`),
    but for an exponent's `e` (`0 0 1e2` is a point), else at 0. Lines end in LF, CRLF or CR alone."""
    end = re.search(rb"\r\n?|\n", head)
    return end.end() if end and re.search(rb'[A-DF-Za-df-z"]', head[: end.start()]) else 0


def _first_no_number(f: BinaryIO, line: int, value: bytes, separators: bytes) -> tuple[int, str] | None:
    """The first token from here on (split at spaces and `separators`) that is not a `value` (a
    regular expression), as (line, token), read in pieces cut at spaces."""
    # a token (no space before it) that is no value up to its end
    bad = re.compile(rb"(?<![^\s\x00])(?!(?:" + value + rb")(?![^\s\x00]))[^\s\x00]+")
    return _first_token(f, line, bad, separators, skip_plain=True)


def _first_token(
    f: BinaryIO, line: int, pattern: re.Pattern, separators: bytes, skip_plain: bool = False
) -> tuple[int, str] | None:
    """The first token matching `pattern` from here on (split at spaces and `separators`), as (line,
    token), read in pieces cut at spaces; `skip_plain`: a piece of plain numbers holds none (`_plain`)."""
    gaps = bytes.maketrans(separators, b" " * len(separators))
    carry = b""
    while True:
        piece = f.read(COUNT_BYTES)
        text = carry + piece.translate(gaps)
        cut = len(text) if not piece else max(text.rfind(c) for c in b" \t\n\r\v\f\x00") + 1
        text, carry = text[:cut], text[cut:]
        if not (skip_plain and _plain(text)) and (found := pattern.search(text)):
            return line + text.count(b"\n", 0, found.start()), found.group().decode("latin-1")
        line += text.count(b"\n")
        if not piece:
            return None


def _plain(text: bytes) -> bool:
    """Every token is a plain decimal number (the common case, checked without reading tokens one by
    one): only digits, points, minus signs; a minus only first in its token and before a digit or point;
    no two points in one token; no `.` or `-.` alone."""
    if text.translate(None, _PLAIN_BYTES):
        return False
    chars = np.frombuffer(text + b" ", dtype=np.uint8)  # a space after the last token
    space = _spaces(chars)
    minus = np.flatnonzero(chars == ord("-"))
    if (minus > 0).any() and not space[minus[minus > 0] - 1].all() or space[minus + 1].any():
        return False
    point = np.flatnonzero(chars == ord("."))
    before = chars[point - 1] if point.size else point
    alone = space[point + 1] & ((point == 0) | (before == ord("-")) | space[np.maximum(point - 1, 0)])
    return not alone.any() and not _TWO_POINTS.search(text)


def ascii_grid_header_keys(path: Path) -> list[str] | None:
    """The keys of an ESRI or GRASS ASCII grid's header, in their order and lower case, a key given twice
    listed twice (GRASS's `north:` as `north`); None: no data found."""
    header = ascii_grid_header(path)
    return None if header is None else [key for key, _ in header]


def ascii_grid_header(path: Path) -> list[tuple[str, str]] | None:
    """An ESRI or GRASS ASCII grid's header lines as (key in lower case, value as written); None: no
    data found."""
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    start = _ascii_data_start(head)
    if start is None:
        return None
    lines = head[:start].decode("latin-1").splitlines()
    return [(key.lower(), value.strip()) for line in lines if line.split() for key, value in [_key_value(line)]]


def _key_value(line: str) -> tuple[str, str]:
    """`north: 4000` (GRASS, also `north:4000`) or `ncols 10` (ESRI)."""
    words = line.split(None, 1)
    key = words[0].split(":")[0]
    return key, line.strip()[len(key) :].lstrip(": \t")


def _ascii_data_start(head: bytes) -> int | None:
    """Where GDAL's AAIGDataset::CommonOpen starts reading values: the first place at or just after a
    line's start (not on line 1) that is no letter, or is `null ` (D12's nodata)."""
    for i in range(2, len(head)):
        if head[i] == 0:
            return None
        if (head[i - 1] in b"\n\r" or head[i - 2] in b"\n\r") and head[i] not in b"\n\r":
            if not (65 <= head[i] <= 90 or 97 <= head[i] <= 122) or head[i : i + 5] == b"null ":
                return i
    return None


def _count_tokens(f: BinaryIO) -> int:
    """The runs of non-space bytes from here to the end: vectorised, one piece at a time."""
    count, after_space = 0, True
    while piece := f.read(COUNT_BYTES):
        space = _spaces(np.frombuffer(piece, dtype=np.uint8))
        count += int(np.count_nonzero(space[:-1] > space[1:])) + int(after_space and not space[0])
        after_space = bool(space[-1])
    return count


def _spaces(chars: np.ndarray) -> np.ndarray:
    """C's isspace, as GDAL's AAIGrid reader splits values (a NUL ends its reading as the file's end
    does): compared, not looked up in a table (3× faster)."""
    space = np.subtract(chars, 9, dtype=np.uint8) < 5  # \t \n \v \f \r
    space |= chars == 32
    space |= chars == 0
    return space


# PCRaster's CSF: a 256-byte header (main header, then the raster header at 64), then the cells
_CSF_SIGNATURE, _CSF_DATA = b"RUU CROSS SYSTEM MAP FORMAT", 256


def pcraster_bytes(path: Path) -> int | None:
    """The size a PCRaster map's header describes: 256 bytes, then rows × columns cells."""
    with open(path, "rb") as f:
        head = f.read(_CSF_DATA)
    if len(head) < 108 or not head.startswith(_CSF_SIGNATURE):
        return None
    order = "<" if struct.unpack("<I", head[46:50])[0] == 1 else ">"  # the writer's byte order
    (cell_repr,) = struct.unpack(order + "H", head[66:68])
    rows, cols = struct.unpack(order + "II", head[100:108])
    return _CSF_DATA + rows * cols * (1 << (cell_repr & 0x03))  # CSF_SIZE: the low two bits give log2(bytes)


# classic netCDF (CDF-1, CDF-2 64-bit offset, CDF-5 64-bit data), big-endian throughout
_NC_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 0x0A, 0x0B, 0x0C
_STREAMING = 0xFFFFFFFF


class _Header:
    """A classic netCDF header read in order: counts are 4 bytes (8 in CDF-5), offsets 4 (8 from CDF-2)."""

    def __init__(self, f: BinaryIO, version: int):
        self.f, self.version = f, version

    def _int(self, size: int) -> int:
        data = self.f.read(size)
        if len(data) < size:
            raise ValueError("header cut short")
        return int.from_bytes(data, "big")

    def count(self) -> int:
        return self._int(8 if self.version == 5 else 4)

    def offset(self) -> int:
        return self._int(4 if self.version == 1 else 8)

    def tag(self) -> int:
        return self._int(4)

    def name(self) -> None:
        self._skip(self.count())

    def _skip(self, size: int) -> None:
        self.f.seek((size + 3) // 4 * 4, 1)  # padded to 4 bytes

    def listing(self, expected_tag: int) -> int:
        """The number of entries of a list, ABSENT (two zeros) being none."""
        tag, n = self.tag(), self.count()
        if tag not in (0, expected_tag) or (tag == 0 and n):
            raise ValueError("not a classic netCDF list")
        return n

    def attributes(self) -> None:
        for _ in range(self.listing(_NC_ATTRIBUTE)):
            self.name()
            nc_type, n = self.tag(), self.count()
            self._skip(n * _NC_TYPE_BYTES[nc_type])


def classic_netcdf_bytes(path: Path) -> int | None:
    """The size a classic netCDF file's header describes: where its last variable's data ends (each
    variable's begin offset and size; record variables for every record the header counts)."""
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
            return None  # netCDF-4 is HDF5: GDAL fails its short reads
        header = _Header(f, magic[3])
        try:
            return _netcdf_data_end(header)
        except (ValueError, KeyError):
            return None


def _netcdf_data_end(header: _Header) -> int:
    records = header.count()
    lengths = []
    for _ in range(header.listing(_NC_DIMENSION)):
        header.name()
        lengths.append(header.count())
    header.attributes()
    variables = []  # (begin, bytes of one record or of the whole variable, is a record variable)
    for _ in range(header.listing(_NC_VARIABLE)):
        header.name()
        dims = [header.count() for _ in range(header.count())]
        header.attributes()
        nc_type, _vsize, begin = header.tag(), header.count(), header.offset()
        record = bool(dims) and lengths[dims[0]] == 0  # the unlimited dimension comes first
        cells = int(np.prod([lengths[d] for d in dims[record:]], dtype=np.int64))
        variables.append((begin, cells * _NC_TYPE_BYTES[nc_type], record))
    record_vars = [v for v in variables if v[2]]
    # a record holds every record variable, each padded to 4 bytes, unless there is only one
    record_bytes = sum(n if len(record_vars) == 1 else (n + 3) // 4 * 4 for _, n, _ in record_vars)
    ends = [begin + n for begin, n, record in variables if not record]
    if records not in (0, _STREAMING):
        ends += [begin + (records - 1) * record_bytes + n for begin, n, _ in record_vars]
    return max(ends, default=0)


_PIXEL_SCALE, _TIEPOINT, _TRANSFORMATION = 33550, 33922, 34264
_TIFF_DOUBLE = 12


def geotiff_grids(path: Path) -> tuple[tuple, tuple] | None:
    """The two grids a GeoTIFF's first image gives when it holds both a ModelTiepoint with a ModelPixelScale and
    a ModelTransformation (GDAL takes the first without a word, other readers the second): each as the six
    numbers of a geotransform. None when it holds one of them, or is not a TIFF laid out as expected."""
    with open(path, "rb") as f:
        head = f.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 16:
            return None
        version = struct.unpack(order + "H", head[2:4])[0]
        if version not in (42, 43):
            return None
        big = version == 43
        count_fmt, entry_bytes, value_bytes = ("Q", 20, 8) if big else ("H", 12, 4)
        f.seek(struct.unpack(order + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0])
        count = struct.unpack(order + count_fmt, f.read(struct.calcsize(count_fmt)))[0]
        entries = f.read(entry_bytes * min(count, 4096))
        doubles = {}
        for i in range(len(entries) // entry_bytes):
            entry = entries[i * entry_bytes : (i + 1) * entry_bytes]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag not in (_PIXEL_SCALE, _TIEPOINT, _TRANSFORMATION) or kind != _TIFF_DOUBLE:
                continue
            n = struct.unpack(order + ("Q" if big else "I"), entry[4 : 4 + value_bytes])[0]
            if n > 64:
                continue
            raw = entry[4 + value_bytes :]
            if 8 * n > value_bytes:
                f.seek(struct.unpack(order + ("Q" if big else "I"), raw)[0])
                raw = f.read(8 * n)
            doubles[tag] = struct.unpack(order + "d" * n, raw[: 8 * n])
    scale, tie, matrix = doubles.get(_PIXEL_SCALE), doubles.get(_TIEPOINT), doubles.get(_TRANSFORMATION)
    if not (scale and tie and matrix) or len(scale) < 2 or len(tie) != 6 or len(matrix) != 16:
        return None  # one grid, or tiepoints that are GCPs
    i, j, _, x, y, _ = tie
    by_tiepoint = (scale[0], 0.0, x - i * scale[0], 0.0, -scale[1], y + j * scale[1])
    by_matrix = (matrix[0], matrix[1], matrix[3], matrix[4], matrix[5], matrix[7])
    return by_tiepoint, by_matrix


# DTED (MIL-PRF-89020B): a user header (UHL, 80 bytes; a VOL and an HDR record of 80 bytes may come
# first), the DSI (648) and ACC (2700) records, then one record a longitude line: 8 bytes (sentinel
# 0xAA, block, longitude and latitude counts), its heights from the south (big-endian 16-bit signed
# magnitude), a 4-byte checksum
_DTED_RECORDS_AFTER_UHL = 80 + 648 + 2700


def dted_raw_heights(path: Path, width: int, height: int) -> np.ndarray | None:
    """A DTED file's heights as the 16-bit words it stores (longitude lines × latitude points), before
    any reading of their sign; None when its records are not where and what the format says."""
    with open(path, "rb") as f:
        head = f.read(240)
        uhl = next((at for at in (0, 80, 160) if head[at : at + 3] == b"UHL"), None)
        if uhl is None:
            return None
        f.seek(uhl + _DTED_RECORDS_AFTER_UHL)
        record = 12 + 2 * height
        data = np.frombuffer(f.read(width * record), dtype=np.uint8)
    if data.size != width * record:
        return None
    records = data.reshape(width, record)
    if not (records[:, 0] == 0xAA).all():
        return None
    return records[:, 8 : 8 + 2 * height].copy().view(">u2")
