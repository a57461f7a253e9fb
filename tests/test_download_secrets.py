"""What a download sends and says about a URL's secrets: the user info of `https://user:pass@host/…`
is sent as Basic authorization (as wget and curl do), never to another host, and no message, log
line, record or report names a password, a signed href's token or a presigned redirect's signature;
and a body under a transfer coding other than chunked is never stored with its coding's bytes."""

import base64
import logging
import os
import sys

import pytest

from tilewise.biomass import outcomes, tiles
from tilewise.shared import job
from tilewise.shared.download import NotFound, fetch, head, make_pool
from tilewise.shared.errors import FileFailure, TilewiseError
from tilewise.sources import failures_csv

from support.config import download_settings
from support.httpserver import Fault

FAST = download_settings(
    attempts=2, backoff_seconds=0.01, max_backoff_seconds=0.05, connect_timeout_seconds=2, read_timeout_seconds=2
)
BODY = os.urandom(50_000)
SECRETS = ("s3cret", "p@ss:w/rd", "ghp_T0KEN", "SIGNATURE", "AKIAKEY", "SESSION")


def with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


def sent_headers(http, path: str, method: str = "GET") -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in h.items()} for h in http.headers_for(path, method)]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        leaked = [s for s in SECRETS + ("p%40ss%3Aw%2Frd",) if s in text]
        assert not leaked, f"{leaked} in {text!r}"


@pytest.mark.parametrize(
    ("userinfo", "sent"),
    [
        ("user:s3cret", "user:s3cret"),
        ("user:p%40ss%3Aw%2Frd", "user:p@ss:w/rd"),  # percent-decoded, as curl and wget send it
        ("ghp_T0KEN", "ghp_T0KEN:"),  # a token as the user name, no password
        ("ghp_T0KEN:x-oauth-basic", "ghp_T0KEN:x-oauth-basic"),
    ],
)
def test_the_user_info_of_a_url_is_sent_as_basic_authorization(http, tmp_path, userinfo, sent):
    http.files["/f.bin"] = BODY
    url = with_userinfo(http.url("f.bin"), userinfo)
    state = fetch(url, tmp_path / "f.bin", None, FAST, make_pool(FAST))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    (headers,) = sent_headers(http, "f.bin")
    assert headers["authorization"] == "Basic " + base64.b64encode(sent.encode()).decode()
    assert_no_secret(state.url, state.final_url)  # the ledger's record of it
    assert head(url, FAST, make_pool(FAST)).content_length == len(BODY)
    assert sent_headers(http, "f.bin", "HEAD")[0]["authorization"] == headers["authorization"]


def test_the_user_info_is_not_sent_to_another_host_a_redirect_names(http, tmp_path):
    http.files["/g.bin"] = BODY
    elsewhere = f"http://localhost:{http.port}/g.bin"  # the same server under another host name
    for path, target in (("f.bin", elsewhere), ("h.bin", "/g.bin")):
        http.faults[f"/{path}"] = Fault(times=1, redirect_to=target)
        fetch(with_userinfo(http.url(path), "user:s3cret"), tmp_path / path, None, FAST, make_pool(FAST))
        assert (tmp_path / path).read_bytes() == BODY
    first, second = sent_headers(http, "g.bin")
    assert "authorization" not in first  # another host: dropped
    assert second["authorization"] == "Basic " + base64.b64encode(b"user:s3cret").decode()  # the same host


