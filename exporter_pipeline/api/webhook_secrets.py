"""The signing secret of an export's webhook, through the API: write-only, held by the
definitions store (encrypted with EXPORTER_SECRET_KEY), never in the definition.

A request's `delivery.webhook` takes `{url, attempts?, backoff_seconds?}` and, optionally,
`"secret": "whsec_..."`; the webhook is then `secret_stored: true` in the definition (the
API lends no `secret_env`). Without a secret, the service makes one as Standard Webhooks
does (`whsec_` + base64 of 32 random bytes), and the answer to that change tells it once.
Pure: the store is asked by the routes.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from exporter_pipeline.api.errors import ApiError
from exporter_pipeline.api.export_rules import definition_error
from exporter_pipeline.delivery.webhook import SECRET_PREFIX, WebhookRejected, secret_key

SECRET_AT = "/delivery/webhook/secret"


def new_webhook_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def take_webhook_secret(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[ApiError]]:
    """(`raw` without its webhook's `secret` and with `secret_stored: true`, the secret
    given or None, the problems of both). Messages never quote the secret."""
    delivery = raw.get("delivery")
    if not isinstance(delivery, dict) or not isinstance(delivery.get("webhook"), dict):
        return raw, None, []
    hook = dict(delivery["webhook"])
    if "secret_env" in hook:
        return raw, None, []  # the `*_env` rule refuses it
    errors = []
    given = hook.pop("secret", None)
    if given is not None and not (isinstance(given, str) and _usable(given)):
        errors.append(definition_error(SECRET_AT, "a webhook secret must look like whsec_<base64>"))
    if hook.get("secret_stored", True) is not True:
        errors.append(
            definition_error(
                "/delivery/webhook/secret_stored",
                "through the API a webhook's secret is held by the service: omit "
                "secret_stored or set it to true",
            )
        )
    # Checked here, so the model's own rule (secret_env or secret_stored) is not told too.
    hook["secret_stored"] = True
    body = {**raw, "delivery": {**delivery, "webhook": hook}}
    return body, None if errors else given, errors


def _usable(secret: str) -> bool:
    """Whether `secret` is one a webhook can be signed with (as `secret_env`'s must be)."""
    try:
        secret_key(secret)
    except WebhookRejected:
        return False
    return True


def keyless() -> ApiError:
    """The service cannot hold a secret: no EXPORTER_SECRET_KEY (as for credentials)."""
    return ApiError(
        503,
        "credentials_unavailable",
        "webhook secrets cannot be stored: the service has no EXPORTER_SECRET_KEY "
        "(the operator must set one)",
        pointer=SECRET_AT,
    )
