"""What Dagster's webserver may answer besides GraphQL: a proxy's HTML page with status
200, JSON that is no GraphQL answer. A real HTTP server on 127.0.0.1 answers so; the
client raises DagsterError and the API answers 502 `dagster_error`, never 500."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter_pipeline.api.dagster_client import DagsterClient, DagsterError, DagsterUnavailable
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.api.conftest import Api


class Answers(BaseHTTPRequestHandler):
    """Answers every POST with 200 and the server's `answer` (content type, body)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        kind, body = self.server.answer  # type: ignore[attr-defined]  # set by the fixture
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the base's name
        pass


@pytest.fixture
def proxy() -> Iterator[ThreadingHTTPServer]:
    """A loopback server answering every POST with 200 and `server.answer`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    server.answer = ("text/html", b"<html><body>Bad gateway</body></html>")  # type: ignore[attr-defined]  # the handler reads it
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize(
    ("kind", "body", "said"),
    [
        ("text/html", b"<html><body>Bad gateway</body></html>", "answered text/html, not JSON"),
        ("application/json", b"", "not JSON"),
        ("application/json", b"[1, 2]", "JSON that is not an object"),
        ("application/json", b'{"data": null}', "answered no data"),
        ("application/json", b'{"errors": ["boom"]}', "Dagster refused the request: boom"),
    ],
)
def test_an_answer_that_is_not_graphql_is_a_dagster_error(
    proxy: ThreadingHTTPServer, kind: str, body: bytes, said: str
) -> None:
    proxy.answer = (kind, body)  # type: ignore[attr-defined]  # the handler reads it
    client = DagsterClient(url_of(proxy), timeout=5)
    try:
        with pytest.raises(DagsterError) as raised:
            client.runs(job="export_x")
    finally:
        client.close()
    assert not isinstance(raised.value, DagsterUnavailable)
    assert said in str(raised.value)


def test_the_api_answers_a_proxys_html_page_with_502(
    proxy: ThreadingHTTPServer,
    make_api: Callable[[Settings], Api],
    api_settings: Settings,
) -> None:
    api = make_api(dataclasses.replace(api_settings, dagster_url=url_of(proxy)))
    with api.client("acme") as acme:
        answer = acme.get("/v1/export-tasks")
    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"] == "application/vnd.api+json"
    assert answer.json()["errors"][0]["code"] == "dagster_error"
