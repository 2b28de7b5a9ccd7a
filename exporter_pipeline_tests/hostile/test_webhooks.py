"""Hostile webhooks: a tenant's receiver URL, DNS and answers are a stranger's input.

Covers redirects (301, 302, 307, 308: a failed attempt, never followed, never retried),
addresses refused at definition time (the exact `validate` message) and at send time
(IP literals, `localhost`, and names whose DNS answer holds a non-public address), the
same URLs accepted when `EXPORTER_WEBHOOK_ALLOW_PRIVATE=true`, credentials in the URL,
a `?token=` that appears in no exception, log line, event or metadata of a real
in-process Dagster delivery run, answers that trickle one byte at a time (bounded per
attempt, and per delivery across the run's Dagster retries), 200 MB answers (read at most
64 KiB, RSS stays flat), every answer classified as retryable or permanent by a single
`post`, and Standard Webhooks signatures checked with the `standardwebhooks` library.

Real servers: raw TCP servers on 127.0.0.1 written here (one per test), so every answer,
however malformed or slow, is exactly what the test says. Nothing is ever sent to any
other address: refusals of private, link-local or DNS-to-loopback targets are asserted
before any connection, with the HTTP transport replaced by one that fails the test.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psutil
import pytest
from standardwebhooks import Webhook

from exporter_pipeline.defs.webhooks import WebhooksResource
from exporter_pipeline.delivery.addresses import redact_url, webhook_url_problem
from exporter_pipeline.delivery.webhook import (
    WebhookPolicy,
    WebhookRefused,
    WebhookRejected,
    WebhookRetryable,
    post,
)
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.spec import parse_definitions
from exporter_pipeline_tests.delivery.test_delivery import SECRET, Deployment
from exporter_pipeline_tests.exports.conftest import Lake, lake  # noqa: F401 (shared lake)

HINT = "webhooks go only to public addresses unless EXPORTER_WEBHOOK_ALLOW_PRIVATE=true"
CREDENTIALS = (
    "must not carry credentials; put a token in the query string or use the signing secret"
)
PAYLOAD = {"type": "export.ready", "export": "acme_x", "files": []}
MESSAGE_ID = "msg_hostile"


# --- real servers on 127.0.0.1 -------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[socket.socket, Request], None]


@dataclass
class LoopbackServer:
    """A TCP server on 127.0.0.1 that reads each HTTP request and lets `answer` reply."""

    answer: Answer
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)  # SNI, with tls

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(10)
                if self.tls is not None:
                    connection = self.tls.wrap_socket(connection, server_side=True)
                request = read_request(connection)
                self.requests.append(request)
                self.answer(connection, request)
            except OSError:
                pass  # the client hung up: that is what several tests want

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def read_request(connection: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a request")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    while len(body) < int(headers.get("content-length", "0")):
        body += connection.recv(65536)
    return Request(method, target, headers, body)


def reply(status: int, headers: dict[str, str] | None = None, body: bytes = b"ok") -> Answer:
    def answer(connection: socket.socket, _: Request) -> None:
        lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return answer


def replies(*statuses: int) -> Answer:
    """The queued statuses in turn (then 200), one per request."""
    queue = list(statuses)

    def answer(connection: socket.socket, request: Request) -> None:
        reply(queue.pop(0) if queue else 200)(connection, request)

    return answer


@pytest.fixture
def servers() -> Iterator[Callable[..., LoopbackServer]]:
    started: list[LoopbackServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> LoopbackServer:
        started.append(LoopbackServer(answer, tls))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def no_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP request at all fails the test: refusals must happen before connecting."""

    async def refuse(self: Any, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request was sent to {request.url.host}")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse)


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} was resolved")


def dns(table: dict[str, list[str]]) -> Callable[[str, int], Sequence[str]]:
    return lambda host, port: table[host]


def policy(**overrides: Any) -> WebhookPolicy:
    defaults: dict[str, Any] = dict(allow_private=True)
    return WebhookPolicy(**(defaults | overrides))


# --- redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_a_failed_attempt_not_followed_not_retried(
    status: int, servers: Callable[..., LoopbackServer]
) -> None:
    admin = servers(reply(200))
    location = {"location": f"http://127.0.0.1:{admin.port}/internal-admin"}
    receiver = servers(reply(status, location))
    url = receiver.url("/hooks?token=SECRET123")
    with pytest.raises(WebhookRejected) as raised:
        post(url, PAYLOAD, SECRET, MESSAGE_ID, policy())
    assert str(raised.value) == (
        f"webhook http://127.0.0.1:{receiver.port}/hooks?… answered {status}; "
        "redirects are not followed"
    )
    assert raised.value.answer == str(status)
    assert [r.method for r in receiver.requests] == ["POST"]
    assert admin.connections == 0 and admin.requests == []


