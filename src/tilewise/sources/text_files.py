"""Reading the catalog's text files (file lists, metadata, recipes): UTF-8, a BOM, line numbers.

A file that is not UTF-8 stops the run with its name and the line of the first bad byte.
"""

from __future__ import annotations

from pathlib import Path

from tilewise.shared.errors import CatalogError

BOM = b"\xef\xbb\xbf"


def read_text(path: Path, bom_ok: bool = True) -> str:
    """A catalog text file as str; a file that is not UTF-8 stops the run naming its line."""
    raw = path.read_bytes()
    if raw.startswith(BOM):
        if not bom_ok:
            raise CatalogError(
                f"{path}:1: starts with a UTF-8 byte-order mark; the tarball ships this file as it is and "
                "JSON readers (Mapterhorn's json.load) refuse it: save it as UTF-8 without BOM"
            )
        raw = raw[len(BOM) :]  # editors on Windows add it; it is not part of the first line
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CatalogError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02X} at column {column}); "
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def lines(text: str) -> list[str]:
    """Lines as Python's text files split them (\\n, \\r\\n or \\r), so numbers match editors."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
