"""The merge without Snakemake: names checked before the store changes, placement, pruning, bad ledgers."""

import json
from pathlib import Path

import pytest

from tilewise.shared.errors import TilewiseError
from tilewise.sources import ledger
from tilewise.sources.merge import check_ledgers_match_the_list, check_names, outputs_of, place_in_store, prune
from tilewise.sources.recipe import Recipe


def write_ledger(root: Path, chunk: str, files: dict[str, list[tuple[str, str]]]) -> Path:
    """`files`: download name → [(raster inside it, output name)]; every output 10 bytes, staged."""
    records = []
    for n, (download, outs) in enumerate(files.items()):
        outputs = []
        for raster, name in outs:
            staged = f"{n:05d}-{name}"
            (root / "staging" / chunk).mkdir(parents=True, exist_ok=True)
            (root / "staging" / chunk / staged).write_bytes(b"0123456789")
            outputs.append(
                {"filename": name, "bytes": 10, "md5": "0" * 32, "staged": staged, "raster": raster}
                | {"crs": "EPSG:3857", "coverage_wkb": ""}
            )
        records.append({"url": f"http://h/{download}", "file": download, "status": "ok", "outputs": outputs})
    path = root / "chunks" / f"{chunk}.json"
    ledger.write(path, ledger.Ledger("s", chunk, {}, records))
    return path


def test_collisions_name_every_maker_and_offer_the_fix_that_works(tmp_path):
    a = write_ledger(tmp_path, "0000", {"A.zip": [("dem.asc", "dem.tif")], "t.zip": [("t.tif", "t.tif")]})
    b = write_ledger(tmp_path, "0001", {"B.zip": [("sub/DEM.tif", "DEM.tif")]})
    made = outputs_of(ledger.read_all([a, b]))
    lines = {"http://h/A.zip": 3, "http://h/B.zip": 7}
    with pytest.raises(TilewiseError) as err:
        check_names(made, lines, tmp_path / "source.yaml", Recipe(), tmp_path / "store")
    text = str(err.value)
    assert "dem.asc in A.zip (line 3, chunk 0000)" in text and "sub/DEM.tif in B.zip (line 7, chunk 0001)" in text
    assert "prefix_names_from:\n    - A.zip\n    - B.zip" in text and "set in" in text
    # a Justfile entry gets the whole recipe as a source.yaml to write
    (tmp_path / "Justfile").write_text("default:\n")
    with pytest.raises(
        TilewiseError, match=r"(?s)the recipe comes from .*Justfile; write it as .*source.yaml:.*crs: EPSG"
    ):
        check_names(made, lines, tmp_path / "Justfile", Recipe(crs="EPSG:25832"), tmp_path / "store")


def test_when_prefixing_would_still_collide_the_fix_keeps_one_download(tmp_path):
    # dem.tif and dem.asc downloaded as they are: prefixed with their stems both become dem_dem.tif
    a = write_ledger(tmp_path, "0000", {"dem.tif": [("dem.tif", "dem.tif")]})
    b = write_ledger(tmp_path, "0001", {"dem.asc": [("dem.asc", "dem.tif")]})
    with pytest.raises(TilewiseError, match=r"(?s)keep one download \(dem.asc\).*exclude:\n    - dem.tif"):
        check_names(outputs_of(ledger.read_all([a, b])), {}, tmp_path / "source.yaml", Recipe(), tmp_path / "s")


def test_placement_and_pruning_follow_the_ledgers(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "old.tif").write_bytes(b"x")  # made by a URL that left the list
    (store / "kept.tif").write_bytes(b"0123456789")  # placed by an earlier merge
    (store / "bounds.csv").write_text("filename\n")
    a = write_ledger(tmp_path, "0000", {"n.zip": [("n.tif", "new.tif")]})
    b = write_ledger(tmp_path, "0001", {"k.zip": [("k.tif", "kept.tif")]})
    (tmp_path / "staging" / "0001" / "00000-kept.tif").unlink()  # already moved by that merge
    gone = write_ledger(tmp_path, "0002", {"g.zip": [("g.tif", "g.tif")]})  # a chunk no longer planned
    made = outputs_of(ledger.read_all([a, b]))
    place_in_store(made, tmp_path / "staging", store)
    removed = prune(store, tmp_path / "staging", {m.name for m in made}, "bounds.csv", [a, b])
    assert removed == ["old.tif"] and sorted(p.name for p in store.iterdir()) == ["bounds.csv", "kept.tif", "new.tif"]
    assert not gone.exists() and not (tmp_path / "staging" / "0002").exists()