# --- addresses -----------------------------------------------------------------------

REFUSED_LITERALS = [
    ("http://127.0.0.1:8080/hooks", f"host 127.0.0.1 is a loopback address; {HINT}"),
    ("http://10.1.2.3/hooks", f"host 10.1.2.3 is a private address; {HINT}"),
    ("https://192.168.0.10/hooks", f"host 192.168.0.10 is a private address; {HINT}"),
    (
        "http://169.254.169.254/latest/meta-data/",
        f"host 169.254.169.254 is a link-local address; {HINT}",
    ),
    ("http://224.0.0.251/hooks", f"host 224.0.0.251 is a multicast address; {HINT}"),
    ("http://0.0.0.0:9/hooks", f"host 0.0.0.0 is an unspecified address; {HINT}"),
    ("http://240.0.0.1/hooks", f"host 240.0.0.1 is a reserved address; {HINT}"),
    ("http://100.64.0.1/hooks", f"host 100.64.0.1 is a special-purpose address; {HINT}"),
    ("http://[::1]:8080/hooks", f"host ::1 is a loopback address; {HINT}"),
    ("http://[fe80::1]/hooks", f"host fe80::1 is a link-local address; {HINT}"),
    ("http://[fd00:ec2::254]/hooks", f"host fd00:ec2::254 is a private address; {HINT}"),
    ("http://[ff02::1]/hooks", f"host ff02::1 is a multicast address; {HINT}"),
    (
        "http://[::ffff:127.0.0.1]/hooks",
        f"host ::ffff:127.0.0.1 is a loopback address (IPv4 127.0.0.1 inside IPv6); {HINT}",
    ),
    (
        "http://[::ffff:169.254.169.254]/hooks",
        "host ::ffff:169.254.169.254 is a link-local address "
        f"(IPv4 169.254.169.254 inside IPv6); {HINT}",
    ),
    ("http://localhost:8080/hooks", f"host localhost is a loopback name; {HINT}"),
    ("http://admin.localhost/hooks", f"host admin.localhost is a loopback name; {HINT}"),
]


def definitions(url: str) -> dict[str, Any]:
    export = {
        "name": "acme_x",
        "tenant": "acme",
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-11-01",
        "output": {"name": "local", "path": "x"},
        "delivery": {"webhook": {"url": url, "secret_env": "HOOK_SECRET"}},
    }
    return {"outputs": {"local": {"type": "local", "path": "/tmp/x"}}, "exports": [export]}


def validate(url: str) -> str | None:
    """The `validate` message of a definitions file with this webhook URL, or None."""
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    try:
        parse_definitions(definitions(url), Path("exports.yaml"), now=now)
    except DefinitionError as error:
        return str(error)
    return None


def at_url(message: str) -> str:
    return f"exports.yaml: export 'acme_x' (/exports/0/delivery/webhook/url): {message}"


@pytest.mark.parametrize(("url", "message"), REFUSED_LITERALS)
def test_non_public_literal_refused_at_definition_time(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "false")
    assert validate(url) == at_url(message)
    assert webhook_url_problem(url, allow_private=False) == message


@pytest.mark.parametrize(("url", "message"), REFUSED_LITERALS)
def test_non_public_literal_refused_at_send_time_without_traffic(
    url: str, message: str, no_traffic: None
) -> None:
    with pytest.raises(WebhookRefused) as raised:
        post(url, PAYLOAD, SECRET, MESSAGE_ID, policy(allow_private=False), resolve=no_dns)
    assert str(raised.value) == f"webhook {url} not sent: {message}"
    assert raised.value.answer == "refused"


