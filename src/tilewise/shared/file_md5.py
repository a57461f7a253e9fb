"""The md5 of a file's bytes: what Mapterhorn's `.md5` files, the ledger's records and the store index
compare."""

import hashlib
from pathlib import Path


def file_md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()
