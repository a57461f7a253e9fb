"""The recipe of a source: what to do to its rasters before they become COGs.

A recipe comes from `source.yaml` in the catalog entry or, when there is none, from the entry's
Mapterhorn `Justfile`, whose lines name Mapterhorn's per-source scripts. Both pass one schema and
the same value checks before anything is downloaded: the CRS must be one PROJ knows, the COG
options ones GDAL's COG driver takes. An error names the file, the line and the key.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
from tilewise.shared.errors import CatalogError
from tilewise.sources import shell_words
from tilewise.sources.text_files import lines, read_text


@dataclass(frozen=True)
class Recipe:
    crs: str | None = None
    nodata: float | None = None
    force_nodata: bool = False
    fix_orientation: bool = False
    slice_px: int | None = None
    exclude: tuple[str, ...] = ()  # shell glob patterns (see `excludes`)
    prefix_names_from: tuple[str, ...] = ()  # patterns of download names (see `prefixes`)
    coverage_crs: str | None = None
    keep_original: bool = False  # store each downloaded GeoTIFF as it is (Mapterhorn's download-only recipes)
    cog: dict = field(default_factory=lambda: dict(MAPTERHORN_COG_OPTIONS))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        d["prefix_names_from"] = list(self.prefix_names_from)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["exclude"] = tuple(d.get("exclude", ()))
        d["prefix_names_from"] = tuple(d.get("prefix_names_from", ()))
        # GDAL's option names ignore case: `compress: LZW` must replace COMPRESS, not sit beside it unread
        d["cog"] = {**MAPTERHORN_COG_OPTIONS, **{str(k).upper(): v for k, v in (d.get("cog") or {}).items()}}
        return cls(**d)

    def non_defaults(self) -> dict:
        """The keys that differ from a recipe with no steps (what a source.yaml needs to say)."""
        default = Recipe().as_dict()
        return {k: v for k, v in self.as_dict().items() if v != default[k]}

    def excludes(self, *names: str) -> bool:
        """Whether a file is dropped: one of its names (as downloaded, inside its archive, or as an
        output COG) matches an `exclude` pattern, as a shell expands `rm source-store/{source}/PATTERN`."""
        return any(glob_match(name, pattern) for name in names for pattern in self.exclude)

    def prefixes(self, *downloads: str) -> bool:
        """Whether the rasters of a download (its name, or its volumes' names and their set's) are
        named `{download stem}_{folders}_{stem}.tif`."""
        return any(glob_match(d, pattern) for d in downloads for pattern in self.prefix_names_from)

    def for_downloads(self, downloads: list[str]) -> Recipe:
        """The recipe as one chunk sees it: only the `prefix_names_from` patterns that name one of its
        downloads, so adding an archive to that list reruns only the chunk that holds it."""
        kept = tuple(p for p in self.prefix_names_from if any(glob_match(d, p) for d in downloads))
        return replace(self, prefix_names_from=kept)


def glob_match(name: str, pattern: str) -> bool:
    """A shell glob: `*`, `?`, `[…]`; case-sensitive; a leading dot is matched only by a leading dot."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


@cache
def _schema() -> dict:
    text = resources.files("tilewise.sources").joinpath("schemas/recipe.schema.yaml").read_text()
    return yaml.safe_load(text)


def _validated(data: dict, path: Path, where: dict[str, str], check_values: bool) -> Recipe:
    """Schema first, then the values the schema cannot judge (CRS, COG options)."""
    import jsonschema  # here: chunk jobs get their recipe as validated params and never pay its import

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        lines_ = [f"  {_where(where, path, e.path)}{e.json_path}: {_schema_message(e)}" for e in errors]
        raise CatalogError(
            f"{path}: the recipe does not match the recipe schema:\n"
            + "\n".join(lines_)
            + "\nAllowed keys: "
            + ", ".join(_schema()["properties"])
        )
    _check_keep_original(data, path)
    recipe = Recipe.from_dict(data)
    if check_values:
        problems = _value_problems(recipe)
        if problems:
            listing = "\n".join(f"  {_where(where, path, key.split('.'))}{key}: {why}" for key, why in problems)
            raise CatalogError(f"{path}: the recipe has values that cannot work:\n{listing}")
    return recipe