@pytest.mark.parametrize(("url", "message"), REFUSED_LITERALS)
def test_non_public_literal_accepted_when_private_allowed(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    assert validate(url) is None
    assert webhook_url_problem(url, allow_private=True) is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (["127.0.0.1"], "hooks.example resolves to 127.0.0.1, a loopback address"),
        (["::1"], "hooks.example resolves to ::1, a loopback address"),
        (
            ["169.254.169.254"],
            "hooks.example resolves to 169.254.169.254, a link-local address",
        ),
        # One bad address among public ones is enough: the client could pick any.
        (
            ["93.184.215.14", "10.0.0.7"],
            "hooks.example resolves to 10.0.0.7, a private address",
        ),
        (
            ["::ffff:127.0.0.1"],
            "hooks.example resolves to ::ffff:127.0.0.1, "
            "a loopback address (IPv4 127.0.0.1 inside IPv6)",
        ),
    ],
)
def test_name_resolving_to_non_public_address_refused_before_connecting(
    answer: list[str], message: str, no_traffic: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://hooks.example/exports?token=SECRET123"
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "false")
    assert validate(url) is None  # a name passes the definition; its addresses may change
    with pytest.raises(WebhookRefused) as raised:
        post(
            url,
            PAYLOAD,
            SECRET,
            MESSAGE_ID,
            policy(allow_private=False),
            resolve=dns({"hooks.example": answer}),
        )
    assert (
        str(raised.value) == f"webhook https://hooks.example/exports?… not sent: {message}; {HINT}"
    )
    # Refused is permanent: a WebhookRejected, which the delivery op never retries.
    assert isinstance(raised.value, WebhookRejected) and raised.value.answer == "refused"


def test_vetted_address_is_the_one_connected_and_host_header_keeps_the_name(
    servers: Callable[..., LoopbackServer],
) -> None:
    receiver = servers(reply(204))
    url = f"http://hooks.example:{receiver.port}/exports?token=SECRET123"
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        resolved.append(f"{host}:{port}")
        return ["127.0.0.1"]

    outcome = post(url, PAYLOAD, SECRET, MESSAGE_ID, policy(), resolve=resolve)
    assert outcome.status == 204
    assert resolved == [f"hooks.example:{receiver.port}"]
    [request] = receiver.requests
    assert request.target == "/exports?token=SECRET123"
    assert request.headers["host"] == f"hooks.example:{receiver.port}"


