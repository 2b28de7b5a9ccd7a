"""Webhook delivery signed per the Standard Webhooks specification.

Headers: `webhook-id` (stable for one delivery, so a retried POST carries the same id
and receivers can de-duplicate), `webhook-timestamp` (seconds since the epoch) and
`webhook-signature` = `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with
the base64-decoded part of the `whsec_...` secret. 2xx is delivered; 5xx, 408, 429,
timeouts and connection errors are retried with exponential backoff; any other 4xx
fails at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from exporter_pipeline.errors import ExporterError

SECRET_PREFIX = "whsec_"
USER_AGENT = "exporter-pipeline-webhooks/1"


class WebhookError(ExporterError):
    """The receiver did not accept the delivery."""


class WebhookRejected(WebhookError):
    """A 4xx answer (not 408/429): retrying the same request cannot succeed."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookError("a webhook secret must look like whsec_<base64>")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise WebhookError("a webhook secret must look like whsec_<base64>") from None


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


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


@dataclass
class WebhookOutcome:
    message_id: str
    status: int
    attempts: int
    answers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookPolicy:
    attempts: int = 6
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    timeout_seconds: float = 15.0


def post(
    url: str,
    payload: dict[str, Any],
    secret: str,
    message: str,
    policy: WebhookPolicy = WebhookPolicy(),
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookOutcome:
    """POST `payload` until it is accepted, retrying what may succeed later."""
    body = orjson.dumps(payload)
    outcome = WebhookOutcome(message_id=message, status=0, attempts=0)
    for attempt in range(1, policy.attempts + 1):
        outcome.attempts = attempt
        # Each attempt is signed afresh: receivers reject stale timestamps.
        request = urllib.request.Request(
            url, data=body, method="POST", headers=signed_headers(secret, message, body)
        )
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_seconds) as response:
                outcome.status = response.status
                outcome.answers.append(str(response.status))
                log(f"webhook attempt {attempt}: {response.status}, delivered")
                return outcome
        except urllib.error.HTTPError as error:
            outcome.status = error.code
            outcome.answers.append(str(error.code))
            if 400 <= error.code < 500 and error.code not in (408, 429):
                log(f"webhook attempt {attempt}: {error.code}, not retried")
                raise WebhookRejected(
                    f"webhook {url} refused the delivery with {error.code}; not retried"
                ) from None
            reason = str(error.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = type(getattr(error, "reason", error)).__name__
            outcome.answers.append(reason)
        if attempt < policy.attempts:
            wait = random.uniform(
                0, min(policy.max_seconds, policy.base_seconds * 2 ** (attempt - 1))
            )
            log(f"webhook attempt {attempt}: {reason}, retrying in {wait:.1f}s")
            sleep(wait)
    raise WebhookError(
        f"webhook {url} not delivered after {policy.attempts} attempts "
        f"(answers: {', '.join(outcome.answers)})"
    )