def _schema_message(error) -> str:
    """jsonschema's message, except for a pattern, whose regex tells no user what to write: the
    schema's `$comment` on it says what is wrong, in words, and the fix."""
    if error.validator == "pattern":
        return f"{error.instance!r} {error.schema['$comment']}"
    return error.message


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


def _where(where: dict[str, str], path: Path, key_path) -> str:
    keys = [str(k) for k in key_path]
    for n in range(len(keys), 0, -1):
        if ".".join(keys[:n]) in where:
            return f"{where['.'.join(keys[:n])]}: "
    return ""


def _value_problems(recipe: Recipe) -> list[tuple[str, str]]:
    problems = []
    if recipe.crs:
        why = _crs_problem(recipe.crs, "rasterio")
        if why:
            problems.append(
                (
                    "crs",
                    f"{recipe.crs!r} is not a CRS GDAL knows ({why}); write one `gdal_translate -a_srs` accepts, "
                    "e.g. EPSG:25832 or the compound EPSG:25832+7837",
                )
            )
        elif why := _grid_crs_problem(recipe.crs):
            problems.append(("crs", f"{why}; write the CRS the rasters' coordinates are in, e.g. EPSG:25832"))
    if recipe.coverage_crs:
        why = _crs_problem(recipe.coverage_crs, "pyproj")
        if why:
            problems.append(("coverage_crs", f"{recipe.coverage_crs!r} is not a CRS PROJ knows ({why})"))
        elif hint := _not_epsg_2d(recipe.coverage_crs):
            problems.append(
                (
                    "coverage_crs",
                    f"{recipe.coverage_crs!r} is not a two-dimensional CRS with an EPSG code, which Mapterhorn's "
                    f"coverage bundle needs (it reads the GeoPackage's CRS as EPSG:{{srs_id}}); use {hint}",
                )
            )
    for key in ("exclude", "prefix_names_from"):
        problems += [
            (f"{key}.{i}", why) for i, pattern in enumerate(getattr(recipe, key)) if (why := _glob_problem(pattern))
        ]
    if recipe.cog != MAPTERHORN_COG_OPTIONS:  # Mapterhorn's options are known good (tested): no GDAL call
        from tilewise.shared.cog import cog_option_problems

        custom = {k: v for k, v in recipe.cog.items() if MAPTERHORN_COG_OPTIONS.get(k) != v}
        problems += [
            (f"cog.{k}", _WARP_WHY)
            for k, v in custom.items()
            if k in _COG_WARP_OPTIONS and not (k == "TILING_SCHEME" and str(v).upper() == "CUSTOM")
        ]
        if str(custom.get("OVERVIEWS", "NONE")).upper() not in ("NONE", "IGNORE_EXISTING"):
            problems.append(("cog.OVERVIEWS", _OVERVIEWS_WHY))
        problems += [(f"cog.{p.split(':', 1)[0]}", p.split(": ", 1)[1]) for p in cog_option_problems(custom)]
    return problems


def _glob_problem(pattern: str) -> str | None:
    """Why a shell glob would match other names in `glob_match` (Python's fnmatch) than in sh, or None: a
    bracket expression with a POSIX class ([[:digit:]], which fnmatch reads as a set of the characters
    '[', ':', 'd', …), or one starting with ^ (a negation in bash, the character ^ in dash and fnmatch)."""
    i = pattern.find("[")
    while i >= 0:
        start = i + 1 + (pattern[i + 1 : i + 2] == "!")
        close = pattern.find("]", start + (pattern[start : start + 1] == "]"))
        if close < 0:
            return None  # an unclosed [ is a plain character everywhere
        body = pattern[i + 1 : close + 1]
        if body.startswith("^"):
            return (
                f"{pattern!r}: [{body} is a negation in bash (sh on macOS) and a set holding ^ in dash (sh on "
                "Debian) and here; write [!…] for a negation, or quote the ^"
            )
        for opening in ("[:", "[=", "[."):
            if opening in body:
                name = body[body.index(opening) :].split(opening[1] + "]")[0] + opening[1] + "]"
                return (
                    f"{pattern!r}: the class {name} of a shell glob is not known here (it would match none of the "
                    "names sh matches); write its characters out, e.g. [0-9] for [[:digit:]], [a-zA-Z] for [[:alpha:]]"
                )
        i = pattern.find("[", close + 1)
    return None