def certificate_authority(tmp_path: Path, name: str) -> ssl.SSLContext:
    """A server TLS context with a certificate for `name`, signed by a new CA whose
    certificate is written to `tmp_path/ca.pem` (what SSL_CERT_FILE then trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def certificate(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("hostile test CA", ca_key, "hostile test CA", ca_key, ca=True)
    leaf = certificate(name, key, "hostile test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    return context


@pytest.mark.parametrize(
    ("certificate_for", "delivered"),
    [("hooks.example", True), ("other.example", False)],
)
def test_https_to_the_vetted_address_verifies_the_certificate_against_the_name(
    certificate_for: str,
    delivered: bool,
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = certificate_authority(tmp_path, certificate_for)
    sni: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: sni.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    receiver = servers(reply(200), tls=context)
    url = f"https://hooks.example:{receiver.port}/exports?token=SECRET123"
    resolve = dns({"hooks.example": ["127.0.0.1"]})
    if delivered:
        outcome = post(url, PAYLOAD, SECRET, MESSAGE_ID, policy(), resolve=resolve)
        assert outcome.status == 200
        assert [r.headers["host"] for r in receiver.requests] == [f"hooks.example:{receiver.port}"]
    else:
        with pytest.raises(WebhookRetryable) as raised:
            post(url, PAYLOAD, SECRET, MESSAGE_ID, policy(), resolve=resolve)
        assert str(raised.value) == (
            f"webhook https://hooks.example:{receiver.port}/exports?… could not be reached "
            "(ConnectError)"
        )
        assert receiver.requests == []
    # The handshake named the host, not the address the connection went to.
    assert sni == ["hooks.example"]


# --- credentials and secrets ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@hooks.example/exports",
        "https://token@hooks.example/exports",
        "https://user:hunter2@127.0.0.1/exports",
    ],
)
def test_credentials_in_url_refused_at_definition_and_send_time(
    url: str, no_traffic: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    assert validate(url) == at_url(CREDENTIALS)
    with pytest.raises(WebhookRefused) as raised:
        post(url, PAYLOAD, SECRET, MESSAGE_ID, policy(), resolve=no_dns)
    assert str(raised.value) == f"webhook {redact_url(url)} not sent: the URL {CREDENTIALS}"
    assert "hunter2" not in str(raised.value) and "@" not in str(raised.value)
    assert raised.value.answer is None  # nothing was attempted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example/a/b?token=SECRET123", "https://hooks.example/a/b?…"),
        (
            "https://u:SECRET123@hooks.example:8443/x?a=1#SECRET123",
            "https://hooks.example:8443/x?…#…",
        ),
        ("http://[::1]:9/x?SECRET123", "http://[::1]:9/x?…"),
        ("https://hooks.example:99999/x?SECRET123", "<invalid URL>"),
    ],
)
def test_redact_url_keeps_where_and_hides_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_query_token_appears_in_no_error_log_event_or_metadata_of_a_real_run(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = "SECRET123"
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(replies(500, 400))
    hook = type("Hook", (), {"url": receiver.url(f"/hooks/exports?token={marker}")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, hook, None, {})
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])

    assert not result.success
    # The token did go to the receiver, on both attempts: 500 is retried, 400 is not.
    assert [r.target for r in receiver.requests] == [f"/hooks/exports?token={marker}"] * 2
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    assert error.message.strip().endswith(
        f"webhook http://127.0.0.1:{receiver.port}/hooks/exports?… "
        "refused the delivery with 400; not retried"
    )
    records = deployment.instance.all_logs(result.run_id)
    messages = [r.user_message for r in records]
    assert any(m.startswith("webhook attempt 1: 500, retrying in") for m in messages)
    assert "webhook attempt 2: 400, not retried" in messages
    # The one webhooks resource holds limits only: no URL, no secret.
    resource = deployment.defs.resources["webhooks"]
    assert isinstance(resource, WebhooksResource)
    assert marker not in repr(resource) and SECRET not in repr(resource)
    run = deployment.instance.get_run_by_id(result.run_id)
    captured = capfd.readouterr()
    everything = "\n".join(
        [
            *(repr(r) for r in records),
            error.to_string(),
            repr(run),
            repr(resource),
            captured.out,
            captured.err,
            *(r.getMessage() for r in caplog.records),
        ]
    )
    # The scanned text does hold the URL, in its redacted form only.
    assert f"127.0.0.1:{receiver.port}/hooks/exports?…" in everything
    assert len(records) > 10 and marker not in everything


def test_delivered_run_shows_the_redacted_url_in_its_metadata(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(replies(503))
    hook = type("Hook", (), {"url": receiver.url("/hooks?token=SECRET123")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, hook, None, {})
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert result.success
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = event.event_specific_data.metadata
    assert metadata["webhook_url"] == dg.TextMetadataValue(
        f"http://127.0.0.1:{receiver.port}/hooks?…"
    )
    assert (metadata["webhook_status"].value, metadata["webhook_attempts"].value) == (200, 2)


# --- slow and huge answers -----------------------------------------------------------


def trickle(data: bytes, every: float = 0.2) -> Answer:
    """Send `data` one byte at a time, `every` seconds apart (until the client leaves)."""

    def answer(connection: socket.socket, _: Request) -> None:
        for byte in data:
            connection.sendall(bytes([byte]))
            time.sleep(every)

    return answer


def head_then_trickle(status: int, body: bytes) -> Answer:
    def answer(connection: socket.socket, request: Request) -> None:
        connection.sendall(f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n\r\n".encode())
        trickle(body)(connection, request)

    return answer


SLOW_HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_trickled_status_line_times_out_within_the_attempt_limit(
    servers: Callable[..., LoopbackServer],
) -> None:
    receiver = servers(trickle(SLOW_HEAD))
    started = time.monotonic()
    with pytest.raises(WebhookRetryable) as raised:
        post(receiver.url(), PAYLOAD, SECRET, MESSAGE_ID, policy(timeout_seconds=1.0))
    elapsed = time.monotonic() - started
    assert str(raised.value) == f"webhook {receiver.url()} did not answer within 1s"
    assert raised.value.answer == "timeout"
    assert len(receiver.requests) == 1
    # One attempt of 1 s (40 bytes at 0.2 s would take 8 s), plus a little overhead.
    assert 0.9 < elapsed < 1.8, elapsed


def test_trickled_answers_stop_at_the_delivery_limit_across_dagster_retries(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(trickle(SLOW_HEAD))
    hook = type("Hook", (), {"url": receiver.url("/hooks")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    limits = {"EXPORTER_WEBHOOK_ATTEMPT_TIMEOUT_S": "1", "EXPORTER_WEBHOOK_TOTAL_TIMEOUT_S": "2"}
    deployment = Deployment(tmp_path, lake, output, hook, None, {}, settings=limits)
    assert deployment.export().success
    request = deployment.tick()[0]
    started = time.monotonic()
    result = deployment.deliver(request)
    elapsed = time.monotonic() - started
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    # Each attempt ends at its own limit; the delivery limit cuts the retries (4 allowed).
    assert re.search(
        rf"webhook {re.escape(receiver.url())} not delivered within the delivery limit of 2s "
        r"after [123] attempts \(last answer: timeout\)$",
        error.message.strip(),
    ), error.message
    assert 1 <= len(receiver.requests) < 4
    assert elapsed < 5.0, elapsed


def test_body_trickled_after_a_200_status_is_still_delivered_in_time(
    servers: Callable[..., LoopbackServer],
) -> None:
    receiver = servers(head_then_trickle(200, b"x" * 100))
    started = time.monotonic()
    outcome = post(receiver.url(), PAYLOAD, SECRET, MESSAGE_ID, policy(timeout_seconds=1.0))
    assert outcome.status == 200
    assert time.monotonic() - started < 1.8


HUGE = 200 * 1024 * 1024
PIECE = bytes(65536)


@functools.cache
def gzip_bomb() -> bytes:
    """200 MB of zeros as gzip (about 200 KB), compressed piece by piece to stay small."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    parts = [compressor.compress(PIECE) for _ in range(HUGE // len(PIECE))]
    return b"".join(parts) + compressor.flush()


