import re

import pytest
import yaml

from tilewise.shared.errors import CatalogError, TilewiseError
from tilewise.sources.catalog import file_name, load_source, parse_file_list
from tilewise.sources.chunks import assign_chunks, chunk_count, kept_chunk_count, read_record, write_record
from tilewise.sources.plan import plan_sources, record_chunk_counts

from conftest import CATALOG, REPO, shared
from support.catalog import make_entry


def test_file_names_and_volume_groups(tmp_path):
    fl = tmp_path / "file_list.txt"
    fl.write_text(
        "https://x.org/a/DTM%20one.7z.001\nhttps://x.org/a/DTM%20one.7z.002\n\nfile:///data/b%20c.zip\nc/d%20e.tif\n"
    )
    entries = parse_file_list(fl)
    assert [e.name for e in entries] == ["DTM one.7z.001", "DTM one.7z.002", "b c.zip", "d%20e.tif"]
    assert entries[0].group == entries[1].group == "DTM one.7z"
    assert [e.line for e in entries] == [1, 2, 4, 5]
    assert entries[2].local_path(tmp_path).as_posix() == "/data/b c.zip"
    assert entries[3].local_path(tmp_path) == tmp_path / "c/d%20e.tif"  # a plain path is a name, not a URL
    assert entries[0].local_path(tmp_path) is None
    assert file_name("https://h/x/$(rm -rf ~);.tif") == "$(rm -rf ~);.tif"  # wget's name; no shell ever sees it


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "https://a/x.tif\nhttps://b/x.tif\n",
            r"file_list.txt:2: 'https://b/x.tif' would be saved as 'x.tif', like line 1",
        ),
        ("https://a/d?x=1\n\nhttps://a/e/d?x=1\n", r"file_list.txt:3: .* would be saved as 'd\?x=1', like line 1"),
        ("ftp://a/x.tif\n", r"file_list.txt:1: unsupported URL scheme 'ftp'"),
        ("\n\n", r"no URLs"),
        ("https://a/x.tif\nhttps://a/y\x0b.tif\n", r"file_list.txt:2: control character"),
        ("https://a/x.tif\nhttps://a/y\x85z.tif\n", r"file_list.txt:2: control character"),
        ("https://a/x.tif\nhttps://a/y\u2028z.tif\n", r"file_list.txt:2: control character"),
    ],
)
def test_bad_file_lists_name_file_and_line(tmp_path, text, message):
    (tmp_path / "file_list.txt").write_text(text)
    with pytest.raises(CatalogError, match=message):
        parse_file_list(tmp_path / "file_list.txt")


@pytest.mark.parametrize(
    "names, missing",
    [
        (["RGE.7z.001", "RGE.7z.003"], "RGE.7z.002"),
        (["d/DGM.7Z.002", "d/DGM.7Z.003"], "DGM.7Z.001"),  # the first volume is a volume too
        (["x.zip.001", "x.zip.002", "x.zip.005"], "x.zip.003, x.zip.004"),
    ],
)
def test_a_split_archive_with_a_volume_missing_names_it(tmp_path, names, missing):
    (tmp_path / "file_list.txt").write_text("https://a/other.7z\n" + "".join(f"https://a/{n}\n" for n in names))
    with pytest.raises(CatalogError) as refused:
        parse_file_list(tmp_path / "file_list.txt")
    message = str(refused.value)
    assert f"lacks {missing}:" in message and f"add the URL of {missing} to file_list.txt" in message
    assert f"{names[-1].rsplit('/', 1)[-1]} (line {len(names) + 1})" in message


def test_a_split_archive_with_every_volume_is_one_group(tmp_path):
    (tmp_path / "file_list.txt").write_text("".join(f"https://a/RGE.7z.{n:03d}\n" for n in (2, 1, 3)))
    assert {e.group for e in parse_file_list(tmp_path / "file_list.txt")} == {"RGE.7z"}


