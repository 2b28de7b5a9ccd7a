"""Hostile webhook answers to a single `post`: each is one attempt, classified.

Answers that trickle one byte at a time (bounded by the attempt's time limit), 200 MB
answers (read at most 64 KiB, RSS stays flat), statuses classified retryable (5xx, 408,
429, connection refused) or permanent (3xx, other 4xx), and the same `webhook-id` on
every attempt, signed per Standard Webhooks (checked with the `standardwebhooks`
library). Real servers: the raw TCP servers of `loopback` on 127.0.0.1.
"""

from __future__ import annotations

import base64
import functools
import os
import socket
import time
import zlib
from collections.abc import Callable

import psutil
import pytest
from standardwebhooks import Webhook

from exporter_pipeline.delivery.webhook import (
    WebhookRejected,
    WebhookRetryable,
    post,
)
from exporter_pipeline_tests.delivery.test_delivery import SECRET
from exporter_pipeline_tests.hostile.loopback import (
    MESSAGE_ID,
    PAYLOAD,
    SLOW_HEAD,
    Answer,
    LoopbackServer,
    Request,
    head_then_trickle,
    policy,
    replies,
    reply,
    trickle,
)

# --- slow and huge answers -----------------------------------------------------------


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
