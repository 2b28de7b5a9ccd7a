"""Webhook delivery signed per the Standard Webhooks specification, safe against strangers.

Headers: `webhook-id` (stable for one delivery, so a retried POST carries the same id
and receivers can de-duplicate), `webhook-timestamp` (seconds since the epoch) and
`webhook-signature` = `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, made by the
`standardwebhooks` library with the `whsec_...` secret.

The receiver's URL comes from a tenant, so the sender trusts nothing about it:

* Redirects are not followed: a 3xx is a failed attempt (`WebhookRejected`), never a
  success and never retried, so a receiver cannot bounce the signed POST elsewhere.
* The host is resolved and every address vetted before each attempt
  (`addresses.vet_host`), and the connection goes to that vetted address (see
  `addresses` for why). The request goes to an httpx transport directly, not through a
  client: nothing there can follow a redirect, pick a proxy from the environment, or
  log the URL.
* Each attempt is bounded in wall time as a whole (`asyncio.timeout` around connect,
  request and answer), because httpx's own timeouts bound each read and a receiver
  trickling one byte at a time never trips them. (The whole delivery, retries and
  backoff included, is bounded by the delivery op: `defs/webhooks.py`.) At most
  `max_response_bytes` of an answer are read, undecoded, and nothing of it is kept: the
  status decides.
* The URL is only ever shown through `redact_url`: its query string may be a token.

`post` sends ONE attempt and classifies it: 2xx is delivered; 5xx, 408, 429, timeouts
and connection errors raise `WebhookRetryable` (the delivery op turns that into a
Dagster retry, with exponential backoff and jitter); 3xx and any other 4xx raise
`WebhookRejected`, a refused address `WebhookRefused`: those fail at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import threading
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from exporter_pipeline.delivery.addresses import (
    AddressRefused,
    IPAddress,
    Resolver,
    WebhookTarget,
    parse_webhook_url,
    redact_url,
    system_resolver,
    vet_host,
)
from exporter_pipeline.errors import ExporterError

SECRET_PREFIX = "whsec_"
USER_AGENT = "exporter-pipeline-webhooks/1"
# Answers that may succeed if the same request is sent again later.
RETRIED_STATUSES = frozenset({408, 429, *range(500, 600)})

T = TypeVar("T")


@dataclass(frozen=True)
class WebhookOutcome:
    """An accepted delivery: the id it was sent with and the receiver's 2xx status."""

    message_id: str
    status: int


class WebhookError(ExporterError):
    """The receiver did not accept the delivery."""

    def __init__(self, message: str, answer: str | None = None) -> None:
        super().__init__(message)
        # What the attempt got: a status ("503"), "timeout", an error class name
        # ("ConnectError") or "refused"; None if nothing was attempted.
        self.answer = answer


class WebhookRetryable(WebhookError):
    """The same request may succeed later: a 5xx, 408, 429, a timeout, a connection error."""


class WebhookRejected(WebhookError):
    """Retrying the same request cannot succeed: a 3xx, or a 4xx other than 408/429."""


class WebhookRefused(WebhookRejected):
    """Nothing was sent: the URL or an address of its host is not allowed."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    problem = "a webhook secret must look like whsec_<base64>"
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookRejected(problem)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise WebhookRejected(problem) from None
    if not key:
        raise WebhookRejected(problem)
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC>` of a UTF-8 body (our bodies are JSON, so always UTF-8)."""
    # Webhook() decodes the secret leniently; secret_key checks its form first.
    signer = Webhook(secret_key(secret))
    return signer.sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode())


