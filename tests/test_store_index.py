"""The store index's judgement of chunks made from other inputs than the plan's (store_index.stale_chunks)."""

import os

from tilewise.sources import ledger, store_index
from tilewise.sources.plan import inputs_digest

FILES = [["https://x/a.zip", "a.zip", "a.zip"]]
RECIPE = {"cog": {"BLOCKSIZE": 512}}


def _ledger(path, inputs):
    ledger.write(path, ledger.Ledger("s", path.stem, RECIPE, [], inputs))
    return path


def test_a_chunk_made_from_other_inputs_is_stale_whether_merged_or_not(tmp_path):
    made = inputs_digest(FILES, RECIPE)
    refreshed = inputs_digest([[*FILES[0], ["etag", '"v2"']]], RECIPE)  # the version a refresh found
    edited = inputs_digest(FILES, {"cog": {"BLOCKSIZE": 256}})
    assert len({made, refreshed, edited}) == 3
    (tmp_path / "coverage.gpkg").write_bytes(b"x")
    (tmp_path / "bounds.csv").write_text("filename\n")
    ledgers = {c: _ledger(tmp_path / f"{c}.json", made) for c in ("0000", "0001")}
    index = tmp_path / "store-index.json"
    store_index.write(
        index,
        {c: {"ledger": p, "files": [], "inputs": made} for c, p in ledgers.items()},
        tmp_path / "coverage.gpkg",
        tmp_path / "bounds.csv",
    )
    assert store_index.stale_chunks(index, {"0000": made, "0001": made}, ledgers) == {}
    found = store_index.stale_chunks(index, {"0000": refreshed, "0001": edited}, ledgers)
    assert sorted(found) == ["0000", "0001"] and "made from other files or another recipe" in found["0000"]
    # prepared again since the merge (the index does not know it yet): its ledger answers
    _ledger(ledgers["0000"], refreshed)
    os.utime(ledgers["0000"], ns=(1, 1))
    assert store_index.stale_chunks(index, {"0000": refreshed}, ledgers) == {}
    # no index (never merged): ledgers answer; one of an earlier tilewise (no digest) or none is not judged
    index.unlink()
    assert store_index.stale_chunks(index, {"0001": edited}, ledgers) == {"0001": found["0001"]}
    _ledger(ledgers["0001"], None)
    assert (
        store_index.stale_chunks(index, {"0001": edited, "0002": edited}, {**ledgers, "0002": tmp_path / "none.json"})
        == {}
    )
