"""The API's access log without credentials: a download link of a local output
(`/v1/files/{output}/{key}?expires=…&signature=…`) is a bearer credential valid 7 days,
and uvicorn logs each request's path with its query string. `RedactSignedUrls` keeps the
line and drops that query string; `log_config()` is uvicorn's logging with it installed
on the `uvicorn.access` logger."""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# Paths whose query string is a credential (signed_urls.py).
SIGNED_PREFIX = "/v1/files/"
REDACTED = "[redacted]"


def redacted(path: str) -> str:
    """`path` (with its query string, as uvicorn logs it) without the query string of a
    signed download link."""
    bare, mark, query = path.partition("?")
    # Also a mistyped path (`/V1/files/…`, a 404) that carries a signature.
    secret = SIGNED_PREFIX in bare.lower() or "signature" in query.lower()
    return f"{bare}?{REDACTED}" if mark and secret else path


class RedactSignedUrls(logging.Filter):
    """Rewrites uvicorn's access records: args are (client, method, path with query,
    HTTP version, status); the path's signed query string is replaced, the line kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redacted(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging, the access logger filtered by RedactSignedUrls."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_signed_urls"] = {"()": RedactSignedUrls}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_signed_urls"]
    return config
