"""The one rule of what vouches for a remote file's version, shared by downloads (resumes, pieces)
and by tiles read in place: a strong ETag, or a Last-Modified settled before the answer's Date and our
own clock."""

import time
from email.utils import formatdate

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