def huge(kind: str) -> Answer:
    """A 200 answer of 200 MB, streamed in 64 KiB pieces until the client stops reading."""

    def answer(connection: socket.socket, _: Request) -> None:
        if kind == "gzip-bomb":
            # A client that decoded the answer would inflate it to 200 MB.
            bomb = gzip_bomb()
            head = f"content-encoding: gzip\r\ncontent-length: {len(bomb)}"
            connection.sendall(f"HTTP/1.1 200 OK\r\n{head}\r\n\r\n".encode() + bomb)
            return
        head = f"content-length: {HUGE}" if kind == "length" else "transfer-encoding: chunked"
        connection.sendall(f"HTTP/1.1 200 OK\r\n{head}\r\n\r\n".encode())
        for _ in range(HUGE // len(PIECE)):
            if kind == "length":
                connection.sendall(PIECE)
            else:
                connection.sendall(b"10000\r\n" + PIECE + b"\r\n")

    return answer


@pytest.mark.parametrize("kind", ["length", "chunked", "gzip-bomb"])
def test_huge_answer_is_not_read_and_memory_stays_flat(
    kind: str, servers: Callable[..., LoopbackServer]
) -> None:
    gzip_bomb()  # made before the measurement: the server shares this process
    receiver = servers(huge(kind))
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    started = time.monotonic()
    outcome = post(receiver.url(), PAYLOAD, SECRET, MESSAGE_ID, policy())
    elapsed = time.monotonic() - started
    grown = process.memory_info().rss - before
    assert outcome.status == 200
    assert elapsed < 3.0, elapsed
    assert grown < 50 * 1024 * 1024, grown


# --- accepted deliveries -------------------------------------------------------------


def test_each_post_is_one_attempt_with_the_same_id_until_a_200(
    servers: Callable[..., LoopbackServer],
) -> None:
    receiver = servers(replies(503, 429, 200))
    url = receiver.url("/hooks?token=abc")
    answers = []
    for _ in range(2):
        with pytest.raises(WebhookRetryable) as raised:
            post(url, PAYLOAD, SECRET, MESSAGE_ID, policy())
        answers.append(raised.value.answer)
    outcome = post(url, PAYLOAD, SECRET, MESSAGE_ID, policy())
    assert answers == ["503", "429"] and outcome.status == 200
    assert {r.headers["webhook-id"] for r in receiver.requests} == {MESSAGE_ID}
    for request in receiver.requests:
        assert request.method == "POST" and request.target == "/hooks?token=abc"
        assert request.headers["content-type"] == "application/json"
        assert Webhook(SECRET).verify(request.body, request.headers) == PAYLOAD
    forged = "whsec_" + base64.b64encode(b"another secret of 32 bytes long!").decode()
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(forged).verify(receiver.requests[-1].body, receiver.requests[-1].headers)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        *((code, WebhookRetryable) for code in (500, 502, 503, 504, 408, 429)),
        *((code, WebhookRejected) for code in (300, 304, 400, 401, 403, 404, 410, 422)),
    ],
)
def test_answers_are_classified_retryable_or_permanent(
    status: int, kind: type[Exception], servers: Callable[..., LoopbackServer]
) -> None:
    receiver = servers(reply(status))
    with pytest.raises(kind) as raised:
        post(receiver.url(), PAYLOAD, SECRET, MESSAGE_ID, policy())
    assert type(raised.value) is kind and getattr(raised.value, "answer", None) == str(status)


def test_connection_refused_is_retryable() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(WebhookRetryable) as raised:
        post(f"http://127.0.0.1:{port}/hooks", PAYLOAD, SECRET, MESSAGE_ID, policy())
    assert raised.value.answer == "ConnectError"
