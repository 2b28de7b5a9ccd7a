"""The webhooks resource, and each webhook attempt of a delivery as one Dagster retry.

`WebhooksResource` is injected by type (`webhooks: WebhooksResource`), like
`OutputsResource`. Its configuration holds limits and, like that resource's, the store's
URL when it has no password: never a webhook's URL (resource config is shown in the UI,
and a URL's query string may be a token) and never a secret. The secret of an export is
read when that export's webhook is sent: from the environment variable its definition
names (`secret_env`), or from the definitions store (`secret_stored`: only that export's
row, decrypted then), so a delivery needs no other tenant's secret, and a missing one
fails only the delivery that needs it, with a message naming the export and where the
secret should be (never a value).

Retries are Dagster's: `post` sends one attempt, and a retryable answer raises
`dg.RetryRequested` with the export's own attempts and wait (exponential backoff from
`backoff_seconds`, capped at a minute, full jitter: the definition's values, while the op
is shared by every export, so they are applied per run rather than declared on the op
as a `dg.RetryPolicy`). Each attempt is then a step retry in the UI.
The whole delivery, every attempt and wait, stays within `total_timeout_s` from the
run's start.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import dagster as dg

from exporter_pipeline.defs.resources import open_store, store_config_url
from exporter_pipeline.delivery.addresses import redact_url
from exporter_pipeline.delivery.notices import Notice
from exporter_pipeline.delivery.webhook import (
    WebhookOutcome,
    WebhookPolicy,
    WebhookRejected,
    WebhookRetryable,
    post,
    secret_key,
)
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.exports.spec import WebhookDelivery
from exporter_pipeline.settings import Settings


def not_sent(export: str, why: str) -> dg.Failure:
    """A webhook that cannot be signed: not retried (no attempt of this run would fix it)."""
    return dg.Failure(f"webhook of export {export!r} not sent: {why}", allow_retries=False)


class WebhooksResource(dg.ConfigurableResource):
    """Sends the webhook of the one export being delivered, signed with its own secret."""

    attempt_timeout_s: float = 15.0
    total_timeout_s: float = 300.0
    max_response_bytes: int = 65536
    allow_private: bool = False
    # The definitions store holding `secret_stored` secrets (see OutputsResource).
    database_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhooksResource:
        return cls(
            attempt_timeout_s=settings.webhook_attempt_timeout_s,
            total_timeout_s=settings.webhook_total_timeout_s,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private,
            database_url=store_config_url(settings),
        )

    def policy(self, seconds_left: float) -> WebhookPolicy:
        return WebhookPolicy(
            timeout_seconds=min(self.attempt_timeout_s, seconds_left),
            max_response_bytes=self.max_response_bytes,
            allow_private=self.allow_private,
        )

    def secret(self, export: str, hook: WebhookDelivery) -> str:
        """The signing secret of `export`, read now; a clear permanent failure if unusable."""
        if hook.secret_env is None:
            value, where = self.stored_secret(export), "its stored secret"
        else:
            value, where = (
                self.env_secret(export, hook.secret_env),
                f"the secret in {hook.secret_env}",
            )
        try:
            secret_key(value)
        except WebhookRejected as error:
            raise not_sent(export, f"{where}: {error}") from None
        return value

    def env_secret(self, export: str, variable: str) -> str:
        value = os.environ.get(variable)
        if not value:
            raise not_sent(
                export,
                f"the environment variable {variable} that holds its signing secret is not set",
            )
        return value

    def stored_secret(self, export: str) -> str:
        """The secret the definitions store holds for `export` alone, decrypted now."""
        try:
            value = open_store(self.database_url).webhook_secret(export)
        except PermanentDestinationError as error:
            # The message names the export and EXPORTER_SECRET_KEY, never a value.
            raise not_sent(export, str(error)) from None
        if value is None:
            raise not_sent(
                export,
                "the definitions store holds no signing secret for it (its webhook has "
                "secret_stored: true; give one through the HTTP API, PUT /v1/exports/"
                f"{export} with delivery.webhook.secret, or use secret_env)",
            )
        return value

    def send(
        self,
        export: str,
        hook: WebhookDelivery,
        body: dict[str, Any],
        message_id: str,
        seconds_left: float,
    ) -> WebhookOutcome:
        """One attempt: `post` raises WebhookRetryable or WebhookRejected if not accepted."""
        secret = self.secret(export, hook)
        return post(hook.url, body, secret, message_id, self.policy(seconds_left))


# The longest wait between two attempts, whatever the backoff has grown to.
MAX_WAIT_SECONDS = 60.0


def retry_wait(hook: WebhookDelivery, attempt: int) -> float:
    """The wait after failed attempt `attempt` (1 = the first): exponential backoff from
    `backoff_seconds`, capped at a minute, with full jitter (a uniform draw below it), so
    receivers that failed together are not retried together."""
    ceiling = min(MAX_WAIT_SECONDS, hook.backoff_seconds * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


def _delivery_started(context: dg.OpExecutionContext) -> float:
    """When the delivery began: the run's start (every retry of the step shares it)."""
    record = context.instance.get_run_record_by_id(context.run_id)
    return record.start_time if record and record.start_time else time.time()