@pytest.mark.parametrize(
    ("fault", "query", "kind"),
    [
        (Fault(times=9, status=401), "", FileFailure),
        (Fault(times=9, status=403), "?sv=2024&se=2030&sp=rl&sig=SIGNATURE", FileFailure),
        (Fault(times=9, status=404), "?X-Amz-Credential=AKIAKEY&X-Amz-Signature=SIGNATURE", NotFound),
        (Fault(times=9, status=503), "?token=ghp_T0KEN&x=1", FileFailure),
        (Fault(times=9, drop_after=1000), "?X-Amz-Security-Token=SESSION&key=s3cret", FileFailure),
    ],
)
def test_a_failed_download_names_its_url_without_its_secrets(http, tmp_path, caplog, fault, query, kind):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = fault
    url = with_userinfo(http.url("f.bin"), "user:s3cret") + query
    with caplog.at_level(logging.WARNING), pytest.raises(kind) as err:
        fetch(url, tmp_path / "f.bin", None, FAST, make_pool(FAST))
    assert http.url("f.bin") in str(err.value).replace("***@", "")  # still says which file
    assert_no_secret(str(err.value), caplog.text)


def test_a_refused_connection_names_its_url_without_its_secrets(tmp_path):
    url = "http://user:s3cret@127.0.0.1:9/f.bin?sig=SIGNATURE"  # urllib3's own message names the URL
    with pytest.raises(FileFailure) as err:
        fetch(url, tmp_path / "f.bin", None, FAST, make_pool(FAST))
    assert "127.0.0.1:9" in str(err.value)
    assert_no_secret(str(err.value))


def test_a_presigned_redirect_is_recorded_without_its_signature(http, tmp_path):
    http.files["/bucket/f.bin"] = BODY
    presigned = "/bucket/f.bin?X-Amz-Credential=AKIAKEY&X-Amz-Signature=SIGNATURE&X-Amz-Expires=300"
    http.faults["/f.bin"] = Fault(times=1, redirect_to=presigned)
    state = fetch(http.url("f.bin"), tmp_path / "f.bin", None, FAST, make_pool(FAST))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert state.final_url.startswith(http.url("bucket/f.bin?X-Amz-Credential=***"))
    assert_no_secret(state.final_url)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(times=9, chunked=True, headers={"Transfer-Encoding": "chunked, identity"}),  # framing left in
        Fault(times=9, unframed=True, headers={"Transfer-Encoding": "gzip, chunked"}),
        Fault(times=9, unframed=True, headers={"Transfer-Encoding": "deflate"}),
    ],
)
def test_a_body_under_a_transfer_coding_other_than_chunked_fails(http, tmp_path, fault):
    http.files["/dem.xyz"] = b"".join(b"%d %d %.1f\n" % (x, y, x + y / 10) for x in range(100) for y in range(100))
    http.faults["/dem.xyz"] = fault
    with pytest.raises(FileFailure, match=r"unsupported Transfer-Encoding .*only 'chunked' is decoded"):
        fetch(http.url("dem.xyz"), tmp_path / "dem.xyz", None, FAST, make_pool(FAST))
    assert not list(tmp_path.iterdir())  # nothing stored, no .part


