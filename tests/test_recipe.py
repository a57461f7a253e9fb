import re
from pathlib import Path

import pytest

from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
from tilewise.shared.errors import CatalogError
from tilewise.sources.recipe import Recipe, load_recipe, recipe_from_justfile, recipe_from_yaml

from conftest import CATALOG, shared


def justfiles():
    shared("catalogs/mapterhorn")
    return sorted(CATALOG.glob("*/Justfile"))


def test_every_catalog_justfile_maps_or_names_its_line():
    mapped, refused = 0, []
    for jf in justfiles():
        try:
            recipe = recipe_from_justfile(jf, jf.parent.name)
            assert isinstance(recipe, Recipe)
            mapped += 1
        except CatalogError as err:
            # the message names file:line and quotes the line it cannot map
            m = re.match(rf"{re.escape(str(jf))}:(\d+): cannot map '(.+?)' to a recipe", str(err))
            assert m, err
            line = jf.read_text().splitlines()[int(m[1]) - 1].strip()
            assert line == m[2]
            refused.append(jf.parent.name)
    assert mapped >= 125
    assert refused == ["ro"]  # its custom source_unzip_ro.py has no equivalent


def test_justfile_steps_become_recipe_fields():
    shared("catalogs/mapterhorn")
    get = lambda name: recipe_from_justfile(CATALOG / name / "Justfile", name)  # noqa: E731
    assert get("desachsenanhalt").crs == "EPSG:25832"
    assert get("at1").slice_px == 16384
    hamburg = get("dehamburg")
    assert (hamburg.crs, hamburg.nodata, hamburg.force_nodata, hamburg.fix_orientation) == (
        "EPSG:25832",
        0.0,
        False,
        True,
    )
    assert get("demv").nodata == -9999
    assert get("cy").exclude == ("ETRS89_2000_3250.tif",)
    assert get("denrw") == Recipe(keep_original=True)
    assert get("denrw").cog == MAPTERHORN_COG_OPTIONS


def test_force_flag_and_unknown_script(tmp_path):
    jf = tmp_path / "Justfile"
    jf.write_text("default:\n    uv run python source_set_nodata.py x -9999 --force\n")
    r = recipe_from_justfile(jf, "x")
    assert (r.nodata, r.force_nodata) == (-9999, True)
    jf.write_text("default:\n    uv run python source_download.py x\n    uv run python source_magic.py x 3\n")
    with pytest.raises(CatalogError, match=r"Justfile:3: cannot map 'uv run python source_magic.py x 3'"):
        recipe_from_justfile(jf, "x")
    jf.write_text("default:\n    uv run python source_set_crs.py other EPSG:2056\n")
    with pytest.raises(CatalogError, match="first argument is not the source name"):
        recipe_from_justfile(jf, "x")


def test_source_yaml_is_validated(tmp_path):
    (tmp_path / "source.yaml").write_text("crs: EPSG:2056\nnodata: -9999\nslice_px: 4096\n")
    recipe, origin = load_recipe(tmp_path)
    assert (recipe.crs, recipe.nodata, recipe.slice_px, origin.name) == ("EPSG:2056", -9999, 4096, "source.yaml")
    (tmp_path / "source.yaml").write_text("crs: EPSG:2056\nnodat: -9999\n")
    with pytest.raises(CatalogError, match=r"(?s)source.yaml: the recipe does not match.*'nodat' was unexpected"):
        load_recipe(tmp_path)
    (tmp_path / "source.yaml").write_text("fix_orientation: 'yes'\n")
    with pytest.raises(CatalogError, match=r"\$.fix_orientation: 'yes' is not of type 'boolean'"):
        recipe_from_yaml(tmp_path / "source.yaml")


def test_source_yaml_wins_over_justfile(tmp_path):
    (tmp_path / "Justfile").write_text("default:\n    uv run python source_set_crs.py e EPSG:25832\n")
    (tmp_path / "source.yaml").write_text("crs: EPSG:25833\n")
    assert load_recipe(tmp_path)[0].crs == "EPSG:25833"
    assert load_recipe(Path(tmp_path / "missing"))[0] == Recipe()


def test_download_only_justfiles_keep_the_producer_files():
    """Mapterhorn's download-only entries (no unzip, to_cog, set_*, fix_orientation or slice step; parity
    notes §3, groups A and B) keep their files byte for byte; every other entry converts."""
    kept = set()
    for jf in justfiles():
        try:
            if recipe_from_justfile(jf, jf.parent.name).keep_original:
                kept.add(jf.parent.name)
        except CatalogError:
            pass
    group_a = {"at10", "atburgenland", "beflanders", "debayern", "debug-glo30", "debug-swissalti3d"}
    group_a |= {"deniedersachsen", "denrw", "derlp", "ee", "fi", "glo30", "swissalti3d"}
    assert kept == group_a | {"es2a", "es2b", "es2c"}


@pytest.mark.parametrize("key", ["crs: EPSG:25832", "nodata: 0", "fix_orientation: true", "slice_px: 4096"])
def test_keep_original_refuses_converting_keys(tmp_path, key):
    (tmp_path / "source.yaml").write_text(f"keep_original: true\n{key}\n")
    with pytest.raises(CatalogError, match=rf"source.yaml: `keep_original: true` .* but {key.split(':')[0]} convert"):
        recipe_from_yaml(tmp_path / "source.yaml")
