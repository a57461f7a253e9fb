import re
from pathlib import Path

import pytest

from tilewise.shared.cog import MAPTERHORN_COG_OPTIONS
from tilewise.shared.errors import CatalogError
from tilewise.sources.recipe import Recipe, glob_match, load_recipe, recipe_from_justfile, recipe_from_yaml

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
    assert mapped >= 105
    # ro: its custom source_unzip_ro.py has no equivalent; the others: a comment among their steps
    assert refused == sorted(BY_HAND | {"ro"})


# Real entries with a comment among their steps ("remove southern border files", "translate only the
# .asc files", "rename files by hand", "fill holes with gdal"; an rm's own comment does not count)
BY_HAND = {"aalv", "debw", "dehamburg", "demv", "desh", "dk", "ee", "es5a", "es5b", "es5c", "es5d"}
BY_HAND |= {f"frrgealti1{r}" for r in ("caribbean", "corse", "guiana", "mayotte", "metro", "reunion", "stpm")}
BY_HAND |= {"itbozen", "itsicily", "nlahn5lowresfilled", "pl1", "pl5", "se"}


def test_justfile_steps_become_recipe_fields():
    shared("catalogs/mapterhorn")
    get = lambda name: recipe_from_justfile(CATALOG / name / "Justfile", name)  # noqa: E731
    assert get("desachsenanhalt").crs == "EPSG:25832"
    assert get("at1").slice_px == 16384
    berlin = get("deberlin")
    assert (berlin.crs, berlin.nodata, berlin.force_nodata, berlin.fix_orientation) == (
        "EPSG:25833",
        -9999,
        False,
        True,
    )
    # a step done by hand ("unzip by hand, it has a nested zip file"): refused, with the other steps' recipe
    with pytest.raises(CatalogError, match="(?s)Justfile:5: .*crs: EPSG:25832\n  nodata: 0.0\n  fix_orientation: true"):
        get("dehamburg")
    assert get("cy").exclude == ("ETRS89_2000_3250.tif",)
    assert get("ukengland").exclude == ("*.tfw", "*.xml", "*.ovr")  # globs, as the shell expands them
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
    notes §3, groups A and B) keep their files byte for byte; every other entry converts. ee, of group
    A, renamed its files by hand (its Justfile says so): refused."""
    kept = set()
    for jf in justfiles():
        try:
            if recipe_from_justfile(jf, jf.parent.name).keep_original:
                kept.add(jf.parent.name)
        except CatalogError:
            pass
    group_a = {"at10", "atburgenland", "beflanders", "debayern", "debug-glo30", "debug-swissalti3d"}
    group_a |= {"deniedersachsen", "denrw", "derlp", "fi", "glo30", "swissalti3d"}
    assert kept == group_a | {"es2a", "es2b", "es2c"}


@pytest.mark.parametrize("key", ["crs: EPSG:25832", "nodata: 0", "fix_orientation: true", "slice_px: 4096"])
def test_keep_original_refuses_converting_keys(tmp_path, key):
    (tmp_path / "source.yaml").write_text(f"keep_original: true\n{key}\n")
    with pytest.raises(CatalogError, match=rf"source.yaml: `keep_original: true` .* but {key.split(':')[0]} convert"):
        recipe_from_yaml(tmp_path / "source.yaml")


def justfile(tmp_path, *body: str) -> Path:
    jf = tmp_path / "x" / "Justfile"
    jf.parent.mkdir(exist_ok=True)
    jf.write_text("# header\n[no-cd]\ndefault:\n" + "".join(f"    {line}\n" for line in body))
    return jf


@pytest.mark.parametrize(
    "line, exclude",
    [
        ("rm source-store/x/*.tfw", ("*.tfw",)),
        ("rm -f source-store/x/a.tif source-store/x/b?.tif  # two files, one glob", ("a.tif", "b?.tif")),
        ("rm -fv -- source-store/x/-odd.tif", ("-odd.tif",)),
        ("rm 'source-store/x/a b.tif'", ("a b.tif",)),
        ('rm "source-store/x/*.tif"', ("[*].tif",)),  # quoted: a file literally named *.tif
        ("rm source-store/x/\\*.tif", ("[*].tif",)),
        ("rm source-store/x/'[1]'*.tif", ("[[]1]*.tif",)),
        ("rm source-store/x/a#b.tif", ("a#b.tif",)),  # # inside a word is not a comment in sh
        ("@rm source-store/x/[0-9]*.xml", ("[0-9]*.xml",)),
        ("-rm --force source-store/x/*.ovr", ("*.ovr",)),
    ],
)
def test_rm_lines_become_glob_excludes(tmp_path, line, exclude):
    assert recipe_from_justfile(justfile(tmp_path, line), "x").exclude == exclude


@pytest.mark.parametrize(
    "steps, line, note",
    [
        (
            ["uv run python source_download.py x", "# fill holes with gdal", "uv run python source_to_cog.py x"],
            5,
            "fill",
        ),
        (["uv run python source_unzip.py x # translate only the .asc files"], 4, "translate only"),
        (["uv run python source_download.py x  #rename files by hand"], 4, "rename files"),
        (["\t# remove southern border files", "uv run python source_unzip.py x"], 4, "remove southern"),
        (
            ["uv run python source_unzip.py x", "uv run python source_set_crs.py x EPSG:25832 # was wrong"],
            5,
            "was wrong",
        ),
        (
            ["uv run python source_unzip.py x", "@uv run python source_polygonize.py x 32 # fixed by hand"],
            5,
            "fixed by",
        ),
    ],
)
def test_a_comment_among_the_steps_is_refused_with_the_recipe_of_the_others(tmp_path, steps, line, note):
    """A comment may record a step its maintainers did by hand: no rule tells from its words whether the
    files shipped differ, so the entry is refused, naming the line and the comment, with the recipe the
    other steps make; saved as source.yaml, that recipe is the Justfile's without its comments."""
    jf = justfile(tmp_path, *steps)
    with pytest.raises(CatalogError, match=rf"Justfile:{line}: cannot map .*# {note}.*save the recipe as") as err:
        recipe_from_justfile(jf, "x")
    text = str(err.value)
    (jf.parent / "source.yaml").write_text(text.split("instead of the Justfile:\n", 1)[1])
    steps_only = [
        ln.split(" #")[0] for ln in jf.read_text().splitlines() if not (ln[:1].isspace() and ln.strip()[0] == "#")
    ]
    jf.write_text("\n".join(steps_only) + "\n")
    assert recipe_from_yaml(jf.parent / "source.yaml") == recipe_from_justfile(jf, "x")


