import pytest

from tilewise.shared.errors import CatalogError
from tilewise.sources.catalog import file_name, load_source, parse_file_list
from tilewise.sources.chunks import assign_chunks, chunk_count

from conftest import CATALOG, REPO, shared


def test_file_names_and_volume_groups(tmp_path):
    fl = tmp_path / "file_list.txt"
    fl.write_text("https://x.org/a/DTM%20one.7z.001\nhttps://x.org/a/DTM%20one.7z.002\n\nfile:///data/b.zip\nc/d.tif\n")
    entries = parse_file_list(fl)
    assert [e.name for e in entries] == ["DTM_one.7z.001", "DTM_one.7z.002", "b.zip", "d.tif"]
    assert entries[0].group == entries[1].group == "DTM_one.7z"
    assert [e.line for e in entries] == [1, 2, 4, 5]
    assert entries[2].local_path(tmp_path).as_posix() == "/data/b.zip"
    assert entries[3].local_path(tmp_path) == tmp_path / "c/d.tif"
    assert entries[0].local_path(tmp_path) is None
    assert file_name("https://h/x/$(rm -rf ~);.tif") == "__rm_-rf_~__.tif"


@pytest.mark.parametrize(
    "text, message",
    [
        ("https://a/x.tif\nhttps://b/x.tif\n", r"file_list.txt:2: file name 'x.tif' repeats line 1"),
        ("ftp://a/x.tif\n", r"file_list.txt:1: unsupported URL scheme 'ftp'"),
        ("\n\n", r"no URLs"),
        ("https://a/dir/\n", r"has no file name"),
    ],
)
def test_bad_file_lists_name_file_and_line(tmp_path, text, message):
    (tmp_path / "file_list.txt").write_text(text)
    with pytest.raises(CatalogError, match=message):
        parse_file_list(tmp_path / "file_list.txt")


def test_entry_needs_license_and_metadata(tmp_path):
    entry = tmp_path / "s"
    entry.mkdir()
    (entry / "file_list.txt").write_text("https://a/x.tif\n")
    (entry / "metadata.json").write_text('{"name": "x"}')
    with pytest.raises(CatalogError, match=r"metadata.json: missing keys \['website'"):
        load_source(tmp_path, "s")
    (entry / "metadata.json").write_text(
        '{"name": "x", "website": "w", "license": "l", "producer": "p", "resolution": 1, "access_year": 2025}'
    )
    with pytest.raises(CatalogError, match=r"LICENSE.pdf is missing; the tarball must carry"):
        load_source(tmp_path, "s").license_pdf()
    with pytest.raises(CatalogError, match=r"source 'nope': no folder .*nope \(known sources: s\)"):
        load_source(tmp_path, "nope")


def test_demo_entry_loads():
    src = load_source(REPO / "catalog", "demo")
    assert src.recipe.crs == "EPSG:25832" and len(src.files) == 16


def test_chunk_count_keeps_large_sources_in_the_hundreds():
    assert chunk_count(1) == 1
    assert chunk_count(200) == 4
    assert chunk_count(1000) == 8
    assert chunk_count(35_861) == 512
    assert chunk_count(72_000) == 1024  # debayern, the largest entry
    assert chunk_count(1000, files_per_chunk=50) == 32


def test_real_lists_parse_and_chunks_are_stable():
    shared("catalogs/mapterhorn/denrw")
    files = parse_file_list(CATALOG / "denrw" / "file_list.txt")
    chunks = assign_chunks(files)
    assert len(files) == 35_860  # 35,861 lines, the first one blank
    assert 256 < len(chunks) <= 512
    sizes = [len(v) for v in chunks.values()]
    assert max(sizes) < 2 * 35_861 / 512
    # removing one URL changes exactly one chunk; the others keep their members
    smaller = assign_chunks(files[:100] + files[101:])
    changed = [k for k in chunks if chunks[k] != smaller.get(k)]
    assert len(changed) == 1 and files[100] in chunks[changed[0]]
    # adding one URL (at the end or in the middle) changes exactly one chunk
    from tilewise.sources.catalog import FileEntry

    extra = FileEntry(99_999, "https://x/new_tile.tif", "new_tile.tif", "new_tile.tif")
    bigger = assign_chunks(files[:5] + (extra,) + files[5:])
    assert sum(chunks.get(k) != bigger[k] for k in bigger) == 1


def test_multi_volume_sets_share_a_chunk(tmp_path):
    (tmp_path / "file_list.txt").write_text(
        "".join(f"https://a/t{i}.7z.{j:03d}\n" for i in range(40) for j in (1, 2, 3))
    )
    for members in assign_chunks(parse_file_list(tmp_path / "file_list.txt")).values():
        groups = {e.group for e in members}
        assert all(sum(e.group == g for e in members) == 3 for g in groups)