def test_file_list_text_rules(tmp_path):
    fl = tmp_path / "file_list.txt"
    # a BOM is not part of the first URL; CRLF and CR endings count lines as editors do; the same URL
    # twice is one download (wget --continue fetches it once), kept under its first line
    fl.write_bytes(b"\xef\xbb\xbfhttps://a/x.tif\r\n  \r\nhttps://a/y.tif\rhttps://a/x.tif\nhttps://a/z.tif?k=1")
    entries = parse_file_list(fl)
    assert [(e.line, e.name) for e in entries] == [(1, "x.tif"), (3, "y.tif"), (5, "z.tif?k=1")]
    # URLs that differ only in their query string are different files (wget keeps the query)
    fl.write_text("https://a/dl?f=1.zip\nhttps://a/dl?f=2.zip\nhttps://a/dl\n")
    assert [e.name for e in parse_file_list(fl)] == ["dl?f=1.zip", "dl?f=2.zip", "dl"]
    # not UTF-8: the file and the line of the first bad byte
    fl.write_bytes(b"https://a/x.tif\nhttps://a/\xe9t\xe9.tif\n")
    with pytest.raises(CatalogError, match=r"file_list.txt:2: not UTF-8 text \(byte 0xE9 at column 11\)"):
        parse_file_list(fl)
    fl.write_bytes("https://a/x.tif\n".encode("utf-16"))
    with pytest.raises(CatalogError, match=r"file_list.txt:1: not UTF-8 text"):
        parse_file_list(fl)


METADATA = '{"name": "x", "website": "w", "license": "l", "producer": "p", "resolution": 1, "access_year": 2025}'


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"null", r"metadata.json:1: the top level is null, not a JSON object"),
        (b"42", r"metadata.json:1: the top level is int, not a JSON object"),
        (b"[1, 2]", r"metadata.json:1: the top level is list"),
        (b'"text"', r"metadata.json:1: the top level is str"),
        (b'{\n "name": "x",\n}', r"metadata.json:3: not valid JSON"),
        (b"", r"metadata.json:1: not valid JSON"),
        (b'{"name": "caf\xe9"}', r"metadata.json:1: not UTF-8 text"),
        (b"\xef\xbb\xbf" + METADATA.encode(), r"metadata.json:1: starts with a UTF-8 byte-order mark"),
        (METADATA.replace("1,", '"1 m",').encode(), r"key 'resolution' is '1 m'; it must be an integer or a number"),
        (METADATA.replace("2025", "2025.5").encode(), r"key 'access_year' is 2025.5; it must be an integer"),
        (METADATA.replace('"l"', "null").encode(), r"key 'license' is None; it must be a string"),
    ],
)
def test_bad_metadata_names_file_and_line(tmp_path, raw, message):
    entry = tmp_path / "s"
    entry.mkdir()
    (entry / "file_list.txt").write_text("https://a/x.tif\n")
    (entry / "metadata.json").write_bytes(raw)
    with pytest.raises(CatalogError, match=message):
        load_source(tmp_path, "s")


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