@pytest.mark.parametrize(
    "steps",
    [
        ["uv run python source_unzip.py x", "rm source-store/x/a.tif # this file has a different resolution"],
        ["uv run python source_unzip.py x", "rm source-store/x/a#b.tif"],  # # inside a word: no comment in sh
    ],
)
def test_comments_that_record_no_step_map(tmp_path, steps):
    jf = justfile(tmp_path, *steps)
    jf.write_text("# a comment above the recipe says nothing about its steps\n" + jf.read_text())
    assert recipe_from_justfile(jf, "x").exclude in (("a.tif",), ("a#b.tif",))


@pytest.mark.parametrize("crs", ["'EPSG:25832 #1'", "EPSG:abc", "EPSG:1.5", "epsg:25832x", "EPSG:"])
def test_a_crs_that_is_no_code_is_refused_naming_the_line(tmp_path, crs):
    """A `#` inside quotes is part of the value, as sh reads it (rasterio raised a bare ValueError)."""
    jf = justfile(tmp_path, "uv run python source_unzip.py x", f"uv run python source_set_crs.py x {crs}")
    with pytest.raises(CatalogError, match=r"Justfile:5: crs: .* is not a CRS GDAL knows"):
        recipe_from_justfile(jf, "x")
    quoted = crs if crs.startswith("'") else repr(crs)
    (tmp_path / "x" / "source.yaml").write_text(f"crs: {quoted}\n")
    with pytest.raises(CatalogError, match=r"source.yaml:1: crs: .* is not a CRS GDAL knows"):
        recipe_from_yaml(tmp_path / "x" / "source.yaml")


def test_excludes_match_as_the_shell_globs():
    r = Recipe(exclude=("*.tfw", "[*].tif", "ETRS89_2000_3250.tif", "b?.TIF"))
    assert r.excludes("a.tfw") and r.excludes("*.tif") and not r.excludes("a.tif")
    assert not r.excludes(".hidden.tfw")  # * does not match a leading dot
    assert r.excludes("b1.TIF") and not r.excludes("b1.tif") and not r.excludes("b12.TIF")  # case-sensitive
    assert r.excludes("x.zip", "ETRS89_2000_3250.tif")  # any of a file's names
    assert glob_match(".x", ".*") and glob_match(".x", ".?")