def test_a_body_under_the_identity_transfer_coding_is_the_file(http, tmp_path):
    http.files["/f.bin"] = BODY
    http.faults["/f.bin"] = Fault(times=9, unframed=True, headers={"Transfer-Encoding": "identity"})  # RFC 2616's
    fetch(http.url("f.bin"), tmp_path / "f.bin", None, FAST, make_pool(FAST))
    assert (tmp_path / "f.bin").read_bytes() == BODY


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://u:p@h/a.tif?sig=abc%2B/=: HTTP 403", "https://***@h/a.tif?sig=***: HTTP 403"),
        ("'/vsicurl/https://h/a.tif?se=2030&sig=abc' not", "'/vsicurl/https://h/a.tif?se=2030&sig=***' not"),
        ("(url: /a.zip?X-Amz-Signature=abc&X-Amz-Expires=300)", "(url: /a.zip?X-Amz-Signature=***&X-Amz-Expires=300)"),
        ("https://h/a?API_KEY=k1,b", "https://h/a?API_KEY=***"),
        ("https://h/download?path=%2Fdem&files=dem.zip", "https://h/download?path=%2Fdem&files=dem.zip"),
        ("https://h/a.zip?monkey=1&keys=2 by a@b.org",) * 2,
        *(
            (f"https://h/dem.zip?tile=7&{name}=S3CR3T.x&v=2", f"https://h/dem.zip?tile=7&{name}=***&v=2")
            for name in ["api-key", "X-Api-Key", "auth_token", "AuthToken", "id_token", "refresh_token", "jwt"]
            + ["access_key", "secret_key", "client_secret", "passwd", "pwd"]
        ),
        # a password with a sub-delim RFC 3986 allows in user info, or an @ left unencoded (urlsplit's
        # password runs to the last @, and so is what is sent)
        ("https://user:it's@h/a.tif: HTTP 401", "https://***@h/a.tif: HTTP 401"),
        ("https://user:p@ss@h/a.tif: HTTP 401", "https://***@h/a.tif: HTTP 401"),
        ("'/vsicurl/ftp://a'b@c@h/x' not", "'/vsicurl/ftp://***@h/x' not"),
        # a secret parameter by its last word, in any spelling: `_token`, `Token`, `-key`, `_secret`
        ("https://h/a?auth_token=v1&b=2", "https://h/a?auth_token=***&b=2"),
        ("https://h/a?private_token=v1", "https://h/a?private_token=***"),
        ("https://h/a?x=1&sessionToken=v1", "https://h/a?x=1&sessionToken=***"),
        ("https://h/a?client_secret=v1&id=3", "https://h/a?client_secret=***&id=3"),
        ("https://h/a?api-key=v1 failed", "https://h/a?api-key=*** failed"),
        ("https://h/a?AccessKey=v1&passwd=v2", "https://h/a?AccessKey=***&passwd=***"),
        ("https://h/a?AWSAccessKeyId=AKIA&Signature=v2", "https://h/a?AWSAccessKeyId=AKIA&Signature=***"),
        ("https://h/a?token_type=bearer&tokens=3&keyword=dem",) * 2,
        ("https://h/a?authtoken=v1&apitoken=v2", "https://h/a?authtoken=***&apitoken=***"),  # one word
        ("https://h/get?object_key=tiles/a.tif&tileKey=N47",) * 2,  # a key that names a file
        ("https://h/a?X-Api-Key=v1&subscription-key=v2", "https://h/a?X-Api-Key=***&subscription-key=***"),
    ],
)
def test_a_urls_secrets_and_only_they_are_masked(text, shown):
    from tilewise.shared.url_secrets import masked  # here: the other tests run on a tilewise without it

    assert masked(text) == shown


def test_a_signed_hrefs_token_never_reaches_a_tiles_record(http, tmp_path, monkeypatch):
    # a job signs an href right before opening it; GDAL's errors and the download's name what was opened
    signed = "?sv=2024-05-04&se=2030-01-01T00%3A00%3A00Z&sp=rl&sig=SIGNATURE"
    monkeypatch.setattr(tiles, "signer", lambda kind, ttl: lambda href: href + signed)
    http.files["/wc.tif"] = b"<html><body>Please sign in</body></html>" * 50  # a login page as "200 OK"
    r = {"product": "worldcover", "key": "N00E006", "href": http.url("wc.tif"), "counties": "99001"}
    r |= {"sign": "planetary-computer", "window_lonlat": None}
    settings = tiles.TileSettings(codec="DEFLATE", local_copy=False, signed_href_min_ttl_seconds=900, download=FAST)
    record = tiles.prepare_tile(r, tmp_path / "t.tif", tmp_path / "t.json", settings, tmp_path)
    assert record["status"] == "failed" and http.url("wc.tif") in record["error"]
    assert_no_secret(record["error"], (tmp_path / "t.json").read_text())