# COG creation options that reproject or regrid (GDAL's COG driver then warps): a recipe keeps each raster's grid
_COG_WARP_OPTIONS = {
    "TILING_SCHEME",
    "TARGET_SRS",
    "RES",
    "EXTENT",
    "ALIGNED_LEVELS",
    "ZOOM_LEVEL",
    "ZOOM_LEVEL_STRATEGY",
}
_WARP_WHY = (
    "makes GDAL's COG driver warp the raster onto another grid, resampled, where Mapterhorn's COGs keep each "
    "file's grid; remove it (`crs:` assigns a CRS, it never reprojects)"
)

# AUTO and FORCE_USE_EXISTING copy the raster's own overviews (a pyramid inside it, a `.ovr` beside it) into the
# COG: made by the producer from other pixels (a stale `.ovr` of an earlier version), they ship as its overviews
_OVERVIEWS_WHY = (
    "copies the source's existing overviews (its internal pyramid or a .ovr file beside it, which may come from "
    "other pixels) into the COG instead of computing them from its pixels; write OVERVIEWS: IGNORE_EXISTING "
    "(or NONE, Mapterhorn's)"
)


def _not_epsg_2d(text: str) -> str | None:
    """None for a CRS with an EPSG code that is not compound, else the code to use instead."""
    from pyproj import CRS

    crs = CRS.from_user_input(text)
    if not crs.is_compound and crs.to_epsg() is not None:
        return None
    horizontal = crs.sub_crs_list[0].to_epsg() if crs.is_compound else None
    return f"EPSG:{horizontal}" if horizontal else "EPSG:3857"


def _grid_crs_problem(text: str) -> str | None:
    from tilewise.shared.web_mercator import not_a_grid_crs  # pyproj: only for recipes that set `crs`

    return not_a_grid_crs(text)


@cache
def _crs_problem(text: str, library: str) -> str | None:
    """Checked with the library that uses the value: rasterio assigns `crs`, the merge projects the
    coverage to `coverage_crs` with pyproj (each imported only for recipes that set the key)."""
    if library == "rasterio":
        from rasterio.crs import CRS
        from rasterio.errors import CRSError
    else:
        from pyproj import CRS
        from pyproj.exceptions import CRSError
    try:
        CRS.from_user_input(text)
    except (CRSError, ValueError) as exc:  # rasterio: ValueError for an EPSG code that is not a number
        return str(exc)
    return None