@pytest.mark.parametrize(
    "line, message",
    [
        ("rm -r source-store/x/sub", "rm option '-r' has no equivalent"),
        ("rm source-store/y/a.tif", "removes a file of another source, y"),
        ("rm source-store/x/sub/a.tif", "other than files directly in source-store"),
        ("rm source-store/*/a.tif", "other than files directly in source-store"),
        ("rm source-store/x/", "other than files directly in source-store"),
        ("rm source-store/x/$NAME.tif", "shell syntax '\\$'"),
        ("rm source-store/x/a.tif; rm source-store/x/b.tif", "shell syntax ';'"),
        ("rm source-store/x/`ls`", "shell syntax"),
        ("rm 'source-store/x/a.tif", "unclosed single quote"),
        ('uv run python source_set_crs.py x "EPSG:25832', "unclosed double quote"),
        ("uv run python source_set_nodata.py x minus9999", "nodata 'minus9999' is not a number"),
        ("uv run python source_set_nodata.py x -9_999", "nodata '-9_999' is not a number as gdal_translate"),
        ("uv run python source_set_nodata.py x 0x10", "nodata '0x10' is not a number"),
        ("uv run python source_set_nodata.py x 9999m", "nodata '9999m' is not a number"),
        ("uv run python source_set_nodata.py x -9999 --forse", "unknown option '--forse'"),
        ("uv run python source_slice.py x 16k", "slice size '16k' is not a whole number"),
        ("uv run python source_set_crs.py x {{crs}}", "Just interpolation"),
        ("rm", "rm names no file"),
    ],
)
def test_justfile_lines_that_cannot_map_name_their_line(tmp_path, line, message):
    with pytest.raises(CatalogError, match=rf"Justfile:5: cannot map .*{message}"):
        recipe_from_justfile(justfile(tmp_path, "uv run python source_download.py x", line), "x")


@pytest.mark.parametrize(
    "body, message",
    [
        (["uv run python source_slice.py x 100"], r"Justfile:4: \$.slice_px: 100 is less than the minimum of 512"),
        (["uv run python source_set_crs.py x UTM32"], r"Justfile:4: crs: 'UTM32' is not a CRS GDAL knows .*-a_srs"),
        (["uv run python source_set_crs.py x EPSG:999999"], r"Justfile:4: crs: 'EPSG:999999' is not a CRS"),
        (
            ["uv run python source_set_crs.py x EPSG:25832", "uv run python source_set_crs.py x EPSG:25833"],
            r"Justfile:5: cannot map .*crs is already set by .*Justfile:4",
        ),
    ],
)
def test_justfile_recipes_pass_the_schema_and_value_checks(tmp_path, body, message):
    with pytest.raises(CatalogError, match=message):
        recipe_from_justfile(justfile(tmp_path, *body), "x")


