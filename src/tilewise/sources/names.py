"""File names: what a URL's download is called, and the one rule that makes an output name safe.

Download names follow Mapterhorn's `wget --continue "{url}"` exactly (GNU Wget 1.18+, Unix): the
last path segment, plus `?query` when the URL has one (even an empty one); percent-decoded; only
`/`, NUL, 0x01–0x1F and 0x7F re-escaped as `%XX`; a trailing slash gives `index.html`; a name that
decodes to `..` becomes `%2E%2E`; names longer than 236 bytes are cut. Bytes that are not UTF-8
stay as they are (surrogate-escaped in the `str`, as the file system gives them back).

Output names (the COGs in `source-store/`, the rows of `bounds.csv`, the members of the tar) pass
`safe_name`, one rule for all three: a character that would break `bounds.csv` (read downstream
with `line.strip().split(',')`), a tar or a file system is written as `%XX` of its UTF-8 bytes —
control characters (C0, DEL, C1), line and paragraph separators, bytes that are not UTF-8, `/`,
`\\`, `,` and `"`, and a leading `-`, `.` or white space. Names over 236 bytes keep their suffix
and a hash of the whole name. `%` itself is kept (wget's names already carry `%2F`), so two
different names can become one; `collision_key` (case and Unicode normalisation ignored, as on
macOS and Windows disks) is how the workflow finds such collisions and refuses them.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from tilewise.shared.url_secrets import masked

MAX_NAME_BYTES = 236  # wget's limit (NAME_MAX 255 − its CHOMP_BUFFER 19): room for `.part` and `.tmp`
_WGET_ESCAPED = frozenset(range(0x20)) | {0x2F, 0x7F}
_WGET_ESCAPED_RE = re.compile(rb"[\x00-\x1f/\x7f]")
_ALWAYS_ESCAPED = frozenset('/\\,"')
_LEADING_ESCAPED = frozenset("-.")


def wget_name(url: str) -> str:
    """The name `wget --continue "{url}"` saves an http(s) URL's download under."""
    path = urlsplit(url).path
    if "/." in path or path in ("", ".", ".."):  # (a test first: normpath costs, and planning names every URL)
        path = _simplified_path(path)
    segment = path.rsplit("/", 1)[-1] or "index.html"
    before_fragment = url.split("#", 1)[0]
    if "?" in before_fragment:  # wget keeps even an empty query
        segment += "?" + before_fragment.split("?", 1)[1]
    raw = unquote_to_bytes(segment)  # invalid escapes such as %zz stay literal
    if raw == b"..":
        raw = b"%2E%2E"
    elif raw == b".":  # wget would fail to write this name; give it the same treatment as ".."
        raw = b"%2E"
    escaped = _WGET_ESCAPED_RE.sub(lambda m: b"%%%02X" % m[0][0], raw)
    if len(escaped) > MAX_NAME_BYTES:
        escaped = _wget_cut(raw)
    return os.fsdecode(escaped)


def _wget_cut(raw: bytes) -> bytes:
    """wget cuts a long name at 236 bytes, suffix and all, but never inside one of its escapes."""
    out = bytearray()
    for byte in raw:
        piece = b"%%%02X" % byte if byte in _WGET_ESCAPED else bytes([byte])
        if len(out) + len(piece) > MAX_NAME_BYTES:
            break
        out += piece
    return bytes(out)


def _simplified_path(path: str) -> str:
    """wget resolves `.` and `..` segments of the (still escaped) path before taking its last one."""
    if not path:
        return "/"
    simplified = posixpath.normpath(path)
    if path.endswith("/") or path.endswith("/.") or path.endswith("/..") or path in (".", ".."):
        simplified = simplified.rstrip("/") + "/"
    return simplified


def stem(name: str) -> str:
    """Mapterhorn's stem of a file name: without its last suffix. A download under wget's name keeps its
    URL's query (`dem.tif?token=eyJ.eyJ.sig`): a secret's value in it (a token, a signature) is written
    `***` first, so no name made from it (a COG's, a prefix) carries it."""
    return Path(masked(name)).stem


def local_name(path: str) -> str:
    """A local file keeps its own name (the last component of its path)."""
    return os.path.basename(path.rstrip("/"))


def safe_name(name: str) -> str:
    """The output name for `name`: unchanged when it is safe, else escaped (see the module's rule)."""
    if not name:
        raise ValueError("an output name cannot be empty")
    out = []
    for i, ch in enumerate(name):
        if _escaped(ch) or (i == 0 and (ch in _LEADING_ESCAPED or ch.isspace())):
            out.append("".join(f"%{b:02X}" for b in _utf8(ch)))
        else:
            out.append(ch)
    safe = "".join(out)
    return safe if len(safe.encode()) <= MAX_NAME_BYTES else _shortened(safe)


def _utf8(ch: str) -> bytes:
    try:
        return os.fsencode(ch)  # a surrogate-escaped byte gives the byte back
    except UnicodeEncodeError:
        return ch.encode("utf-8", "surrogatepass")


def _escaped(ch: str) -> bool:
    if ch in _ALWAYS_ESCAPED:
        return True
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that is not UTF-8 (surrogate-escaped)
        return True
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def _shortened(safe: str) -> str:
    """Keep the suffix, cut the stem (never inside a %XX escape), add 8 hex digits of the whole name."""
    stem, suffix = posixpath.splitext(safe)
    if len(suffix.encode()) > 16:
        stem, suffix = safe, ""
    tag = "~" + hashlib.blake2b(safe.encode(), digest_size=4).hexdigest()
    room = MAX_NAME_BYTES - len((tag + suffix).encode())
    cut = ""
    i = 0
    while i < len(stem):
        piece = stem[i : i + 3] if stem[i] == "%" and _is_escape(stem[i : i + 3]) else stem[i]
        if len((cut + piece).encode()) > room:
            break
        cut += piece
        i += len(piece)
    return cut + tag + suffix


def _is_escape(text: str) -> bool:
    return len(text) == 3 and all(c in "0123456789ABCDEF" for c in text[1:])


def is_safe(name: str) -> bool:
    return bool(name) and safe_name(name) == name


def collision_key(name: str) -> str:
    """Two names with one key cannot both live in one folder everywhere (case-insensitive, normalising disks)."""
    return unicodedata.normalize("NFC", name).casefold()
