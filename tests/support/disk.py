"""A small real disk for the full-disk tests: a tmpfs mounted for the test, then given more room.

Mounting needs root: elsewhere the test skips and says so; under CI=true it fails (.ci/run runs the
suite as root), like the other tests of real services (support/services.py).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.services import need


class SmallDisk:
    def __init__(self, path: Path):
        self.path = path

    def grow(self, size_bytes: int) -> None:
        """Free space as an operator would: the same disk, more room."""
        subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(self.path)], check=True)


@contextmanager
def small_disk(path: Path, size_bytes: int) -> Iterator[SmallDisk]:
    """A tmpfs of `size_bytes` mounted at `path` for the duration of the block."""
    need(os.geteuid() == 0 and shutil.which("mount") is not None, "root and mount(8), to mount a small tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)], check=True)
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def disk_bytes(folder: Path) -> int:
    """What the files under `folder` take on a disk of 4 KiB blocks; a file of several hard links once
    (the published tarball and its kept link in work/{source}/published/ are one file)."""
    sizes = {}
    for p in folder.rglob("*"):
        if p.is_file():
            st = p.stat()
            sizes[st.st_dev, st.st_ino] = math.ceil(st.st_size / 4096) * 4096
    return sum(sizes.values())