def test_justfile_that_is_not_utf8(tmp_path):
    jf = justfile(tmp_path, "uv run python source_download.py x")
    jf.write_bytes(jf.read_bytes() + b"    rm source-store/x/caf\xe9.tif\n")
    with pytest.raises(CatalogError, match=r"Justfile:5: not UTF-8 text"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize(
    "text, message",
    [
        ("cog:\n  COMPRESS: NOSUCHCODEC\n", r"source.yaml:2: cog.COMPRESS: 'NOSUCHCODEC' is not one of NONE, LZW"),
        ("cog:\n  COMPRES: LERC\n", r"source.yaml:2: cog.COMPRES: not a creation option of GDAL's COG driver"),
        ("cog:\n  BLOCKSIZE: 64\n", r"cog.BLOCKSIZE: 64 is below the minimum 128"),
        ("cog:\n  BLOCKSIZE: abc\n", r"cog.BLOCKSIZE: 'abc' is not an integer"),
        ("cog:\n  MAX_Z_ERROR: 1mm\n", r"cog.MAX_Z_ERROR: '1mm' is not a number"),
        ("cog:\n  SPARSE_OK: maybe\n", r"cog.SPARSE_OK: 'maybe' is not a boolean"),
        ("cog:\n  SPARSE_OK: yes\n", r"\$.cog.SPARSE_OK: True is not of type"),  # YAML's yes is a bool
        ("nodata: 0\ncrs: EPSG:999999\n", r"source.yaml:2: crs: 'EPSG:999999' is not a CRS GDAL knows"),
        ("crs: ESRI:1\n", r"crs: 'ESRI:1' is not a CRS"),
        ("coverage_crs: EPSG:123456\n", r"source.yaml:1: coverage_crs: 'EPSG:123456' is not a CRS PROJ knows"),
        ("- crs\n", r"source.yaml:1: a recipe is a mapping"),
        ("crs: [EPSG:1\n", r"source.yaml:\d: not valid YAML"),
        ("exclude: [a/b.tif]\n", r"source.yaml:1: \$.exclude\[0\]: 'a/b.tif' has a '/': .* glob \(\*.tif\)\n"),
        ("crs: UTM32\n", r"source.yaml:1: crs: 'UTM32' is not a CRS GDAL knows .*EPSG:25832\+7837$"),
    ],
)
def test_source_yaml_values_are_checked_before_any_download(tmp_path, text, message):
    (tmp_path / "source.yaml").write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_recipe(tmp_path)


def test_good_cog_options_pass_and_mapterhorns_need_no_gdal_call(tmp_path):
    (tmp_path / "source.yaml").write_text("cog:\n  COMPRESS: deflate\n  PREDICTOR: 2\n  LEVEL: 9\n  BLOCKSIZE: 256\n")
    recipe, _ = load_recipe(tmp_path)
    assert recipe.cog["COMPRESS"] == "deflate" and recipe.cog["BLOCKSIZE"] == 256
    from tilewise.shared.cog import cog_option_problems

    assert cog_option_problems(MAPTERHORN_COG_OPTIONS) == []


@pytest.mark.parametrize(
    "step, line",
    [
        ("source_unzip.py", "rm -f source-store/x/*.zip"),  # unzip deleted the archives: this rm is a no-op
        ("source_to_cog.py", "rm source-store/x/*.tfw"),  # to_cog left only {stem}.tif files
        ("source_unzip.py", "rm source-store/x/*"),
    ],
)
def test_an_rm_after_the_store_holds_only_outputs_must_match_only_outputs(tmp_path, step, line):
    body = ("uv run python source_download.py x", f"uv run python {step} x", line)
    with pytest.raises(CatalogError, match=rf"Justfile:6: cannot map .*after {step} \(line 5\).*exclude"):
        recipe_from_justfile(justfile(tmp_path, *body), "x")


def test_an_rm_of_an_output_after_unzip_and_one_before_to_cog_map(tmp_path):
    after = justfile(tmp_path, "uv run python source_unzip.py x", "rm source-store/x/MNT_Z3.tif")  # lu's
    assert recipe_from_justfile(after, "x").exclude == ("MNT_Z3.tif",)
    before = justfile(tmp_path, "rm source-store/x/*.tfw", "uv run python source_to_cog.py x")  # ukengland's
    assert recipe_from_justfile(before, "x").exclude == ("*.tfw",)
    for glob in ("*.tif", "MNT_*.tif", "x?.tif", "[ab]*.tif"):  # globs that can only match outputs
        globbed = justfile(tmp_path, "uv run python source_unzip.py x", f"rm source-store/x/{glob}")
        assert recipe_from_justfile(globbed, "x").exclude == (glob,)


@pytest.mark.parametrize("crs", ["EPSG:25832+7837", "EPSG:2056+5728", "+proj=utm +zone=32 +ellps=GRS80", "EPSG:25832"])
def test_any_crs_gdal_assigns_is_accepted(tmp_path, crs):
    (tmp_path / "source.yaml").write_text(f"crs: '{crs}'\n")
    assert load_recipe(tmp_path)[0].crs == crs
    (tmp_path / "source.yaml").unlink()
    just = justfile(tmp_path, "uv run python source_download.py x", f"uv run python source_set_crs.py x '{crs}'")
    assert recipe_from_justfile(just, "x").crs == crs  # Mapterhorn's set_crs passes it to gdal_translate -a_srs


@pytest.mark.parametrize(
    "text, line, key, first",
    [
        ('crs: "EPSG:25832"\nnodata: -9999\ncrs: "EPSG:25833"\n', 3, "crs", 1),
        ("exclude: ['*.txt']\nfix_orientation: true\nexclude: ['*.pdf']\n", 3, "exclude", 1),
        ("cog:\n  COMPRESS: DEFLATE\n  LEVEL: 9\n  compress: LERC\n", 4, "cog.compress", 2),
        ("cog:\n  BLOCKSIZE: 256\n  BLOCKSIZE: 512\n", 3, "cog.BLOCKSIZE", 2),
        ("? crs\n: EPSG:25832\ncrs: EPSG:25833\n", 3, "crs", 1),
    ],
)
def test_a_key_set_twice_in_source_yaml_is_refused_naming_both_lines(tmp_path, text, line, key, first):
    """YAML keeps the last of two equal keys silently (and GDAL reads option names in any case): which
    one the producer meant is unclear, like a Justfile step's value set twice."""
    (tmp_path / "source.yaml").write_text(text)
    with pytest.raises(CatalogError, match=rf"source.yaml:{line}: {re.escape(key)} is set again \(line {first}\)"):
        load_recipe(tmp_path)


def test_a_cog_option_in_lower_case_replaces_mapterhorns(tmp_path):
    (tmp_path / "source.yaml").write_text("cog:\n  compress: deflate\n  predictor: 2\n")
    recipe, _ = load_recipe(tmp_path)
    assert recipe.cog["COMPRESS"] == "deflate" and recipe.cog["PREDICTOR"] == 2
    assert all(k == k.upper() for k in recipe.cog)


@pytest.mark.parametrize(
    "text, line",
    [
        ("base: &b {crs: 'EPSG:25833', nodata: 0}\n", None),
        ("crs: 'EPSG:25832'\n<<: {crs: 'EPSG:25833', nodata: 0}\nnodata: -9999\n", 2),
        ("<<: [{crs: 'EPSG:25832'}, {crs: 'EPSG:25833'}]\n", 1),
        ("cog:\n  <<: {BLOCKSIZE: 256}\n  blocksize: 512\n", 2),
    ],
)
def test_yaml_merge_keys_are_refused_in_source_yaml(tmp_path, text, line):
    """`<<:` merges keys under rules that silently drop values (an explicit key wins, the first of a list
    wins): which one the producer meant is unclear."""
    (tmp_path / "source.yaml").write_text(text)
    if line is None:  # an anchor alone is no merge: only the schema refuses the unknown key
        with pytest.raises(CatalogError, match="base"):
            load_recipe(tmp_path)
        return
    with pytest.raises(CatalogError, match=rf"source.yaml:{line}: a YAML merge key"):
        load_recipe(tmp_path)


DL, UNZIP = "uv run python source_download.py x", "uv run python source_unzip.py x"
SLICE, CRS = "uv run python source_slice.py x 512", "uv run python source_set_crs.py x EPSG:2056"


@pytest.mark.parametrize(
    "step, key",
    [
        ("uv run python source_set_crs.py x EPSG:25832", "crs"),
        ("uv run python source_set_nodata.py x -9999", "nodata"),
        ("uv run python source_set_nodata.py x 0 --force", "nodata"),
        ("uv run python source_fix_orientation.py x", "fix_orientation"),
        ("uv run python source_slice.py x 1024", "slice_px"),
    ],
)
def test_a_tif_step_before_the_unzip_is_refused(tmp_path, step, key):
    """Mapterhorn's step reaches only the .tif files in the store when it runs (the plain downloads), not
    the rasters source_unzip.py creates later; the recipe key would apply to those too (b.tif from b.zip
    got a.tif's EPSG:25832, 420 km off its own EPSG:25833)."""
    jf = justfile(tmp_path, DL, step, "uv run python source_to_cog.py x", UNZIP)
    message = rf"Justfile:5: cannot map '{re.escape(step)}' .*source_unzip.py \(line 7\).*`{key}`.*after line 7"
    with pytest.raises(CatalogError, match=message):
        recipe_from_justfile(jf, "x")
    after = justfile(tmp_path, DL, UNZIP, step)  # after it: every raster is a .tif in the store
    assert getattr(recipe_from_justfile(after, "x"), key) != getattr(Recipe(), key)


@pytest.mark.parametrize("pattern", ["dem.tif", "*.tif", "*.tfw", "*.xml", "dem.asc", "*", "x.7z.*"])
def test_an_rm_before_the_unzip_is_refused_unless_it_names_archives(tmp_path, pattern):
    """Before the unzip the store holds only the downloads: `rm -f dem.tif` removes nothing and the unzip
    then creates dem.tif, which Mapterhorn ships; an exclude would drop it (and sidecars inside archives)."""
    jf = justfile(tmp_path, DL, f"rm -f source-store/x/{pattern}", UNZIP)
    with pytest.raises(CatalogError, match=r"Justfile:5: cannot map 'rm -f .*before source_unzip.py \(line 6\)"):
        recipe_from_justfile(jf, "x")
    for archives in ("*.zip", "old.zip", "b.7z"):  # unzip never opens an archive inside one either
        jf = justfile(tmp_path, DL, f"rm source-store/x/{archives}", UNZIP)
        assert recipe_from_justfile(jf, "x").exclude == (archives,)


@pytest.mark.parametrize("pattern", ["dem_tile_*.tif", "*.tif", "*_0.tif", "dem_tile_0_512.tif", "d?m.tif"])
def test_an_rm_before_the_slice_that_could_match_slices_is_refused(tmp_path, pattern):
    """The slices do not exist yet when it runs: Mapterhorn's rm removes none; an exclude drops them all."""
    jf = justfile(tmp_path, DL, "uv run python source_to_cog.py x", f"rm -f source-store/x/{pattern}", SLICE)
    with pytest.raises(CatalogError, match=r"Justfile:6: cannot map .*before source_slice.py \(line 7\) creates"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize("pattern", ["dem.tif", "a?.tif", "[ab].tif", "*"])
def test_an_rm_after_the_slice_of_what_it_sliced_is_refused(tmp_path, pattern):
    """source_slice.py deleted dem.tif: `rm -f dem.tif` after it removes nothing and the slices ship; an
    exclude of dem.tif would drop the raster and so every slice."""
    jf = justfile(tmp_path, DL, SLICE, f"rm -f source-store/x/{pattern}", "uv run python source_to_cog.py x")
    with pytest.raises(CatalogError, match=r"Justfile:6: cannot map .*source_slice.py \(line 5\) already replaced"):
        recipe_from_justfile(jf, "x")


def test_set_nodata_after_the_slice_is_refused(tmp_path):
    """The slice step dropped the slices holding only the nodata of that moment (none of a raster without
    one); tilewise drops those holding only the recipe's nodata."""
    jf = justfile(tmp_path, DL, UNZIP, SLICE, "uv run python source_set_nodata.py x -9999")
    with pytest.raises(CatalogError, match=r"Justfile:7: cannot map .*source_slice.py \(line 6\) already dropped"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize(
    "body, exclude",
    [
        ((DL, "rm source-store/x/ETRS89_2000_3250.tif", "uv run python source_to_cog.py x"), ("ETRS89_2000_3250.tif",)),
        ((DL, "rm source-store/x/*.tfw", SLICE, "uv run python source_to_cog.py x"), ("*.tfw",)),
        ((DL, UNZIP, "rm source-store/x/dem.tif", SLICE), ("dem.tif",)),  # removed before it is sliced
        ((DL, UNZIP, SLICE, "rm source-store/x/dem_tile_0_512.tif"), ("dem_tile_0_512.tif",)),  # one slice
        ((DL, UNZIP, SLICE, "rm -f source-store/x/dem*.tif"), ("dem*.tif",)),  # matches all of dem's slices too
        ((DL, "rm source-store/x/*.zip", UNZIP, "uv run python source_set_crs.py x EPSG:25832"), ("*.zip",)),
        ((DL, SLICE, "uv run python source_to_cog.py x", CRS), ()),
        ((DL, UNZIP, "uv run python source_set_nodata.py x 0", SLICE, CRS), ()),
        ((DL, CRS), ()),  # no unzip: it reaches every download
    ],
)
def test_orders_whose_meaning_is_the_recipes_stay_accepted(tmp_path, body, exclude):
    assert recipe_from_justfile(justfile(tmp_path, *body), "x").exclude == exclude


BOUNDS, POLY = "uv run python source_bounds.py x", "uv run python source_polygonize.py x 32"
TAR, TO_COG = "uv run python source_create_tarball.py x", "uv run python source_to_cog.py x"
NODATA, RM = "uv run python source_set_nodata.py x -9999", "rm source-store/x/a.tif"


@pytest.mark.parametrize(
    "body, line, after",
    [
        ((CRS, DL, BOUNDS, TAR), 5, "source_set_crs.py (line 4)"),  # the download comes after the step
        ((RM, DL, TO_COG, BOUNDS, TAR), 5, "rm (line 4)"),  # removed nothing: the store was empty
        ((UNZIP, DL, BOUNDS, TAR), 5, "source_unzip.py (line 4)"),
        ((DL, BOUNDS, CRS, TAR), 6, "source_bounds.py (line 5)"),  # bounds.csv made before it
        ((DL, TO_COG, BOUNDS, POLY, NODATA, TAR), 8, "source_polygonize.py (line 7)"),
        ((DL, BOUNDS, POLY, TAR, TO_COG), 8, "source_create_tarball.py (line 7)"),  # shipped the downloads
        ((DL, TO_COG, BOUNDS, POLY, TAR, RM), 9, "source_create_tarball.py (line 8)"),  # shipped a.tif
        ((DL, TO_COG, BOUNDS, "uv run python source_fix_orientation.py x", TAR), 7, "source_bounds.py (line 6)"),
        ((DL, TO_COG, TAR, BOUNDS, POLY), 7, "source_create_tarball.py (line 6)"),  # shipped no bounds.csv
        ((DL, BOUNDS, DL, TO_COG, TAR), 6, "source_bounds.py (line 5)"),  # a second download after the bounds
    ],
)
def test_a_step_out_of_mapterhorns_order_is_refused_naming_its_line(tmp_path, body, line, after):
    """Each of Mapterhorn's steps acts on the store as it is when it runs: a conversion or rm before the
    download finds nothing, one after source_bounds.py / source_create_tarball.py changes files whose
    bounds row or tarball were already made (the tarball ships the downloads unconverted). tilewise always
    runs download → unzip, rm, conversions → bounds → polygonize → tarball, so such a line is refused."""
    text = justfile(tmp_path, *body).read_text().splitlines()[line - 1].strip()
    message = rf"Justfile:{line}: cannot map '{re.escape(text)}' .*after {re.escape(after)}"
    with pytest.raises(CatalogError, match=message):
        recipe_from_justfile(tmp_path / "x" / "Justfile", "x")


@pytest.mark.parametrize(
    "body",
    [
        (DL, DL, UNZIP, CRS, BOUNDS, POLY, TAR),  # the same download line twice: wget --continue fetches nothing
        (DL, TO_COG, BOUNDS, BOUNDS, POLY, TAR),
        (DL, RM, TO_COG, CRS, NODATA, BOUNDS, POLY, TAR),
        (DL, BOUNDS, POLY, TAR),
    ],
)
def test_steps_in_mapterhorns_order_map(tmp_path, body):
    recipe_from_justfile(justfile(tmp_path, *body), "x")


@pytest.mark.parametrize(
    "line",
    [
        "rm source-store/x/{a,b}.tif",  # bash: rm a.tif b.tif; dash: a file named {a,b}.tif
        "rm -f source-store/x/dem_{1..3}.tif",  # bash: dem_1.tif dem_2.tif dem_3.tif
        "rm source-store/x/{a,{b,c}}.tif",
        "rm source-store/x/{a,'b c'}.tif",
        "uv run python source_set_crs.py x EPSG:{25832,25833}",
    ],
)
def test_a_brace_expansion_is_refused_naming_its_line(tmp_path, line):
    """Just runs a line with `sh`: bash (sh on macOS) expands `{a,b}` and `{1..3}` into several words, dash
    (sh on Debian) keeps them as they are, so which files the line names depends on the machine; mapped, the
    braces were a literal file name and the exclude dropped nothing."""
    jf = justfile(tmp_path, DL, UNZIP, line)
    with pytest.raises(CatalogError, match=r"Justfile:6: cannot map .*brace expansion.*bash.*dash.*each name"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize(
    "line, exclude",
    [
        ("rm source-store/x/'{a,b}'.tif", "{a,b}.tif"),  # quoted: a literal name in every shell
        ('rm source-store/x/"dem_{1..3}.tif"', "dem_{1..3}.tif"),
        ("rm source-store/x/\\{a,b}.tif", "{a,b}.tif"),
        ("rm source-store/x/{a}.tif", "{a}.tif"),  # no comma nor range: bash keeps it too
        ("rm source-store/x/a,b.tif", "a,b.tif"),
    ],
)
def test_braces_every_shell_keeps_map(tmp_path, line, exclude):
    assert recipe_from_justfile(justfile(tmp_path, DL, UNZIP, line), "x").exclude == (exclude,)


@pytest.mark.parametrize(
    "pattern, why",
    [
        ("dem[[:digit:]].tif", r"\[:digit:\].*\[0-9\]"),  # sh removes dem1.tif; fnmatch matched no such name
        ("[[:alpha:]]*.tif", r"\[:alpha:\]"),
        ("dem_[![:space:]]*.tfw", r"\[:space:\]"),
        ("[[=e=]]x.tif", r"\[=e=\]"),
        ("[^a]*.tif", r"negation in bash .*\[!"),  # bash: not a…; dash and fnmatch: ^ or a
        ("x_[^0-9].xml", r"negation in bash"),
    ],
)
def test_a_bracket_expression_fnmatch_reads_otherwise_is_refused(tmp_path, pattern, why):
    """An exclude (an rm of a Justfile) is a shell glob, matched with Python's fnmatch, which knows no POSIX
    class ([[:digit:]] was a set of the characters '[', ':', 'd', …, so the exclude dropped nothing) and reads
    [^…] as dash does, where bash negates it."""
    (tmp_path / "source.yaml").write_text(f"crs: EPSG:25832\nexclude:\n  - '*.zip'\n  - '{pattern}'\n")
    with pytest.raises(CatalogError, match=rf"source.yaml:4: exclude.1: .*{why}"):
        load_recipe(tmp_path)
    (tmp_path / "source.yaml").write_text(f"prefix_names_from: ['{pattern}']\n")
    with pytest.raises(CatalogError, match=rf"source.yaml:1: prefix_names_from.0: .*{why}"):
        load_recipe(tmp_path)
    jf = justfile(tmp_path, DL, f"rm -f source-store/x/{pattern}", TO_COG)
    with pytest.raises(CatalogError, match=rf"Justfile:5: exclude.0: .*{why}"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize("pattern", ["[!a]*.tif", "dem[0-9].tif", "[]a].tif", "a[^.tif", "'[^a]'.tif", "[[]x.tif"])
def test_bracket_expressions_every_shell_reads_alike_map(tmp_path, pattern):
    recipe_from_justfile(justfile(tmp_path, DL, UNZIP, f"rm -f source-store/x/{pattern}"), "x")


@pytest.mark.parametrize(
    "pattern",
    ["[a\\-z].tif", "[\\!a]*.tif", "[a'-'z].tif", '[x"!"]*.tif', "dem[\\^0].tif"],
)
def test_a_quoted_character_inside_a_bracket_expression_is_refused(tmp_path, pattern):
    """sh takes a quoted character inside [...] literally ([a\\-z]: a, - or z; [\\!a]: ! or a); a glob has no
    way to say so, and unquoted it became a range or a negation, so the exclude dropped other files."""
    jf = justfile(tmp_path, DL, f"rm -f source-store/x/{pattern}", TO_COG)
    with pytest.raises(CatalogError, match=r"Justfile:5: cannot map .*quoted character inside a bracket expression"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize("crs", ["EPSG:4978", "EPSG:5783", "+proj=geocent +datum=WGS84", "EPSG:4936"])
def test_a_recipe_crs_that_holds_no_grid_is_refused_naming_the_line(tmp_path, crs):
    """A geocentric CRS (X, Y, Z from the Earth's centre) or heights alone cannot place a raster's columns
    and rows: GDAL assigns it, and the files landed on the equator."""
    jf = justfile(tmp_path, DL, TO_COG, f"uv run python source_set_crs.py x '{crs}'")
    with pytest.raises(CatalogError, match=r"Justfile:6: crs: .* is a (Geocentric|Vertical) CRS, not .*e.g. EPSG"):
        recipe_from_justfile(jf, "x")


@pytest.mark.parametrize(
    "cog, key",
    [
        ("TARGET_SRS: EPSG:4326", "TARGET_SRS"),  # exited 0 with the raster resampled onto a lon/lat grid
        ("TILING_SCHEME: GoogleMapsCompatible", "TILING_SCHEME"),
        ("RES: 2", "RES"),
        ("EXTENT: '0,0,10,10'", "EXTENT"),
        ("ZOOM_LEVEL: 12", "ZOOM_LEVEL"),
    ],
)
def test_cog_options_that_warp_are_refused_naming_the_line(tmp_path, cog, key):
    (tmp_path / "source.yaml").write_text(f"crs: EPSG:25832\ncog:\n  {cog}\n")
    with pytest.raises(CatalogError, match=rf"source.yaml:3: cog.{key}: makes GDAL's COG driver warp"):
        load_recipe(tmp_path)
    (tmp_path / "source.yaml").write_text("cog:\n  TILING_SCHEME: CUSTOM\n")  # the default: no warp
    assert load_recipe(tmp_path)[0].cog["TILING_SCHEME"] == "CUSTOM"


@pytest.mark.parametrize("value", ["AUTO", "auto", "FORCE_USE_EXISTING"])
def test_cog_overviews_copied_from_the_source_are_refused_naming_the_line(tmp_path, value):
    """OVERVIEWS AUTO (GDAL's default) or FORCE_USE_EXISTING copy a raster's existing overviews into the COG: a
    stale `.ovr` beside a re-exported GeoTIFF shipped 999 m overviews over 250 m pixels. IGNORE_EXISTING computes
    them from the COG's pixels, NONE (Mapterhorn's) writes none."""
    (tmp_path / "source.yaml").write_text(f"crs: EPSG:25832\ncog:\n  OVERVIEWS: {value}\n")
    with pytest.raises(CatalogError, match=r"source.yaml:3: cog.OVERVIEWS: copies the source's existing overviews"):
        load_recipe(tmp_path)
    for kept in ("IGNORE_EXISTING", "NONE"):
        (tmp_path / "source.yaml").write_text(f"cog:\n  OVERVIEWS: {kept}\n")
        assert load_recipe(tmp_path)[0].cog["OVERVIEWS"] == kept
