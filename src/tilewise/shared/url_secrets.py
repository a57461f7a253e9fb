"""The secrets a URL may carry, and text with them masked: the one rule for every message, log line
and record that may name a URL.

A URL's user info (`https://user:pass@host/…`, or a token as the user name) and the value of a query
parameter that signs or authorises the request (Azure SAS `sig`, S3's `X-Amz-Signature`,
`X-Amz-Credential`, `X-Amz-Security-Token`, GCS's `X-Goog-Signature` and `X-Goog-Credential`,
`token`, `access_token` and the other OAuth tokens, `jwt`, `api_key` in its spellings, `key`, `access_key`,
`secret_key`, `client_secret`, `password`, `passwd`, `pwd`, `secret`) are written `***`. A
download's errors and records (shared/download.py), a tile's failure and a county's (biomass), the
failure report and every log line of a job (`Masking`) pass through `masked`: a signed href, a
presigned redirect or a password in a file list never reaches a log, a manifest or a report.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/?#@\s'\"]+@", re.IGNORECASE)
_SECRET_PARAMS = (
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "token",
    "access_token",
    "auth_token",
    "authtoken",
    "id_token",
    "refresh_token",
    "jwt",
    "api_key",
    "api-key",
    "x-api-key",
    "apikey",
    "key",
    "access_key",
    "secret_key",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "secret",
)
# a value ends at `&`, `#`, a blank or a quote; a `:`, `,`, `;` or `)` before a blank or the end is the
# text's, not the value's ("…&sig=abc: HTTP 403")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:" + "|".join(re.escape(p) for p in _SECRET_PARAMS) + r"))=(?:[^&#\s'\":,;)]|[:,;)](?!\s|$))*",
    re.IGNORECASE,
)


def masked(text: str) -> str:
    """`text` with the user info and the secret query values of every URL in it written `***`."""
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    return _SECRET_QUERY.sub(rf"\g<name>={MASK}", text)


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