def test_a_signed_hrefs_token_never_reaches_a_manifest_a_countys_check_marks_failed(http, tmp_path, monkeypatch):
    signed = "?sv=2024-05-04&se=2030-01-01T00%3A00%3A00Z&sp=rl&sig=SIGNATURE"
    monkeypatch.setattr(tiles, "signer", lambda kind, ttl: lambda href: href + signed)
    http.faults["/wc.tif"] = Fault(times=9, method="HEAD", status=403)  # the token ran out, say
    manifest = tmp_path / "t.json"
    tiles.write_manifest(manifest, {"version": tiles.VERSION, "status": "ok", "remote_version": {"length": 1}})
    r = {"product": "worldcover", "key": "N00E006", "href": http.url("wc.tif"), "sign": "planetary-computer"}
    r |= {"path": f"/vsicurl/{http.url('wc.tif')}{signed}", "manifest": str(manifest)}
    settings = tiles.TileSettings(codec="DEFLATE", local_copy=False, signed_href_min_ttl_seconds=900, download=FAST)
    with pytest.raises(TilewiseError) as err:
        tiles.check_in_place_versions([r], settings)
    record = tiles.read_manifest(manifest)
    assert record["status"] == "failed" and "wc.tif" in record["error"]
    assert_no_secret(manifest.read_text(), outcomes.run_isolated(lambda: (_ for _ in ()).throw(err.value))[1])


@pytest.mark.parametrize(
    "exc",
    [
        TilewiseError("'/vsicurl/https://a.blob.core.windows.net/c/B04.tif?se=2030&sig=SIGNATURE' unreadable"),
        RuntimeError("Read failed: /vsicurl/http://user:s3cret@host/B04.tif"),
    ],
)
def test_a_countys_failure_names_no_signed_href(exc):
    def work():
        raise exc

    status, reason, _ = outcomes.run_isolated(work)
    assert status == outcomes.FAILED and "B04.tif" in reason
    assert_no_secret(reason)


@pytest.mark.parametrize(
    "href", ["https://user:s3cret@h/B04.tif", "https://h/B04.tif?token=ghp_T0KEN", "https://h/B04.tif?sig=SIGNATURE"]
)
@pytest.mark.parametrize(
    "exc", [lambda href: TilewiseError(f"{href}: HTTP 403 Forbidden"), lambda href: RuntimeError("not recognized")]
)
def test_a_tiles_failure_names_its_href_without_its_secrets(href, exc):
    # an href of the index with a secret of its own: named in front of an error that does not name it
    error = tiles._failure({"href": href, "product": "s2", "key": "k"}, exc(href))["error"]
    assert "B04.tif" in error
    assert_no_secret(error)


def test_a_jobs_log_names_no_secret(tmp_path):
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    try:
        job.log_to(str(tmp_path / "job.log"))
        log = logging.getLogger("tilewise.test")
        log.warning("opening %s", "https://a.blob.core.windows.net/c/B04.tif?se=2030&sig=SIGNATURE")
        try:
            raise OSError("http://user:s3cret@host/f.zip?token=ghp_T0KEN: refused")
        except OSError:
            log.exception("it failed")
        for handler in root.handlers:
            handler.flush()
        text = (tmp_path / "job.log").read_text()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook = hook
    assert "B04.tif?se=2030&sig=***" in text and "http://***@host/f.zip?token=***" in text
    assert "Traceback" in text
    assert_no_secret(text)


def test_the_failure_report_names_no_secret(tmp_path):
    url = "https://user:s3cret@example.org/dem.zip?token=ghp_T0KEN"
    row = {"source": "s", "file": "dem.zip?token=ghp_T0KEN", "url": url, "line": 1, "step": "download"}
    failures_csv.write([{**row, "error": f"{url}: HTTP 401 Unauthorized", "ledger": "x"}], tmp_path / "f.csv")
    (written,) = failures_csv.read(tmp_path / "f.csv")
    assert written["url"] == "https://***@example.org/dem.zip?token=***" and written["line"] == "1"
    assert_no_secret(*written.values())
