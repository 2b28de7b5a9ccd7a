"""Real servers on 127.0.0.1 for the hostile webhook tests, and what they share.

`LoopbackServer` is a raw TCP server that reads each HTTP request and lets an `Answer`
reply, so every answer, however malformed or slow, is exactly what a test says.
The fixtures that start them (`servers`) and forbid any request (`no_traffic`) are in
this folder's conftest.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter_pipeline.delivery.webhook import (
    WebhookPolicy,
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


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} was resolved")


def dns(table: dict[str, list[str]]) -> Callable[[str, int], Sequence[str]]:
    return lambda host, port: table[host]


def policy(**overrides: Any) -> WebhookPolicy:
    defaults: dict[str, Any] = dict(allow_private=True)
    return WebhookPolicy(**(defaults | overrides))


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
