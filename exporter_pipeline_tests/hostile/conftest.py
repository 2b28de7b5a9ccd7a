"""Fixtures of the hostile tests: loopback servers started per test, and no traffic."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from exporter_pipeline_tests.hostile.loopback import Answer, LoopbackServer


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
