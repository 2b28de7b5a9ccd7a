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
  trickling one byte at a time never trips them. The whole delivery, retries and
  backoff included, is bounded too. At most `max_response_bytes` of an answer are read,
  undecoded, and nothing of it is kept: the status decides.
* The URL is only ever shown through `redact_url`: its query string may be a token.

2xx is delivered; 5xx, 408, 429, timeouts and connection errors are retried with
exponential backoff and jitter; 3xx and any other 4xx fail at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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


@dataclass
class WebhookOutcome:
    message_id: str
    status: int
    attempts: int
    answers: list[str] = field(default_factory=list)


class WebhookError(ExporterError):
    """The receiver did not accept the delivery."""

    def __init__(self, message: str, outcome: WebhookOutcome | None = None) -> None:
        super().__init__(message)
        # What happened attempt by attempt, for callers and tests; None if nothing was sent.
        self.outcome = outcome


class WebhookRejected(WebhookError):
    """Retrying the same request cannot succeed: a 3xx, or a 4xx other than 408/429."""


class WebhookRefused(WebhookRejected):
    """Nothing was sent: the URL or an address of its host is not allowed."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    problem = "a webhook secret must look like whsec_<base64>"
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookError(problem)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise WebhookError(problem) from None
    if not key:
        raise WebhookError(problem)
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
    """How hard to try and how far to trust: retries, time and size bounds, addresses."""

    attempts: int = 6
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    # One attempt as a whole: resolving, connecting, sending, and reading the answer.
    timeout_seconds: float = 15.0
    # One delivery: every attempt and every wait between them.
    total_seconds: float = 300.0
    max_response_bytes: int = 65536
    allow_private: bool = False


def post(
    url: str,
    payload: dict[str, Any],
    secret: str,
    message: str,
    policy: WebhookPolicy = WebhookPolicy(),
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    resolve: Resolver = system_resolver,
    clock: Callable[[], float] = time.monotonic,
) -> WebhookOutcome:
    """POST `payload` until it is accepted, retrying what may succeed later."""
    shown = redact_url(url)
    target = parse_webhook_url(url)
    if isinstance(target, str):
        raise WebhookRefused(f"webhook {shown} not sent: the URL {target}")
    try:
        _address_url(target, ipaddress.ip_address("192.0.2.1"))  # any address will do
    except httpx.InvalidURL:
        # httpx's message would quote the URL, query and all.
        raise WebhookRefused(f"webhook {shown} not sent: the URL is not valid") from None
    secret_key(secret)  # a malformed secret fails before anything is sent
    body = orjson.dumps(payload)
    outcome = WebhookOutcome(message_id=message, status=0, attempts=0)
    deadline = clock() + policy.total_seconds
    for attempt in range(1, policy.attempts + 1):
        remaining = deadline - clock()
        if remaining <= 0:
            break
        outcome.attempts = attempt
        # Each attempt is signed afresh: receivers reject stale timestamps.
        headers = signed_headers(secret, message, body)
        seconds = min(policy.timeout_seconds, remaining)
        try:
            status = _run(_attempt(target, headers, body, seconds, policy, resolve))
        except AddressRefused as error:
            outcome.answers.append("refused")
            log(f"webhook attempt {attempt}: not sent, {error}")
            raise WebhookRefused(f"webhook {shown} not sent: {error}", outcome) from None
        except TimeoutError:
            reason = "timeout"
            outcome.answers.append(reason)
        except (httpx.TransportError, OSError) as error:
            # The class name only: library messages may quote the URL.
            reason = type(error).__name__
            outcome.answers.append(reason)
        else:
            outcome.status = status
            outcome.answers.append(str(status))
            if 200 <= status < 300:
                log(f"webhook attempt {attempt}: {status}, delivered")
                return outcome
            if 300 <= status < 400:
                log(f"webhook attempt {attempt}: {status}, redirects are not followed")
                raise WebhookRejected(
                    f"webhook {shown} answered {status}; redirects are not followed", outcome
                )
            if status not in RETRIED_STATUSES:
                log(f"webhook attempt {attempt}: {status}, not retried")
                raise WebhookRejected(
                    f"webhook {shown} refused the delivery with {status}; not retried", outcome
                )
            reason = str(status)
        if attempt == policy.attempts:
            break
        wait = random.uniform(0, min(policy.max_seconds, policy.base_seconds * 2 ** (attempt - 1)))
        if clock() + wait >= deadline:
            log(f"webhook attempt {attempt}: {reason}, no time left for another attempt")
            break
        log(f"webhook attempt {attempt}: {reason}, retrying in {wait:.1f}s")
        sleep(wait)
    answers = ", ".join(outcome.answers)
    if outcome.attempts < policy.attempts:
        raise WebhookError(
            f"webhook {shown} not delivered within the delivery limit of "
            f"{policy.total_seconds:g}s after {outcome.attempts} attempts (answers: {answers})",
            outcome,
        )
    raise WebhookError(
        f"webhook {shown} not delivered after {policy.attempts} attempts (answers: {answers})",
        outcome,
    )


async def _attempt(
    target: WebhookTarget,
    headers: dict[str, str],
    body: bytes,
    seconds: float,
    policy: WebhookPolicy,
    resolve: Resolver,
) -> int:
    """One POST to a vetted address of `target`, all of it within `seconds`; its status.

    Raises TimeoutError, httpx.TransportError or OSError for an attempt that got no
    status (retried), AddressRefused for an address the policy refuses (not retried).
    """
    status: int | None = None
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
