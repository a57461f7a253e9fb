"""The workflow's defaults (config/config.yaml, their one place) as the settings objects tests build."""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import yaml

from tilewise.shared.download import DownloadSettings
from tilewise.sources.unpack import UnpackLimits

CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


@cache
def defaults() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def download_settings(**changes) -> DownloadSettings:
    return dataclasses.replace(DownloadSettings.from_config(defaults()["download"]), **changes)


def unpack_limits(**changes) -> UnpackLimits:
    return dataclasses.replace(UnpackLimits.from_config(defaults()["unpack"]), **changes)