def test_a_cog_lost_from_the_store_removes_its_ledger_and_says_run_again(tmp_path):
    a = write_ledger(tmp_path, "0000", {"a.zip": [("a.tif", "a.tif")]})
    b = write_ledger(tmp_path, "0001", {"b.zip": [("b.tif", "b.tif")]})
    (tmp_path / "staging" / "0001" / "00000-b.tif").unlink()  # neither staged nor in the store
    with pytest.raises(TilewiseError, match=r"(?s)store/b.tif: missing.*ledgers of their chunks were removed"):
        place_in_store(outputs_of(ledger.read_all([a, b])), tmp_path / "staging", tmp_path / "store")
    assert a.exists() and not b.exists()
    assert not (tmp_path / "store" / "a.tif").exists()  # nothing moved before the check passed


def test_ledgers_that_do_not_match_the_list_are_refused_before_the_store_changes(tmp_path):
    """Ledgers made under another chunk plan (a count changed, the list edited during the run,
    Snakemake's records lost) would silently drop a file or ship it twice: refused, and the ledgers
    that record a file twice or one no longer listed are removed so their chunks are made again."""
    a = write_ledger(tmp_path, "0005", {"a.zip": [("a.tif", "a.tif")], "c.zip": [("c.tif", "c.tif")]})
    b = write_ledger(tmp_path, "0021", {"c.zip": [("c.tif", "c.tif")]})
    d = write_ledger(tmp_path, "0003", {"d.zip": [("d.tif", "d.tif")]})
    listed = {f"http://h/{n}.zip" for n in "acd"}
    check_ledgers_match_the_list(ledger.read_all([a, d]), listed)  # one plan: each listed file in one ledger
    with pytest.raises(TilewiseError, match=r"(?s)do not match file_list.txt.*http://h/c.zip: in chunks 0005, 0021"):
        check_ledgers_match_the_list(ledger.read_all([a, b, d]), listed)
    assert not a.exists() and not b.exists() and d.exists()
    # a listed file in no ledger: refused, nothing removed (an edit during the run is healed by a rerun)
    e = write_ledger(tmp_path, "0007", {"e.zip": [("e.tif", "e.tif")]})
    with pytest.raises(TilewiseError, match=r"(?s)http://h/a.zip: in no chunk.*--forcerun prepare_chunk"):
        check_ledgers_match_the_list(ledger.read_all([d, e]), listed | {"http://h/e.zip"})
    assert d.exists() and e.exists()
    # a ledger that records a file no longer listed is removed
    with pytest.raises(TilewiseError, match=r"http://h/e.zip: in chunks 0007"):
        check_ledgers_match_the_list(ledger.read_all([d, e]), {"http://h/d.zip"})
    assert d.exists() and not e.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[:40] + "#" * 10 + text[50:],  # garbage in the middle, ends intact
        lambda text: text[: len(text) // 2],  # cut off
        lambda text: text.replace('"version": 2', '"version": 1'),
        lambda text: text.replace('"status": "ok"', '"status": "fine"'),
        lambda text: json.dumps([1, 2]),
    ],
)
def test_a_ledger_that_cannot_be_read_is_removed_so_its_chunk_is_redone(tmp_path, damage):
    path = write_ledger(tmp_path, "0000", {"a.zip": [("a.tif", "a.tif")]})
    path.write_text(damage(path.read_text()))
    with pytest.raises(ledger.LedgerError, match="It was removed: run the same command again"):
        ledger.read_all([path])
    assert not path.exists()
