"""The secrets a URL may carry, and text with them masked: the one rule for every message, log line
and record that may name a URL.

A URL's user info (`https://user:pass@host/…`, or a token as the user name: all of it up to the
last `@` before the path, as urlsplit reads the password that is sent) and the value of a query
parameter that signs or authorises the request are written `***`: a parameter whose name's last word
(after `_`, `-`, `.` or a capital) is one of `_SECRET_WORDS` or ends in one of `_SECRET_ENDS`, or is
`key` alone or after a word of access (`api_key`, `AccessKey`; not `object_key`, which names a file):
Azure SAS `sig`, S3's `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, GCS's
`X-Goog-Signature`, `token`, `access_token`, `auth_token`, `authtoken`, `sessionToken`, `jwt`,
`api_key`, `apikey`, `key`, `password`, `pwd`, `client_secret`, …. A
download's errors and records (shared/download.py), a tile's failure and a county's (biomass), the
failure report and every log line of a job (`Masking`) pass through `masked`: a signed href, a
presigned redirect or a password in a file list never reaches a log, a manifest or a report.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# user info runs to the last `@` before the path (RFC 3986 allows `'` in it; an unencoded `@` is the
# password's too, as urlsplit reads it)
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/?#\s\"<>]*@", re.IGNORECASE)
# the last word of a parameter's name that makes its value a secret (`monkey`, `keys`, `token_type` are not):
# one of these, or ending in one of the next (`authtoken`, `accesskey` written as one word); `key` alone or
# after a word of access (an object's or a tile's key names a file: `object_key`, `tileKey`)
_SECRET_WORDS = frozenset({"sig", "jwt", "pwd"})
_SECRET_ENDS = (
    "token",
    "secret",
    "signature",
    "credential",
    "credentials",
    "password",
    "passwd",
    "apikey",
    "accesskey",
)
_KEY_OF = frozenset({"api", "access", "secret", "private", "auth", "client", "account", "subscription", "session"})
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# a value ends at `&`, `#`, a blank or a quote; a `:`, `,`, `;` or `)` before a blank or the end is the
# text's, not the value's ("…&sig=abc: HTTP 403")
_QUERY_PARAM = re.compile(r"(?P<name>[?&][A-Za-z0-9_.-]+)=(?:[^&#\s'\":,;)]|[:,;)](?!\s|$))*")


def _secret_param(match: re.Match) -> str:
    words = [w.lower() for w in _WORDS.findall(match["name"])]
    key = words[-1:] == ["key"] and (len(words) == 1 or words[-2] in _KEY_OF)
    secret = words and (words[-1] in _SECRET_WORDS or words[-1].endswith(_SECRET_ENDS) or key)
    return f"{match['name']}={MASK}" if secret else match[0]


def masked(text: str) -> str:
    """`text` with the user info and the secret query values of every URL in it written `***`."""
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    return _QUERY_PARAM.sub(_secret_param, text)


class Masking(logging.Filter):
    """A handler's filter that masks every record it writes, its traceback included (GDAL's errors
    and urllib3's name the URL they were given: a signed href, a password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = masked(message), None
        if record.exc_info:
            record.exc_text = masked(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
