"""The access log keeps every request but never a signed download link's credential: the
filter on `uvicorn.access` drops the query string of `/v1/files/` paths, fed records shaped
as uvicorn's h11 and httptools protocols log them."""

from __future__ import annotations

import logging

from uvicorn.logging import AccessFormatter

from exporter_pipeline.api.access_log import RedactSignedUrls, log_config

SIGNED = "/v1/files/acme_local/daily/2026-10-01.csv?expires=1790000000&signature=ab12cd"


def access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn logs a request (protocols/http/h11_impl.py)."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:51234", "GET", path, "1.1", 200),
        None,
    )


def logged(path: str) -> str:
    record = access_record(path)
    assert RedactSignedUrls().filter(record) is True
    return AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)


def test_a_signed_links_query_string_is_not_logged() -> None:
    line = logged(SIGNED)
    assert "signature" not in line and "expires" not in line
    assert line.startswith(
        '127.0.0.1:51234 - "GET /v1/files/acme_local/daily/2026-10-01.csv?[redacted] HTTP/1.1"'
    )
    # Under a root path, too.
    assert "ab12cd" not in logged("/exporter" + SIGNED)


def test_other_requests_are_logged_whole() -> None:
    for path in (
        "/v1/views?start=2026-10-01T00:00:00Z&end=2026-10-02T00:00:00Z",
        "/v1/files/acme_local/k.csv",
        "/v1/exports",
    ):
        assert f"GET {path} HTTP/1.1" in logged(path)
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "plain", None, None)
    assert RedactSignedUrls().filter(other) is True and other.getMessage() == "plain"


def test_the_served_logging_installs_the_filter_on_the_access_logger() -> None:
    config = log_config()
    names = config["loggers"]["uvicorn.access"]["filters"]
    assert [config["filters"][n]["()"] for n in names] == [RedactSignedUrls]
    # uvicorn's own configuration is not changed in place.
    from uvicorn.config import LOGGING_CONFIG

    assert "filters" not in LOGGING_CONFIG["loggers"]["uvicorn.access"]


def test_a_signature_on_any_path_is_not_logged() -> None:
    # A mistyped path (a 404) may still carry a valid link's signature.
    line = logged("/V1/Files/acme_local/k.csv?expires=1790000000&signature=ab12cd")
    assert "ab12cd" not in line and "[redacted]" in line