def send_webhook(
    context: dg.OpExecutionContext,
    webhooks: WebhooksResource,
    export: str,
    hook: WebhookDelivery,
    notice: Notice,
    message_id: str,
) -> dict[str, Any]:
    """This run attempt's POST of `notice`; the delivery's metadata once accepted."""
    attempt = context.retry_number + 1
    shown = redact_url(hook.url)
    deadline = _delivery_started(context) + webhooks.total_timeout_s
    left = deadline - time.time()
    if left <= 0:
        raise dg.Failure(
            f"webhook {shown} not delivered within the delivery limit of "
            f"{webhooks.total_timeout_s:g}s after {attempt - 1} attempts",
            allow_retries=False,
        )
    try:
        outcome = webhooks.send(export, hook, notice.body(), message_id, left)
    except WebhookRetryable as error:
        raise _retry_or_fail(context, hook, error, deadline, webhooks.total_timeout_s) from error
    except WebhookRejected as error:
        context.log.info(f"webhook attempt {attempt}: {error.answer or 'not sent'}, not retried")
        raise dg.Failure(str(error), allow_retries=False) from None
    context.log.info(f"webhook attempt {attempt}: {outcome.status}, delivered")
    return {
        "webhook_status": outcome.status,
        "webhook_attempts": attempt,
        "webhook_url": shown,
    }


def _retry_or_fail(
    context: dg.OpExecutionContext,
    hook: WebhookDelivery,
    error: WebhookRetryable,
    deadline: float,
    total_seconds: float,
) -> Exception:
    """A Dagster retry of the step after `error`, or the failure if none is left."""
    attempt = context.retry_number + 1
    shown = redact_url(hook.url)
    max_retries = hook.attempts - 1
    if attempt > max_retries:
        context.log.info(f"webhook attempt {attempt}: {error.answer}, no attempt left")
        return dg.Failure(
            f"webhook {shown} not delivered after {attempt} attempts (last answer: {error.answer})",
            allow_retries=False,
        )
    wait = retry_wait(hook, attempt)
    if time.time() + wait >= deadline:
        context.log.info(f"webhook attempt {attempt}: {error.answer}, no time left to retry")
        return dg.Failure(
            f"webhook {shown} not delivered within the delivery limit of {total_seconds:g}s "
            f"after {attempt} attempts (last answer: {error.answer})",
            allow_retries=False,
        )
    context.log.info(f"webhook attempt {attempt}: {error.answer}, retrying in {wait:.1f}s")
    return dg.RetryRequested(max_retries=max_retries, seconds_to_wait=wait)