def signed_headers(
    secret: str, message_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def message_id(*parts: str) -> str:
    """A stable id for one delivery: the same inputs always give the same id."""
    return "msg_" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WebhookPolicy:
    """How far to trust one attempt: its time and size bounds, and the addresses allowed.

    How often to try again is not here: each attempt is a Dagster retry of the delivery.
    """

    # One attempt as a whole: resolving, connecting, sending, and reading the answer.
    timeout_seconds: float = 15.0
    max_response_bytes: int = 65536
    allow_private: bool = False


def post(
    url: str,
    payload: dict[str, Any],
    secret: str,
    message: str,
    policy: WebhookPolicy = WebhookPolicy(),
    resolve: Resolver = system_resolver,
) -> WebhookOutcome:
    """POST `payload` once and classify the answer.

    Returns on a 2xx. Raises `WebhookRetryable` for what may succeed later (5xx, 408,
    429, timeouts, connection errors), `WebhookRejected` for what cannot (3xx, other
    4xx), and `WebhookRefused` when nothing may be sent (the URL or an address of its
    host is not allowed). Messages show the URL only redacted.
    """
    shown = redact_url(url)
    target = parse_webhook_url(url)
    if isinstance(target, str):
        raise WebhookRefused(f"webhook {shown} not sent: the URL {target}")
    try:
        _address_url(target, ipaddress.ip_address("192.0.2.1"))  # any address will do
    except httpx.InvalidURL:
        # httpx's message would quote the URL, query and all.
        raise WebhookRefused(f"webhook {shown} not sent: the URL is not valid") from None
    body = orjson.dumps(payload)
    # Signed at each attempt: receivers reject stale timestamps. A malformed secret
    # fails here, before anything is sent.
    headers = signed_headers(secret, message, body)
    try:
        status = _run(_attempt(target, headers, body, policy, resolve))
    except AddressRefused as error:
        raise WebhookRefused(f"webhook {shown} not sent: {error}", "refused") from None
    except TimeoutError:
        raise WebhookRetryable(
            f"webhook {shown} did not answer within {policy.timeout_seconds:g}s", "timeout"
        ) from None
    except (httpx.TransportError, OSError) as error:
        # The class name only: library messages may quote the URL.
        kind = type(error).__name__
        raise WebhookRetryable(f"webhook {shown} could not be reached ({kind})", kind) from None
    if 200 <= status < 300:
        return WebhookOutcome(message_id=message, status=status)
    if 300 <= status < 400:
        raise WebhookRejected(
            f"webhook {shown} answered {status}; redirects are not followed", str(status)
        )
    if status not in RETRIED_STATUSES:
        raise WebhookRejected(
            f"webhook {shown} refused the delivery with {status}; not retried", str(status)
        )
    raise WebhookRetryable(f"webhook {shown} answered {status}", str(status))


async def _attempt(
    target: WebhookTarget,
    headers: dict[str, str],
    body: bytes,
    policy: WebhookPolicy,
    resolve: Resolver,
) -> int:
    """One POST to a vetted address of `target`, all of it within the policy's time; its
    status.

    Raises TimeoutError, httpx.TransportError or OSError for an attempt that got no
    status (retried), AddressRefused for an address the policy refuses (not retried).
    """
    status: int | None = None
    seconds = policy.timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            address = await _in_daemon_thread(vet_host, target, policy.allow_private, resolve)
            request_headers = {
                **headers,
                "host": target.host_header,
                # Undecoded answers only: a small gzip body must not inflate in memory.
                "accept-encoding": "identity",
            }
            extensions: dict[str, Any] = {"timeout": httpx.Timeout(seconds).as_dict()}
            if target.literal is None:
                # For https, SNI and the certificate check use the name, not the address.
                extensions["sni_hostname"] = target.host
            request = httpx.Request(
                "POST",
                _address_url(target, address),
                content=body,
                headers=request_headers,
                extensions=extensions,
            )
            # Straight to a transport, without an httpx.Client: a transport never follows
            # a redirect, reads no proxy from the environment, keeps no cookies, and does
            # not log the URL (the client logs every request, query string and all).
            async with httpx.AsyncHTTPTransport() as transport:
                response = await transport.handle_async_request(request)
                try:
                    status = response.status_code
                    await _discard(response, policy.max_response_bytes)
                finally:
                    await response.aclose()
    except (TimeoutError, httpx.TransportError):
        # Once the status is known the answer is decided; a body that trickles or
        # breaks off afterwards does not turn an accepted delivery into a failure.
        if status is None:
            raise
    assert status is not None
    return status


def _address_url(target: WebhookTarget, address: IPAddress) -> httpx.URL:
    # Built from parts already checked, never by reparsing the tenant's text.
    return httpx.URL(
        scheme=target.scheme,
        host=str(address),
        port=target.port,
        raw_path=target.target.encode("ascii"),
    )


async def _discard(response: httpx.Response, limit: int) -> None:
    """Read at most `limit` bytes of the answer, as they come, keeping none of them."""
    read = 0
    # aiter_raw is an async generator (typed as an iterator): close it when we stop early.
    chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            read += len(chunk)
            if read >= limit:
                break


async def _in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (name resolution) in a thread the attempt may abandon.

    `asyncio.to_thread` would use the loop's executor, which `asyncio.run` joins on exit:
    a resolver that hangs would then outlast the attempt's time limit.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: Exception | None) -> None:
        if future.done():  # cancelled: the attempt ran out of time
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(T, result))

    def work() -> None:
        result: T | None = None
        error: Exception | None = None
        try:
            result = function(*args)
        except Exception as failure:
            error = failure
        with contextlib.suppress(RuntimeError):  # the loop is closed: the attempt gave up
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="webhook-resolve", daemon=True).start()
    return await future


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an attempt from synchronous code (a Dagster op), even inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