@pytest.mark.parametrize(
    "data, why",
    [
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 57281\n",
            "a git-LFS pointer",
        ),
        (b"<!DOCTYPE html><html><body>404</body></html>", "without the %PDF- header"),
        (b"", "an empty file"),
        (None, "without the %%EOF trailer: cut short"),  # the real PDF's first half
    ],
    ids=["lfs-pointer", "html", "empty", "cut-short"],
)
def test_a_license_pdf_that_is_no_pdf_stops_the_tarball(tmp_path, data, why):
    """The tarball shipped any file named LICENSE.pdf: a clone without git-lfs shipped a 131-byte pointer."""
    from support.catalog import DEMO_LICENSE

    real = DEMO_LICENSE.read_bytes()
    entry = tmp_path / "s"
    entry.mkdir()
    (entry / "file_list.txt").write_text("https://a/x.tif\n")
    (entry / "metadata.json").write_text(
        '{"name": "x", "website": "w", "license": "l", "producer": "p", "resolution": 1, "access_year": 2025}'
    )
    (entry / "LICENSE.pdf").write_bytes(real)
    assert load_source(tmp_path, "s").license_pdf() == entry / "LICENSE.pdf"
    (entry / "LICENSE.pdf").write_bytes(real[: len(real) // 2] if data is None else data)
    with pytest.raises(CatalogError, match=rf"s/LICENSE.pdf is not a PDF \(.*{re.escape(why)}.*the tarball would ship"):
        load_source(tmp_path, "s").license_pdf()


def test_every_real_catalog_entry_with_a_file_list_plans():
    """desaarland (six URLs that differ only in their query string) included; ro's custom unzip script
    is the one Justfile line with no equivalent; entries whose Justfile records a step done by hand wait
    for a source.yaml."""
    shared("catalogs/mapterhorn")
    planned, refused = [], {}
    for entry in sorted(p for p in CATALOG.iterdir() if (p / "file_list.txt").is_file()):
        try:
            source = load_source(CATALOG, entry.name)
            planned.append(entry.name)
            assert len({e.name for e in source.files}) == len(source.files)
        except CatalogError as err:
            refused[entry.name] = str(err)
    assert "desaarland" in planned and "atburgenland" in planned and len(planned) >= 55
    assert "source_unzip_ro.py" in refused.pop("ro")
    # the others: a comment among the Justfile's steps may record a step done by hand (test_recipe.py)
    assert len(refused) == 14 and all("step done by hand" in why for why in refused.values()), refused
    names = [e.name for e in load_source(CATALOG, "desaarland").files]
    assert names[0] == "download?path=%2FOD_DGM1_tiff_LK&files=DGM1_tif_MZG_25832.zip" and len(set(names)) == 6


def test_demo_entry_loads():
    src = load_source(REPO / "catalog", "demo")
    assert src.recipe.crs == "EPSG:25832" and len(src.files) == 16


def test_chunk_count_grows_chunks_with_the_source():
    assert chunk_count(1) == 1
    assert chunk_count(3) == 4
    assert chunk_count(200) == 4
    assert chunk_count(1000) == 8
    assert chunk_count(2048) == 16  # ~128 files a chunk up to here
    assert chunk_count(4096) == 16  # then 4·√n: 256 a chunk
    assert chunk_count(20_000) == 64
    assert chunk_count(35_861) == 64  # denrw
    assert chunk_count(72_000) == 128  # debayern, the largest entry
    assert chunk_count(1000, files_per_chunk=50) == 32
    assert chunk_count(20_000, files_per_chunk=128) == 256  # a number is taken as it is


def test_a_source_keeps_the_chunk_count_it_was_first_prepared_with():
    """A source prepared while "auto" meant 128 files a chunk at every size keeps its chunks across the
    upgrade (none is prepared, or downloaded, again), until its list crosses a power of two."""
    assert chunk_count(20_000, kept=256) == 256
    assert chunk_count(72_000, kept=1024) == 1024
    assert chunk_count(20_000, kept=64) == 64  # prepared with today's rule
    # a kept count the old rule would not give for this list: today's rule
    assert chunk_count(20_000, kept=512) == 64
    assert chunk_count(40_000, kept=256) == 64  # the list grew past 32,768: every chunk is made again anyway
    assert chunk_count(20_000, files_per_chunk=100, kept=256) == 256  # ceil(200) → 256, whatever was kept
    assert chunk_count(20_000, files_per_chunk=1000, kept=256) == 32


def test_the_kept_chunk_count_is_read_from_the_ledger_names(tmp_path):
    """Only a ledger the old rule alone makes (an id at or above today's K, below the old K) says the
    source was prepared with the old rule; strays, folders and an empty top chunk change nothing."""
    folder = tmp_path / "chunks"
    assert kept_chunk_count(folder, 20_000) is None  # no folder yet
    folder.mkdir()
    assert kept_chunk_count(folder, 20_000) is None
    for chunk in (0, 7, 63):  # ids today's 64 chunks make too
        (folder / f"{chunk:04d}.json").write_text("{}")
    assert kept_chunk_count(folder, 20_000) is None
    (folder / "9999.json").write_text("{}")  # far above the old K: a stray
    (folder / "0300.json").mkdir()  # a folder with a ledger's name
    (folder / "0200.json.tmp").write_text("")  # a ledger being written
    assert kept_chunk_count(folder, 20_000) is None
    (folder / "0100.json").write_text("{}")  # today's rule does not make it, but neither the old one's top half
    assert kept_chunk_count(folder, 20_000) is None
    (folder / "0200.json").write_text("{}")  # the old rule's 256 chunks (its very top ones may be empty)
    assert kept_chunk_count(folder, 20_000) == 256
    assert chunk_count(20_000, kept=kept_chunk_count(folder, 20_000)) == 256
    # the list shrank or grew past a power of two: its chunks are made again anyway, with today's rule
    assert kept_chunk_count(folder, 10_000) is None  # the old rule gives 128, the ledgers were 256
    assert kept_chunk_count(folder, 40_000) is None  # 512: no ledger in its top half
    (folder / "0400.json").write_text("{}")  # a ledger of a K of 512
    assert kept_chunk_count(folder, 20_000) is None
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(TilewiseError, match="cannot list the chunk ledgers in .*file"):
        kept_chunk_count(not_a_folder, 20_000)


def test_the_chunk_count_record_is_checked(tmp_path):
    record = tmp_path / "chunk-count.txt"
    assert read_record(record) is None
    write_record(record, 256)
    assert record.read_text() == "256\n" and read_record(record) == 256
    for text in ("", "abc", "0\n", "48\n", "-4\n", "256 chunks\n"):
        record.write_text(text)
        with pytest.raises(TilewiseError, match="chunk-count.txt holds .*delete it"):
            read_record(record)


def test_the_plan_keeps_the_chunks_of_ledgers_made_before(tmp_path):
    """At parse time the plan reads a source's chunk count from its record or, at the first run of this
    rule, from its ledger folder: old ledgers keep their chunk members (the chunk params, so Snakemake
    reruns nothing); a first run gets 4·√n."""
    urls = [f"https://x/tile_{i:05d}.tif" for i in range(5000)]
    make_entry(tmp_path / "catalog", "big", urls)
    config = {**yaml.safe_load((REPO / "config" / "config.yaml").read_text()), "source": "big"}
    ledgers = str(tmp_path / "work" / "{source}" / "chunks")
    record = str(tmp_path / "work" / "{source}" / "chunk-count.txt")
    first = plan_sources(config, tmp_path / "catalog", ledgers=ledgers, record=record)["big"]
    assert len(first.chunks) == first.chunk_count == 32
    folder = tmp_path / "work" / "big" / "chunks"
    folder.mkdir(parents=True)
    old = assign_chunks(first.source.files, 128)  # what "auto" gave before
    for chunk in old:
        (folder / f"{chunk}.json").write_text("{}")
    kept = plan_sources(config, tmp_path / "catalog", ledgers=ledgers, record=record)
    assert kept["big"].chunks == old and kept["big"].chunk_count == 64
    assert plan_sources(config, tmp_path / "catalog")["big"].chunks == first.chunks  # no folder given
    # the run's main process records it; a cluster job that parses the workflow while the top chunks'
    # ledgers are deleted (Snakemake removes a job's outputs before it runs) plans the same chunks
    record_chunk_counts(kept, record)
    for chunk in old:
        if int(chunk) >= 32:
            (folder / f"{chunk}.json").unlink()
    assert plan_sources(config, tmp_path / "catalog", ledgers=ledgers, record=record)["big"].chunks == old
    # once the list crosses a power of two the old rule no longer gives 64: today's rule, recorded
    make_entry(tmp_path / "catalog", "big", urls + [f"https://x/more_{i:05d}.tif" for i in range(4000)])
    grown = plan_sources(config, tmp_path / "catalog", ledgers=ledgers, record=record)
    assert grown["big"].chunk_count == 32
    record_chunk_counts(grown, record)
    assert (tmp_path / "work" / "big" / "chunk-count.txt").read_text() == "32\n"


def test_real_lists_parse_and_chunks_are_stable():
    shared("catalogs/mapterhorn/denrw")
    files = parse_file_list(CATALOG / "denrw" / "file_list.txt")
    chunks = assign_chunks(files)
    assert len(files) == 35_860  # 35,861 lines, the first one blank
    assert len(chunks) == 64
    sizes = [len(v) for v in chunks.values()]
    assert max(sizes) < 1.2 * 35_861 / 64
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


def test_the_summary_says_when_the_recipes_exclude_left_nothing(tmp_path):
    from tilewise.sources import ledger
    from tilewise.sources.summary import source_lines

    path = tmp_path / "0000.json"
    excluded = {"url": "u", "file": "dgm.zip", "status": "excluded", "excluded": ["dgm.zip"]}
    ledger.write(path, ledger.Ledger("s", "0000", {}, [excluded, {**excluded, "file": "b.zip"}]))
    (head,) = source_lines("s", [path], {})
    assert head == (
        "source s: 0 of 2 files converted into 0 COGs, 0 failed, 2 with nothing left after the recipe's `exclude` "
        "(every file)"
    )


@pytest.mark.parametrize(
    "names",
    [["a.7z", "a.7z.001", "a.7z.002"], ["d/X.ZIP.001", "e/X.ZIP", "d/X.ZIP.002"], ["a.zip", "a.zip.001"]],
)
def test_an_archive_listed_beside_volumes_of_its_name_is_refused(tmp_path, names):
    """x.7z and x.7z.001… would be unpacked as one set, and one of them lost: which is meant is unclear."""
    (tmp_path / "file_list.txt").write_text("https://a/other.zip\n" + "".join(f"https://a/{n}\n" for n in names))
    with pytest.raises(CatalogError) as refused:
        parse_file_list(tmp_path / "file_list.txt")
    whole = next(n.rsplit("/", 1)[-1] for n in names if not n[-1].isdigit())
    assert f"{whole} (line {2 + [n.rsplit('/', 1)[-1] for n in names].index(whole)})" in str(refused.value)
    assert "keep the lines of one of them" in str(refused.value)


@pytest.mark.parametrize(
    "raster, sidecar",
    [
        ("dem.tif", "dem.tif.aux.xml"),
        ("dem.tif", "dem.tfw"),
        ("DEM.TIF", "dem.tfw"),
        ("dem.tiff", "dem.tiffw"),
        ("dem.asc", "dem.prj"),
        ("dem.tif", "dem.tif.msk"),
        ("dem.jpg", "dem.jgw"),
    ],
)
def test_a_sidecar_listed_as_a_download_of_its_own_is_refused_naming_both_lines(tmp_path, raster, sidecar):
    """Mapterhorn's wget puts dem.tif and dem.tif.aux.xml in one folder, where GDAL reads the sidecar; tilewise
    unpacks each download into a folder of its own, so the raster was converted without its nodata or grid
    (and the sidecar failed as a download without a raster). Refused at planning, naming both lines."""
    (tmp_path / "file_list.txt").write_text(f"https://x.org/a/{raster}\nhttps://x.org/a/{sidecar}\n")
    with pytest.raises(
        CatalogError, match=rf"file_list.txt:2: {re.escape(sidecar)} is a sidecar of {raster} \(line 1\)"
    ):
        parse_file_list(tmp_path / "file_list.txt")
    (tmp_path / "file_list.txt").write_text(f"https://x.org/a/{raster}\nhttps://x.org/a/other.zip\n")
    assert [e.name for e in parse_file_list(tmp_path / "file_list.txt")] == [raster, "other.zip"]
