"""Webhook secrets of exports created through the HTTP API (uvicorn on loopback over a
SQLite store): a secret the service makes is answered once, in the create's
`meta.webhook_secret`, never by GET or list, and is on disk only encrypted; a given one
is checked (422 at `/delivery/webhook/secret`, its value never quoted) and never
answered; a PUT keeps the stored secret unless it gives a new one; without
EXPORTER_SECRET_KEY a stored secret is refused with a 503, nothing created."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from pathlib import Path

import httpx

from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.api.test_exports import export, with_output
from exporter_pipeline_tests.api.test_outputs import errors_of, pointers

HOOK_URL = "https://hooks.acme.example/exports"
GIVEN = "whsec_" + base64.b64encode(b"acme's own secret, 32 bytes long").decode()


def hooked(**webhook: object) -> dict[str, object]:
    """An export whose webhook has `webhook`'s keys besides its URL."""
    return export(delivery={"webhook": {"url": HOOK_URL, **webhook}})


def on_disk(settings: Settings) -> bytes:
    """Every byte of the store's SQLite file and its journals."""
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def test_a_made_secret_is_told_once_and_kept_by_a_put(
    defs_api: Api, defs_settings: Settings
) -> None:
    store = defs_api.services.store
    with with_output(defs_api, "acme", "acme_files") as acme:
        created = acme.post("/v1/exports", json=hooked(attempts=3))
        assert created.status_code == 201, created.text
        secret = created.json()["meta"]["webhook_secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
        hook = {"url": HOOK_URL, "attempts": 3, "secret_stored": True}
        assert created.json()["data"]["delivery"] == {"webhook": hook}
        answers = [acme.get("/v1/exports/acme_daily"), acme.get("/v1/exports")]
        assert answers[0].json()["data"]["delivery"]["webhook"] == hook
        assert store.webhook_secret("acme_daily") == secret
        assert secret.encode() not in on_disk(defs_settings)
        assert secret[6:].encode() not in on_disk(defs_settings)

        # A PUT of what GET answered (another format) keeps the secret and tells nothing.
        again = {**answers[0].json()["data"], "format": "jsonl"}
        kept = acme.put("/v1/exports/acme_daily", json=again)
        assert kept.status_code == 200, kept.text
        assert "webhook_secret" not in kept.json()["meta"]
        assert store.webhook_secret("acme_daily") == secret
        # Without `secret_stored` (the request's own shape) too.
        answers += [kept, acme.put("/v1/exports/acme_daily", json=hooked())]
        assert store.webhook_secret("acme_daily") == secret

        # A new secret replaces it, and is not answered either.
        replaced = acme.put("/v1/exports/acme_daily", json=hooked(secret=GIVEN))
        assert replaced.status_code == 200, replaced.text
        assert "webhook_secret" not in replaced.json()["meta"]
        assert store.webhook_secret("acme_daily") == GIVEN

        # No webhook: the secret goes; a webhook again gets a new one, told once.
        assert acme.put("/v1/exports/acme_daily", json=export()).status_code == 200
        assert not store.has_webhook_secret("acme_daily")
        back = acme.put("/v1/exports/acme_daily", json=hooked())
        assert back.status_code == 200, back.text
        made = back.json()["meta"]["webhook_secret"]
        assert made not in (secret, GIVEN) and store.webhook_secret("acme_daily") == made
        answers += [replaced, acme.get("/v1/exports/acme_daily"), acme.get("/v1/exports")]
    for answer in answers:
        assert secret not in answer.text and GIVEN not in answer.text
        assert made not in answer.text
    assert GIVEN.encode() not in on_disk(defs_settings)


def test_a_given_secret_is_checked_and_never_answered(
    defs_api: Api, defs_settings: Settings
) -> None:
    with with_output(defs_api, "acme", "acme_files") as acme:
        for bad in ("nope-not-a-secret", "whsec_***", "whsec_", 12345):
            answer = acme.post("/v1/exports", json=hooked(secret=bad))
            [error] = errors_of(answer)
            assert error["source"] == {"pointer": "/delivery/webhook/secret"}
            assert error["detail"] == "a webhook secret must look like whsec_<base64>"
            assert str(bad) not in answer.text.replace("whsec_<base64>", "")
        # Listed with the definition's own problems.
        both = acme.post("/v1/exports", json={**hooked(secret="nope"), "format": "xls"})
        assert sorted(pointers(both)) == ["/delivery/webhook/secret", "/format"]
        unstored = acme.post("/v1/exports", json=hooked(secret_stored=False))
        assert pointers(unstored) == ["/delivery/webhook/secret_stored"]
        assert acme.get("/v1/exports").json()["meta"]["total"] == 0

        created = acme.post("/v1/exports", json=hooked(secret=GIVEN))
        assert created.status_code == 201, created.text
        assert "webhook_secret" not in created.json()["meta"]
        assert GIVEN not in created.text
        assert defs_api.services.store.webhook_secret("acme_daily") == GIVEN
    assert GIVEN.encode() not in on_disk(defs_settings)


def test_a_stored_secret_without_a_secret_key_is_refused_clearly(
    make_api: Callable[[Settings], Api], defs_settings: Settings
) -> None:
    api = make_api(dataclasses.replace(defs_settings, secret_key=""))
    with with_output(api, "acme", "acme_files") as acme:
        for body in (hooked(), hooked(secret=GIVEN)):
            answer: httpx.Response = acme.post("/v1/exports", json=body)
            [error] = errors_of(answer, 503)
            assert error["code"] == "credentials_unavailable"
            assert "EXPORTER_SECRET_KEY" in error["detail"]
            assert error["source"] == {"pointer": "/delivery/webhook/secret"}
        assert acme.get("/v1/exports/acme_daily").status_code == 404
        # An export without a webhook needs no key.
        assert acme.post("/v1/exports", json=export()).status_code == 201