def recipe_from_yaml(path: Path, check_values: bool = True) -> Recipe:
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
        where = _key_lines(path, yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CatalogError(f"{path}{line}: not valid YAML ({exc}); fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogError(f"{path}:1: a recipe is a mapping of keys (crs:, nodata:, …), not {type(data).__name__}")
    return _validated(data, path, where, check_values)


def _key_lines(path: Path, node, prefix: str = "") -> dict[str, str]:
    """`key` / `key.subkey` → `file:line` of a YAML mapping's keys, for messages. A key given twice
    in one mapping is refused (YAML would keep the last silently), under `cog:` also in another case."""
    found: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            if key.tag == "tag:yaml.org,2002:merge":  # `<<:` hides which value of a key counts
                raise CatalogError(
                    f"{path}:{key.start_mark.line + 1}: a YAML merge key (<<) in {prefix.rstrip('.') or 'the recipe'}: "
                    "its keys and the ones beside it would silently override each other; write each key once"
                )
            same = str(key.value).upper() if prefix == "cog." else str(key.value)
            if same in seen:
                raise CatalogError(
                    f"{path}:{key.start_mark.line + 1}: {name} is set again (line {seen[same]}), and only one of "
                    "the two values would count; keep one"
                )
            seen[same] = key.start_mark.line + 1
            found[name] = f"{path}:{key.start_mark.line + 1}"
            found.update(_key_lines(path, value, name + "."))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found[f"{prefix}{i}"] = f"{path}:{item.start_mark.line + 1}"
    return found


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
# Mapterhorn scripts that act on the `*.tif` files in source-store/{source}/ when they run, while the
# recipe key they become acts on every raster: their place among the steps that create files matters.
# Before source_unzip.py they miss the rasters it creates (refused); before source_to_cog.py they reach
# each .tif download, which to_cog converts in place (the real catalog's slice → to_cog entries)
_TIF_STEPS = {
    "source_set_crs.py": "crs",
    "source_set_nodata.py": "nodata",
    "source_fix_orientation.py": "fix_orientation",
    "source_slice.py": "slice_px",
}
# Mapterhorn's steps act on the store as it is when they run, in this order: download, then unzip, rm and
# the conversions (the rest), then bounds.csv, coverage and tarball, each made from the files of that moment.
# tilewise always runs them in this order, so a line written out of it cannot keep its meaning (_out_of_order)
_PHASES = {"source_download.py": 0, "source_bounds.py": 2, "source_polygonize.py": 3, "source_create_tarball.py": 4}
_SLICE_NAME = re.compile(r".+_tile_[0-9]+_[0-9]+\.tif")  # source_slice.py's {stem}_tile_{x}_{y}.tif
_RECIPE_HEADERS = ("[no-cd]", "default:")
_RM_OPTIONS = {"-f", "-v", "-fv", "-vf", "--force", "--verbose"}


def recipe_from_justfile(path: Path, source: str, check_values: bool = True) -> Recipe:
    """Translate a Mapterhorn Justfile into a recipe, or fail naming the line it cannot map."""
    values: dict = {}
    where: dict[str, str] = {}
    exclude: list[str] = []
    converts = False
    rewritten = ""  # the first step after which the store holds only outputs: an rm then sees only those
    # A step's place among the steps that create files (see `_order_problem`): the lines still waiting
    # for a later unzip or slice to show whether they mean what the recipe does, and the slice seen
    before_unzip: list[tuple[int, str, str, str]] = []  # (line, text, script or "rm", rm pattern)
    before_slice: list[tuple[int, str, str]] = []  # (line, text, rm pattern)
    sliced = ""
    by_hand: list[tuple[int, str, str]] = []  # (line, text, comment): comments among the steps
    latest: tuple[int, int, str] | None = None  # (phase, line, step) of the step of the latest phase so far
    for lineno, raw in enumerate(lines(read_text(path)), start=1):
        text = raw.strip()
        if not text or text in _RECIPE_HEADERS:
            continue
        if text.startswith("#"):
            if raw[:1].isspace():
                by_hand.append((lineno, text, text[1:].strip()))
            continue

        def fail(why: str, lineno: int = lineno, text: str = text) -> CatalogError:
            return CatalogError(
                f"{path}:{lineno}: cannot map '{text}' to a recipe ({why}). "
                f"Write the recipe as {path.parent / 'source.yaml'} instead."
            )

        if raw[:1].isspace():
            text = text.lstrip("@-")  # Just's line prefixes: quiet, and go on after an error
        try:
            words = shell_words.split(text)
        except shell_words.ShellSyntaxError as exc:
            raise fail(str(exc)) from None
        if not words:
            continue
        if (note := shell_words.comment(text)) and words[0].value != "rm":  # an rm's comment says why it removes
            by_hand.append((lineno, text, note))
        called = [w.value for w in words[:4]]
        step = "rm" if called[0] == "rm" else called[3] if called[:3] == ["uv", "run", "python"] else ""
        phase = _PHASES.get(step, 1)
        if latest and phase < latest[0]:
            raise fail(_out_of_order(*latest))
        if not latest or phase > latest[0]:
            latest = (phase, lineno, step)
        if words[0].value == "rm":
            for pattern in _rm_patterns(words[1:], source, fail):
                if rewritten and not _only_tif(pattern):
                    raise fail(
                        f"after {rewritten} the store holds only the converted {{stem}}.tif files, so this rm "
                        f"removes no download or file inside one, while `exclude: [{pattern!r}]` would; "
                        "delete the line, or limit its pattern to .tif names"
                    )
                if sliced and _could_be_tif(pattern) and not _slices_only(pattern):
                    raise fail(
                        f"{sliced} already replaced every .tif file with its slices {{stem}}_tile_{{x}}_{{y}}.tif, "
                        f"so this rm can remove only slices, while `exclude: [{pattern!r}]` would also drop the "
                        "rasters it names before slicing; delete it if it removes nothing, move it before the slice "
                        "step, or match slice names (a name {stem}_tile_{x}_{y}.tif, or a glob ending in *.tif)"
                    )
                before_unzip.append((lineno, text, "rm", pattern))
                before_slice.append((lineno, text, pattern))
                where.setdefault("exclude", f"{path}:{lineno}")
                where[f"exclude.{len(exclude)}"] = f"{path}:{lineno}"
                exclude.append(pattern)
            continue
        args = [w.value for w in words]
        if args[:3] != ["uv", "run", "python"] or len(args) < 4:
            raise fail("not a Mapterhorn source script call")
        script, args = args[3], args[4:]
        if not args or args[0] != source:
            raise fail(f"its first argument is not the source name {source!r}")
        args = args[1:]
        converts = converts or script in _CONVERTING_SCRIPTS
        if script == "source_unzip.py":
            for line in before_unzip:
                if why := _order_problem(*line, lineno):
                    raise fail(why, lineno=line[0], text=line[1])
            before_unzip.clear()
        if script == "source_slice.py":
            for earlier, earlier_text, pattern in before_slice:
                if _could_match_slice(pattern):
                    raise fail(
                        f"this rm runs before source_slice.py (line {lineno}) creates the slices "
                        f"{{stem}}_tile_{{x}}_{{y}}.tif, so it removes none of them, while `exclude: [{pattern!r}]` "
                        "would drop every slice it matches; delete it if it removes nothing, move it after the "
                        "slice step to remove those slices, or name the files as they are before slicing",
                        lineno=earlier,
                        text=earlier_text,
                    )
            before_slice.clear()
            sliced = f"source_slice.py (line {lineno})"
        if script == "source_set_nodata.py" and sliced:
            # source_slice.py dropped the slices that held only the nodata of that moment; tilewise
            # drops the ones that hold only the recipe's nodata
            raise fail(
                f"{sliced} already dropped the slices holding only a raster's own nodata (none of a raster "
                "without one), so slices holding only this value are kept, while tilewise drops the slices "
                "holding only the recipe's nodata; move this line before the slice step"
            )
        if script in _TIF_STEPS:
            before_unzip.append((lineno, text, script, ""))
        if script in ("source_unzip.py", "source_to_cog.py") and not rewritten:
            rewritten = f"{script} (line {lineno})"
        if script in _ALWAYS_DONE:
            continue
        step = _script_values(script, args, fail)
        for key, value in step.items():
            if key in values:
                raise fail(f"{key} is already set by {where[key]}")
            values[key] = value
            where[key] = f"{path}:{lineno}"
    if exclude:
        values["exclude"] = exclude
    if not converts:  # download → bounds → polygonize → tarball: Mapterhorn ships the downloads as they are
        values["keep_original"] = True
    recipe = _validated(values, path, where, check_values)
    if by_hand:
        raise _done_by_hand(path, by_hand, recipe)
    return recipe


def _done_by_hand(path: Path, by_hand: list[tuple[int, str, str]], recipe: Recipe) -> CatalogError:
    """A comment among a Justfile's steps may record work its maintainers did by hand ("remove
    southern border files", "translate only the .asc files", "fill holes with gdal"): no rule can
    tell from its words whether the files shipped differ, so the entry waits for a person, who gets
    the recipe of the other steps to check and save as source.yaml."""
    lineno, text, note = by_hand[0]
    others = "".join(f"; line {n}: '# {c}'" for n, _, c in by_hand[1:])
    keys = recipe.non_defaults()
    steps = yaml.safe_dump(keys, sort_keys=False, allow_unicode=True) if keys else "{}  # every key at its default\n"
    return CatalogError(
        f"{path}:{lineno}: cannot map '{text}' to a recipe (its comment may record a step done by hand, which "
        f"tilewise cannot repeat: '# {note}'{others}). The other steps make the recipe below: do what the comment "
        f"says (e.g. `exclude:` the files it removes), then save the recipe as {path.parent / 'source.yaml'}, "
        "which is read instead of the Justfile:\n" + "".join(f"  {line}\n" for line in steps.splitlines())
    )


# What C's strtod (GDAL's CPLAtof) and Python's float read whole and alike: decimal, nan, inf
_PLAIN_NUMBER = re.compile(r"\s*[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)\s*", re.IGNORECASE)


def _script_values(script: str, args: list[str], fail) -> dict:
    if script == "source_set_crs.py" and len(args) == 1:
        return {"crs": args[0]}
    if script == "source_set_nodata.py" and len(args) in (1, 2):
        if len(args) == 2 and args[1] != "--force":
            raise fail(f"unknown option {args[1]!r}")
        if not _PLAIN_NUMBER.fullmatch(args[0]):
            raise fail(
                f"nodata {args[0]!r} is not a number as gdal_translate -a_nodata (Mapterhorn's set_nodata) reads it, "
                "whole and alike (C's strtod stops at a '_' or a letter, Python's float does not): write it plainly, "
                "e.g. -9999 or -3.4e38"
            )
        return {"nodata": float(args[0]), "force_nodata": len(args) == 2}
    if script == "source_fix_orientation.py" and not args:
        return {"fix_orientation": True}
    if script == "source_slice.py" and len(args) == 1:
        if not args[0].isdigit():
            raise fail(f"slice size {args[0]!r} is not a whole number of pixels")
        return {"slice_px": int(args[0])}
    raise fail(f"{script} with arguments {args} has no equivalent here")


def _out_of_order(phase: int, line: int, earlier: str) -> str:
    """Why a step written after `earlier` (of a later phase, see _PHASES) does not mean what its recipe does."""
    if phase == 1:
        why = "which ran before any file was downloaded and so changed nothing"
    else:
        made = {2: "bounds.csv", 3: "the coverage", 4: "the tarball"}[phase]
        why = f"which made {made} from the files as they were then, without this step"
    return (
        f"it comes after {earlier} (line {line}), {why}; tilewise runs the steps in Mapterhorn's order, download → "
        "unzip, rm and conversions → bounds → polygonize → tarball: write the lines in that order"
    )


def _order_problem(line: int, text: str, step: str, pattern: str, unzip_line: int) -> str | None:
    """Why a step written before `source_unzip.py` does not mean what its recipe key does, or None.

    Before the unzip, source-store/{source}/ holds only the downloads: a set_crs / set_nodata /
    fix_orientation / slice step reaches the `.tif` files downloaded as they are, never the rasters
    the unzip creates, while the recipe applies the key to every raster; an rm removes downloads,
    while an `exclude` also matches each name inside an archive and each output. Only an rm of
    archives is the same then (unzip never opens an archive inside an archive either)."""
    if step != "rm":
        return (
            f"{step} acts on the .tif files in the store when it runs, and source_unzip.py (line {unzip_line}) "
            f"creates rasters after it that it never reaches, while the recipe's `{_TIF_STEPS[step]}` would apply "
            f"to them too; move this line after line {unzip_line}, or write which rasters get it in a source.yaml"
        )
    if pattern.endswith((".zip", ".7z")):
        return None
    return (
        f"this rm runs before source_unzip.py (line {unzip_line}), when the store holds only the downloads, "
        f"so it removes no file inside an archive nor any raster the unzip creates, while `exclude: [{pattern!r}]` "
        f"would drop those it matches; delete it if it removes nothing, or move it after line {unzip_line} "
        "(it then removes the .tif outputs it matches)"
    )


def _literal_name(pattern: str) -> str | None:
    """The one name a glob matches, or None when it has a wildcard (shell_words writes a quoted
    `*`, `?`, `[` as `[*]`, `[?]`, `[[]`)."""
    name, i = [], 0
    while i < len(pattern):
        if pattern[i : i + 3] in ("[*]", "[?]", "[[]"):
            name.append(pattern[i + 1])
            i += 3
        elif pattern[i] in "*?[":
            return None
        else:
            name.append(pattern[i])
            i += 1
    return "".join(name)


def _could_be_tif(pattern: str) -> bool:
    """Whether a glob may match a name ending in `.tif` (Mapterhorn's outputs and slices): it cannot
    when its last four characters are no wildcard and not `.tif` (`*.tfw`, `a.zip`)."""
    tail = pattern[-4:]
    return tail == ".tif" or any(c in "*?[]" for c in tail)


def _could_match_slice(pattern: str) -> bool:
    """Whether a glob may match a slice name {stem}_tile_{x}_{y}.tif (a wildcard ending in .tif may)."""
    if not _could_be_tif(pattern):
        return False
    name = _literal_name(pattern)
    return name is None or bool(_SLICE_NAME.fullmatch(name))


def _slices_only(pattern: str) -> bool:
    """Whether an rm after source_slice.py means what its `exclude` does: a slice's own name, or a glob
    ending in `*.tif`, which matches every slice of each raster it matches (the `*` takes `_tile_x_y`),
    so dropping that raster drops what the rm removes."""
    name = _literal_name(pattern)
    return bool(_SLICE_NAME.fullmatch(name)) if name is not None else pattern.endswith("*.tif")


def _only_tif(pattern: str) -> bool:
    """A glob that matches only names ending in `.tif` (Mapterhorn's outputs): its last four characters are
    `.tif` itself (none of them is a glob character), whatever comes before (`*.tif`, `MNT_*.tif`)."""
    return pattern.endswith(".tif")


def _rm_patterns(words: list[shell_words.Word], source: str, fail) -> list[str]:
    """`rm [-f] source-store/{source}/PATTERN …` → the patterns, globbing as the shell would."""
    patterns = []
    options_done = False
    for word in words:
        if not options_done and word.value == "--":
            options_done = True
            continue
        if not options_done and word.value.startswith("-") and word.value != "-":
            if word.value not in _RM_OPTIONS:
                raise fail(f"rm option {word.value!r} has no equivalent (only -f and -v)")
            continue
        parts, globbed = word.value.split("/"), word.pattern.split("/")
        if (
            len(parts) != 3
            or parts[0] != "source-store"
            or globbed[:2] != [shell_words.literal(p) for p in parts[:2]]
            or parts[2] in ("", ".", "..")
        ):
            raise fail("it removes something other than files directly in source-store/{source}/")
        if parts[1] != source:
            raise fail(f"it removes a file of another source, {parts[1]}")
        patterns.append(globbed[2])
    if not patterns:
        raise fail("rm names no file")
    return patterns


def load_recipe(entry: Path, check_values: bool = True) -> tuple[Recipe, Path]:
    """The recipe of a catalog entry and the file it came from."""
    if (entry / "source.yaml").is_file():
        return recipe_from_yaml(entry / "source.yaml", check_values), entry / "source.yaml"
    if (entry / "Justfile").is_file():
        return recipe_from_justfile(entry / "Justfile", entry.name, check_values), entry / "Justfile"
    return Recipe(), entry
