"""A real HTTP receiver and a real SMTP server (aiosmtpd) on 127.0.0.1 for delivery tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from exporter_pipeline_tests.exports.conftest import lake  # noqa: F401 (the shared sample lake)
from exporter_pipeline_tests.servers import free_port


def delivering_outputs(
    root: Path, lake_root: Path, names: Sequence[str], hook: Mapping[str, Any]
) -> dict[str, str]:
    """Settings of a location with a local output `root/<name>` per name, each with acme's
    hourly raw export `acme_<name>` delivering by webhook `hook` (exports file written in
    `root`): one sensor delivers for all of them."""
    document = {
        "outputs": {n: {"type": "local", "path": str(root / n)} for n in names},
        "exports": [
            {
                "name": f"acme_{n}",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "hourly",
                "start": "2026-10-01T00:00:00Z",
                "output": {"name": n, "path": "deliveries"},
                "delivery": {"webhook": dict(hook)},
            }
            for n in names
        ],
    }
    (root / "exports.yaml").write_text(yaml.safe_dump(document))
    return {
        "EXPORTER_LAKE_URL": str(lake_root),
        "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
        "EXPORTER_PARTITIONS_START": "2026-09-01",
        "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
    }


@pytest.fixture(autouse=True)
def allow_private_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers here listen on 127.0.0.1, which webhooks may only reach when allowed."""
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers POSTs with the queued statuses (then 200) and keeps every request."""

    url: str
    answers: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks/exports")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                state.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    port = free_port()
    box = Mailbox("127.0.0.1", port)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield box
    controller.stop()
