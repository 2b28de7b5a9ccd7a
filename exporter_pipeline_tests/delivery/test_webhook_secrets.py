"""Webhook secrets per export, Dagster retries and the email sent once, in process.

Two exports of two tenants write to one local output; their webhooks are signed with
secrets from two different environment variables, and only one is set. Each delivery
run POSTs to the real loopback HTTP receiver of the delivery tests (conftest) and mails
through the real SMTP server (aiosmtpd). Also: a receiver that answers 503 gets Dagster
step retries, and the email goes out once, after the webhook was accepted.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from standardwebhooks import Webhook

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.delivery.conftest import Mailbox, Receiver
from exporter_pipeline_tests.delivery.test_delivery import HOUR, SECRET, Deployment
from exporter_pipeline_tests.exports.conftest import Lake

OTHER_SECRET = "whsec_" + base64.b64encode(b"the secret of tenant b, 32 bytes").decode()


def export_with_webhook(name: str, tenant: str, url: str, secret_env: str) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": tenant,
        "dataset": "raw",
        "format": "csv",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": name},
        "delivery": {
            "webhook": {"url": url, "secret_env": secret_env, "attempts": 2},
        },
    }


def two_exports(lake: Lake, receiver: Receiver, tmp_path: Path) -> dg.Definitions:
    """Exports acme_a and acme_b to one local output, their webhooks signed with the
    secrets in T_A_HOOK_SECRET and T_B_HOOK_SECRET."""
    document = {
        "outputs": {"out": {"type": "local", "path": str(tmp_path / "bucket")}},
        "exports": [
            export_with_webhook("acme_a", "acme", receiver.url, "T_A_HOOK_SECRET"),
            export_with_webhook("acme_b", "acme", receiver.url, "T_B_HOOK_SECRET"),
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    return build_definitions(
        Settings.from_env(
            {
                "EXPORTER_LAKE_URL": str(lake.root),
                "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
                "EXPORTER_PARTITIONS_START": "2026-09-01",
                "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
            }
        )
    )


def test_a_missing_secret_fails_only_the_delivery_that_needs_it(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_A_HOOK_SECRET", SECRET)
    monkeypatch.delenv("T_B_HOOK_SECRET", raising=False)
    defs = two_exports(lake, receiver, tmp_path)
    # One webhooks resource for every export; none of them holds a secret.
    resources = defs.resources or {}
    assert "webhooks" in resources and not any(k.startswith("webhook_") for k in resources)
    instance = dg.DagsterInstance.ephemeral()
    for name in ("acme_a", "acme_b"):
        export = defs.resolve_job_def(f"export_{name}")
        assert export.execute_in_process(instance=instance, partition_key=HOUR).success
    sensor = defs.resolve_sensor_def("deliver_manifests_sensor")
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        tick = sensor.evaluate_tick(context)
    requests = {r.tags["export"]: r for r in tick.run_requests or []}
    assert set(requests) == {"acme_a", "acme_b"}

    def deliver(name: str) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def("deliver_export").execute_in_process(
            run_config=requests[name].run_config, instance=instance, raise_on_error=False
        )

    delivered_b = deliver("acme_b")
    delivered_a = deliver("acme_a")
    assert delivered_a.success
    [request] = receiver.requests  # B sent nothing
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["export"] == "acme_a"

    assert not delivered_b.success
    # Not retried: the variable will not appear between two attempts of one run.
    assert not [e for e in delivered_b.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    error = delivered_b.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    assert error.message.strip().endswith(
        "webhook of export 'acme_b' not sent: the environment variable T_B_HOOK_SECRET "
        "that holds its signing secret is not set"
    )
    assert SECRET not in error.to_string()

    # Once B's secret is set, B's delivery goes out signed with B's own secret.
    monkeypatch.setenv("T_B_HOOK_SECRET", OTHER_SECRET)
    assert deliver("acme_b").success
    assert Webhook(OTHER_SECRET).verify(receiver.requests[1].body, receiver.requests[1].headers)


def test_webhook_retries_are_dagster_retries_and_the_email_goes_once(
    lake: Lake,
    receiver: Receiver,
    smtp_server: Mailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answers = [503, 429]
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, receiver, smtp_server, {})
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    # One delivery, one idempotency key for all three attempts.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3
    assert len(smtp_server.messages) == 1
    messages = [r.user_message for r in deployment.instance.all_logs(result.run_id)]
    assert any(m.startswith("webhook attempt 1: 503, retrying in") for m in messages)
    assert any(m.startswith("webhook attempt 2: 429, retrying in") for m in messages)
    assert "webhook attempt 3: 200, delivered" in messages


def test_webhook_failing_every_attempt_sends_no_email(
    lake: Lake,
    receiver: Receiver,
    smtp_server: Mailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answers = [500] * 4
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, receiver, smtp_server, {})
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert not result.success
    assert len(receiver.requests) == 4  # the definition's `attempts: 4`
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    assert error.message.strip().endswith(
        f"webhook {receiver.url} not delivered after 4 attempts (last answer: 500)"
    )
    assert smtp_server.messages == []


def test_a_delivery_sends_only_its_own_exports_manifests(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_A_HOOK_SECRET", SECRET)
    monkeypatch.setenv("T_B_HOOK_SECRET", OTHER_SECRET)
    defs = two_exports(lake, receiver, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert (
        defs.resolve_job_def("export_acme_b")
        .execute_in_process(instance=instance, partition_key=HOUR)
        .success
    )
    [manifest] = (tmp_path / "bucket/acme_b/_manifests").glob("*.json")
    # acme_a's receiver asked for acme_b's manifest: by its key, or as a copy in its folder.
    copy = tmp_path / "bucket/acme_a/_manifests" / manifest.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(manifest.read_bytes())
    expected = {
        f"acme_b/_manifests/{manifest.name}": (
            f"acme_b/_manifests/{manifest.name} is not a manifest of export 'acme_a': not delivered"
        ),
        f"acme_a/_manifests/{manifest.name}": (
            f"acme_a/_manifests/{manifest.name} belongs to export 'acme_b' of tenant 'acme', "
            "not to export 'acme_a': not delivered"
        ),
    }
    for key, message in expected.items():
        result = defs.resolve_job_def("deliver_export").execute_in_process(
            run_config={"ops": {"deliver": {"config": {"export": "acme_a", "key": key}}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        error = result.get_step_failure_events()[0].step_failure_data.error
        assert error is not None and error.message.strip().endswith(message)
    assert receiver.requests == []
