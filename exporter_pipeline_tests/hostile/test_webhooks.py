"""Hostile webhook URLs and addresses: a tenant's receiver URL and DNS are a stranger's input.

Covers redirects (301, 302, 307, 308: a failed attempt, never followed, never retried),
addresses refused at definition time (the exact `validate` message) and at send time
(IP literals, `localhost`, and names whose DNS answer holds a non-public address), the
same URLs accepted when `EXPORTER_WEBHOOK_ALLOW_PRIVATE=true`, https to the vetted
address checked against the name, and credentials in the URL. Hostile answers are in
`test_webhook_answers.py`, whole Dagster delivery runs in `test_webhook_runs.py`.

Real servers: raw TCP servers on 127.0.0.1 (`loopback`, one per test), so every answer,
however malformed or slow, is exactly what the test says. Nothing is ever sent to any
other address: refusals of private, link-local or DNS-to-loopback targets are asserted
before any connection, with the HTTP transport replaced by one that fails the test.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter_pipeline.delivery.addresses import redact_url, webhook_url_problem
from exporter_pipeline.delivery.webhook import (
    WebhookRefused,
    WebhookRejected,
    WebhookRetryable,
    post,
)
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.spec import parse_definitions
from exporter_pipeline_tests.delivery.test_delivery import SECRET
from exporter_pipeline_tests.hostile.loopback import (
    MESSAGE_ID,
    PAYLOAD,
    LoopbackServer,
    dns,
    no_dns,
    policy,
    reply,
)

HINT = "webhooks go only to public addresses unless EXPORTER_WEBHOOK_ALLOW_PRIVATE=true"
CREDENTIALS = (
    "must not carry credentials; put a token in the query string or use the signing secret"
)


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
