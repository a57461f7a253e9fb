"""The one rule of what vouches for a remote file's version, shared by downloads (resumes, pieces)
and by tiles read in place: a strong ETag, or a Last-Modified settled before the answer's Date and our
own clock."""

import time
from email.utils import formatdate, parsedate_to_datetime

import pytest

from tilewise.shared.http_validators import vouched_by


def ago(seconds: float) -> str:
    return formatdate(time.time() - seconds, usegmt=True)


@pytest.mark.parametrize(
    "etag, modified_ago, date_ago, expected",
    [
        ('"a1"', None, None, "strong ETag"),
        ('W/"a1"', None, 0, "length only"),
        ('W/"a1"', 3600, 0, "Last-Modified"),
        (None, 3600, 0, "Last-Modified"),
        (None, 5, 0, "length only"),  # rewritten within its second, it keeps the date
        (None, 3600, None, "length only"),  # no Date: a server without a clock to compare
        (None, 5, -86400, "length only"),  # a server clock running ahead: ours bounds it
        (None, 3600, 7200, "length only"),  # modified after the answer's Date
    ],
)
def test_what_vouches_for_a_version(etag, modified_ago, date_ago, expected):
    modified = None if modified_ago is None else ago(modified_ago)
    date = None if date_ago is None else ago(date_ago)
    assert vouched_by(etag, modified, date) == expected


@pytest.mark.parametrize("modified, date", [("yesterday", 0), (3600, "not a date")])
def test_a_validator_that_is_not_a_date_vouches_for_nothing(modified, date):
    modified = ago(modified) if isinstance(modified, int) else modified
    date = ago(date) if isinstance(date, int) else date
    assert vouched_by(None, modified, date) == "length only"


def nginx(modified: str, length: int) -> str:
    return f'"{int(parsedate_to_datetime(modified).timestamp()):x}-{length:x}"'


@pytest.mark.parametrize(
    "modified_ago, date_ago, expected",
    [
        (5, 0, "length only"),  # rewritten within its second with the same length, it keeps its tag
        (59, 0, "length only"),
        (3600, 0, "Last-Modified"),
        (3600, None, "length only"),  # no Date: as for a date alone
        (-86400, 0, "length only"),  # a date in the future
    ],
)
def test_a_strong_etag_made_of_the_date_and_the_length_vouches_as_the_date(modified_ago, date_ago, expected):
    """nginx's ETag is its Last-Modified (seconds) and its length in hex: strong by its syntax, it
    tells no more than they do, so it vouches as the date would (a resume, pieces, a tile read in
    place, a refresh); any other strong tag, or another date or length, vouches alone."""
    modified, date = ago(modified_ago), None if date_ago is None else ago(date_ago)
    assert vouched_by(nginx(modified, 5000), modified, date, 5000) == expected
    assert vouched_by(nginx(modified, 5000), modified, date, 5001) == "strong ETag"
    assert vouched_by(nginx(ago(7200), 5000), modified, date, 5000) == "strong ETag"
    assert vouched_by('"1388-5f5a1c2b"', modified, date, 5000) == "strong ETag"
    assert vouched_by(nginx(modified, 5000), modified, date) == "strong ETag"  # no length: cannot tell
