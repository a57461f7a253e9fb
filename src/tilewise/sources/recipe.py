"""The recipe of a source: what to do to its rasters before they become COGs.

A recipe comes from `source.yaml` in the catalog entry or, when there is none, from the entry's
Mapterhorn `Justfile`, whose lines name Mapterhorn's per-source scripts.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
from tilewise.shared.errors import CatalogError


@dataclass(frozen=True)
class Recipe:
    crs: str | None = None
    nodata: float | None = None
    force_nodata: bool = False
    fix_orientation: bool = False
    slice_px: int | None = None
    exclude: tuple[str, ...] = ()
    coverage_crs: str | None = None
    keep_original: bool = False  # store each downloaded GeoTIFF as it is (Mapterhorn's download-only recipes)
    cog: dict = field(default_factory=lambda: dict(MAPTERHORN_COG_OPTIONS))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["exclude"] = tuple(d.get("exclude", ()))
        d["cog"] = {**MAPTERHORN_COG_OPTIONS, **(d.get("cog") or {})}
        return cls(**d)


def _schema() -> dict:
    text = resources.files("tilewise.sources").joinpath("schemas/recipe.schema.yaml").read_text()
    return yaml.safe_load(text)


def recipe_from_yaml(path: Path) -> Recipe:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {e.json_path}: {e.message}" for e in errors]
        raise CatalogError(
            f"{path}: the recipe does not match the recipe schema:\n"
            + "\n".join(lines)
            + "\nAllowed keys: "
            + ", ".join(_schema()["properties"])
        )
    _check_keep_original(data, path)
    return Recipe.from_dict(data)


# Recipe keys that change pixels or grids, so they cannot go with keep_original
_CONVERTING_KEYS = ("crs", "nodata", "fix_orientation", "slice_px")


def _check_keep_original(data: dict, path: Path) -> None:
    if not data.get("keep_original"):
        return
    clash = [k for k in _CONVERTING_KEYS if data.get(k) is not None and data.get(k) is not False]  # nodata 0 counts
    if clash:
        raise CatalogError(
            f"{path}: `keep_original: true` stores the producer's files unchanged, but {', '.join(clash)} "
            "convert them; remove keep_original or those keys"
        )


# Mapterhorn scripts whose work this workflow always does (download, unpack, COG, bounds,
# polygons, tarball), so their lines only need the source name to match.
_ALWAYS_DONE = {
    "source_download.py",
    "source_unzip.py",
    "source_to_cog.py",
    "source_bounds.py",
    "source_polygonize.py",
    "source_create_tarball.py",
}
# Mapterhorn scripts that rewrite the downloaded files: a Justfile without any keeps them byte for byte
_CONVERTING_SCRIPTS = {
    "source_unzip.py",
    "source_to_cog.py",
    "source_set_crs.py",
    "source_set_nodata.py",
    "source_fix_orientation.py",
    "source_slice.py",
}
_RM_LINE = re.compile(r"^rm\s+(-f\s+)?source-store/(?P<source>[^/\s]+)/(?P<name>[^/\s]+)$")


def recipe_from_justfile(path: Path, source: str) -> Recipe:
    """Translate a Mapterhorn Justfile into a recipe, or fail naming the line it cannot map."""
    values: dict = {}
    exclude: list[str] = []
    converts = False
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line in ("[no-cd]", "default:"):
            continue

        def fail(why: str, lineno: int = lineno, raw: str = raw) -> CatalogError:
            return CatalogError(
                f"{path}:{lineno}: cannot map '{raw.strip()}' to a recipe ({why}). "
                f"Write the recipe as {path.parent / 'source.yaml'} instead."
            )

        rm = _RM_LINE.match(line)
        if rm:
            if rm["source"] != source:
                raise fail(f"it removes a file of another source, {rm['source']}")
            exclude.append(Path(rm["name"]).stem + ".tif")
            continue
        words = shlex.split(line)
        if words[:3] != ["uv", "run", "python"] or len(words) < 4:
            raise fail("not a Mapterhorn source script call")
        script, args = words[3], words[4:]
        if not args or args[0] != source:
            raise fail(f"its first argument is not the source name {source!r}")
        args = args[1:]
        converts = converts or script in _CONVERTING_SCRIPTS
        if script in _ALWAYS_DONE:
            continue
        if script == "source_set_crs.py" and len(args) == 1:
            values["crs"] = args[0]
        elif script == "source_set_nodata.py" and len(args) in (1, 2):
            if len(args) == 2 and args[1] != "--force":
                raise fail(f"unknown option {args[1]!r}")
            values["nodata"] = float(args[0])
            values["force_nodata"] = len(args) == 2
        elif script == "source_fix_orientation.py" and not args:
            values["fix_orientation"] = True
        elif script == "source_slice.py" and len(args) == 1 and args[0].isdigit():
            values["slice_px"] = int(args[0])
        else:
            raise fail(f"{script} with arguments {args} has no equivalent here")
    if exclude:
        values["exclude"] = tuple(exclude)
    if not converts:  # download → bounds → polygonize → tarball: Mapterhorn ships the downloads as they are
        values["keep_original"] = True
    return Recipe.from_dict(values)


def load_recipe(entry: Path) -> tuple[Recipe, Path]:
    """The recipe of a catalog entry and the file it came from."""
    for name, loader in (
        ("source.yaml", lambda p: recipe_from_yaml(p)),
        ("Justfile", lambda p: recipe_from_justfile(p, entry.name)),
    ):
        path = entry / name
        if path.is_file():
            return loader(path), path
    return Recipe(), entry
