"""Planetary Computer hrefs, signed when a job opens them and never stored signed.

planetary-computer (1.0) signs an href of `<account>.blob.core.windows.net` with a SAS token it gets
from `{PC_SDK_SAS_URL}/<account>/<container>` (default https://planetarycomputer.microsoft.com/api/
sas/v1/token; `PC_SDK_SUBSCRIPTION_KEY` is sent when set) and caches the token until it has under 60 s
left; it leaves other hosts' hrefs and already signed hrefs unchanged. A signed href changes with every
token, so the index, the manifests and Snakemake's params hold the bare href, and a job signs it right
before opening it, with a token that stays valid at least `min_ttl` seconds more — a new one when the
cached token would run out sooner, as it does in a run that lasts longer than a token.
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse, urlunparse

log = logging.getLogger(__name__)
SIGNERS = ("none", "planetary-computer")
BLOB_STORAGE_DOMAIN = ".blob.core.windows.net"  # planetary_computer.sas's; imported only to sign (0.8 s)


def is_blob_href(href: str) -> bool:
    return urlparse(href).netloc.endswith(BLOB_STORAGE_DOMAIN)


def unsigned(href: str) -> str:
    """The href without its SAS token (a blob href's whole query is the token)."""
    return urlunparse(urlparse(href)._replace(query="")) if is_blob_href(href) else href


def sign_href(href: str, min_ttl_seconds: float) -> str:
    """`href` signed with a token valid for at least `min_ttl_seconds` more; other hosts unchanged."""
    if not is_blob_href(href):
        return href
    import planetary_computer
    from planetary_computer.sas import TOKEN_CACHE
    from planetary_computer.settings import Settings
    from planetary_computer.utils import parse_blob_url

    bare = unsigned(href)
    account, container = parse_blob_url(urlparse(bare))
    key = f"{Settings.get().sas_url}/{account}/{container}"
    cached = TOKEN_CACHE.get(key)
    if cached is not None and cached.ttl() < min_ttl_seconds:
        del TOKEN_CACHE[key]  # planetary-computer itself would keep it until 60 s before it expires
    signed = planetary_computer.sign_url(bare)
    token = TOKEN_CACHE.get(key)
    if token is not None and token.ttl() < min_ttl_seconds:
        log.warning(
            "%s: the token service gave a token valid %.0f s, less than %.0f s", key, token.ttl(), min_ttl_seconds
        )
    return signed


def signer(kind: str, min_ttl_seconds: float):
    """A function href -> href to open: signing for `planetary-computer`, the href itself for `none`."""
    kind = kind or "none"  # a tile row without a signer (catalog, template, WorldCover, CDL)
    if kind not in SIGNERS:
        raise ValueError(f"unknown href signer {kind!r}: use one of {SIGNERS}")
    if kind == "none":
        return lambda href: href
    return lambda href: sign_href(href, min_ttl_seconds)
