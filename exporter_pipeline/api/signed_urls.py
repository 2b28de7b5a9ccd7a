"""Download links of exported files, valid 7 days (DESIGN.md, retention).

A cloud output signs its own URLs (S3/GCS/Azure presigning). A local folder cannot: the
API serves its files itself (files.py), at `/v1/files/<output>/<key>?expires=&signature=`,
where the signature, an HMAC-SHA256 over the output, the key and the expiry with the
service's own secret (`service_secret(engine, "url_signing")`), is the only credential.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination
from exporter_pipeline.destinations.local import LocalDestination

SECRET_NAME = "url_signing"


def signature(secret: str, output: str, key: str, expires: int) -> str:
    message = f"{output}\n{key}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def local_url(base_url: str, secret: str, output: str, key: str, expires: int) -> str:
    query = urlencode({"expires": expires, "signature": signature(secret, output, key, expires)})
    return f"{base_url}/v1/files/{quote(output, safe='')}/{quote(key, safe='/')}?{query}"


def signature_problem(
    secret: str, output: str, key: str, expires: int, given: str, now: datetime
) -> str | None:
    """Why a download link is refused (tampered or expired), or None when it is good."""
    expected = signature(secret, output, key, expires)
    if not hmac.compare_digest(expected, given.lower()):
        return "the link's signature does not match"
    if expires < now.timestamp():
        return "the link has expired"
    return None


def safe_key(key: str) -> bool:
    """A key that names a file inside an output: relative, no `..` or empty segments."""
    parts = key.split("/")
    return (
        bool(key)
        and "\\" not in key
        and "\0" not in key
        and all(part not in ("", ".", "..") for part in parts)
    )


def download_url(
    destination: Destination,
    output: str,
    key: str,
    *,
    base_url: str,
    secret: str,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A URL to GET `key` of `output` for 7 days, and when it expires."""
    now = now or datetime.now(UTC)
    expires_at = (now + DEFAULT_URL_TTL).replace(microsecond=0)
    if isinstance(destination, LocalDestination):
        expires = int(expires_at.timestamp())
        return local_url(base_url, secret, output, key, expires), expires_at
    return destination.signed_url(key, DEFAULT_URL_TTL), expires_at
