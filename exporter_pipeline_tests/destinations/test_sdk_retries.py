"""The cloud SDKs' own retries, as each destination configures them, against real servers:
a loopback HTTP proxy in front of the moto server, the GCS emulator or Azurite answers
503 to uploads a set number of times, and each SDK must retry through it (S3 and Azure a
counted number of attempts, GCS up to a deadline) or give up with a retryable error."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter_pipeline.destinations import Destination
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline_tests.cloud import CloudServer

CLOUDS = ["s3", "gcs", "azure"]
UPLOADS = ("PUT", "POST")
# Hop-by-hop headers, and those the proxy recomputes.
SKIPPED = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FlakyProxy(ThreadingHTTPServer):
    """Forwards every request to `upstream_port`, except that the first `failures` uploads
    are answered `503 Service Unavailable` (what a busy bucket says)."""

    daemon_threads = True

    def __init__(self, upstream_port: int, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.failures = failures
        self.uploads = 0
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def refuse(self, method: str) -> bool:
        with self.lock:
            if method not in UPLOADS:
                return False
            self.uploads += 1
            if self.refused < self.failures:
                self.refused += 1
                return True
            return False


class _Handler(BaseHTTPRequestHandler):
    server: FlakyProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in SKIPPED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        body = self._body()
        if self.server.refuse(self.command):
            self._answer(503, [("Content-Type", "text/plain")], b"busy, try again")
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self._answer(response.status, response.getheaders(), response.read())
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@pytest.fixture
def flaky() -> Iterator[list[FlakyProxy]]:
    started: list[FlakyProxy] = []
    yield started
    for proxy in started:
        proxy.shutdown()
        proxy.server_close()


def through_proxy(
    server: CloudServer, failures: int, started: list[FlakyProxy]
) -> tuple[FlakyProxy, Destination]:
    """A destination on a new bucket of `server` whose every call goes through a proxy."""
    proxy = FlakyProxy(server.port, failures)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    started.append(proxy)
    via = f"http://127.0.0.1:{proxy.port}"
    address = {
        "s3": {"TEST_S3_ENDPOINT": via},
        "gcs": {"STORAGE_EMULATOR_HOST": via},
        "azure": {"TEST_AZ_URL": server.url.replace(f":{server.port}", f":{proxy.port}")},
    }[server.kind]
    return proxy, server.destination(server.new_bucket(), **address)


@pytest.mark.parametrize("kind", CLOUDS)
def test_a_passing_503_is_retried_by_the_sdk(
    kind: str, cloud_servers: dict[str, CloudServer], flaky: list[FlakyProxy]
) -> None:
    proxy, destination = through_proxy(cloud_servers[kind], 2, flaky)
    with destination:
        destination.put_bytes(b"arrived on the third try", "k.csv")
        assert destination.get_bytes("k.csv") == b"arrived on the third try"
    assert proxy.refused == 2 and proxy.uploads == 3


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_the_sdk_gives_up_after_the_configured_attempts(
    kind: str, cloud_servers: dict[str, CloudServer], flaky: list[FlakyProxy]
) -> None:
    proxy, destination = through_proxy(cloud_servers[kind], 100, flaky)
    with destination, pytest.raises(RetryableDestinationError) as error:
        destination.put_bytes(b"never", "k.csv")
    assert proxy.uploads == 3  # EXPORTER_DESTINATION_ATTEMPTS=3 in the tests
    assert str(error.value).endswith("(gave up after 3 attempts)")
    assert "/k.csv: " in str(error.value)


def test_gcs_gives_up_at_its_deadline(
    cloud_servers: dict[str, CloudServer], flaky: list[FlakyProxy]
) -> None:
    proxy, destination = through_proxy(cloud_servers["gcs"], 1000, flaky)
    with destination, pytest.raises(RetryableDestinationError) as error:
        destination.put_bytes(b"never", "k.csv")
    assert proxy.uploads >= 2  # retried until EXPORTER_DESTINATION_RETRY_S=3 ran out
    assert str(error.value).endswith(": InvalidResponse 503 (gave up after retrying for 3 s)")
