"""Delivery end to end, in process: an export lands a manifest in a local folder, S3
(moto), GCS (emulator) or Azure (Azurite); the output's sensor launches one delivery;
the delivery POSTs a Standard Webhooks-signed payload to a real HTTP receiver (verified
with the `standardwebhooks` library) and sends email through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from standardwebhooks import Webhook, WebhookVerificationError

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.delivery.webhook import signed_headers
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.cloud import CloudServer
from exporter_pipeline_tests.delivery.conftest import Mailbox, Receiver
from exporter_pipeline_tests.exports.conftest import Lake
from exporter_pipeline_tests.servers import AZURITE_KEY

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes length").decode()
HOUR = "2026-10-01-00:00"


class Deployment:
    """Definitions with one export to one output, webhook and email delivery."""

    def __init__(
        self,
        root: Path,
        lake: Lake,
        output: dict[str, Any],
        receiver: Receiver,
        mailbox: Mailbox | None,
        env: dict[str, str],
        settings: dict[str, str] | None = None,
        **export: Any,
    ) -> None:
        document = {
            "outputs": {"out": output},
            "exports": [
                {
                    "name": "acme_hourly",
                    "tenant": "acme",
                    "dataset": "raw",
                    "format": "csv",
                    "cadence": "hourly",
                    "start": "2026-10-01T00:00:00Z",
                    "output": {"name": "out", "path": "deliveries"},
                    "delivery": {
                        "webhook": {
                            "url": receiver.url,
                            "secret_env": "T_HOOK_SECRET",
                            "attempts": 4,
                            "backoff_seconds": 0.01,
                        },
                        "email": ["data@acme.example"] if mailbox else [],
                    },
                    **export,
                }
            ],
        }
        (root / "exports.yaml").write_text(yaml.safe_dump(document))
        self.env = {"T_HOOK_SECRET": SECRET, **env}
        os.environ.update(self.env)
        settings = (settings or {}) | {
            "EXPORTER_LAKE_URL": str(lake.root),
            "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
            "EXPORTER_PARTITIONS_START": "2026-09-01",
            # The receiver listens on 127.0.0.1 (the spec's check reads the same variable
            # from the environment: see conftest's allow_private_webhooks).
            "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        if mailbox:
            settings |= {
                "EXPORTER_SMTP_HOST": mailbox.host,
                "EXPORTER_SMTP_PORT": str(mailbox.port),
            }
        self.defs = build_definitions(Settings.from_env(settings))
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def export(self, partition: str = HOUR) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def("export_acme_hourly").execute_in_process(
            instance=self.instance, partition_key=partition, raise_on_error=False
        )

    def tick(self, cursor: str | None = None) -> list[dg.RunRequest]:
        sensor = self.defs.resolve_sensor_def("deliver_manifests_sensor")
        # Opened as the daemon does: the outputs resource closes what a tick opened.
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=cursor if cursor is not None else self.cursor,
            resources=self.defs.resources,
        ) as context:
            result = sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def deliver(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def("deliver_export").execute_in_process(
            run_config=request.run_config,
            instance=self.instance,
            tags=request.tags,
            raise_on_error=False,
        )


def output_for(
    kind: str, cloud_servers: dict[str, CloudServer], tmp_path: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    if kind == "local":
        return {"type": "local", "path": str(tmp_path / "bucket")}, {}
    server = cloud_servers[kind]
    bucket = server.new_bucket()
    if kind == "s3":
        return (
            {
                "type": "s3",
                "bucket": bucket,
                "region": "us-east-1",
                "endpoint_url_env": "T_S3_URL",
                "access_key_id_env": "T_S3_KEY",
                "secret_access_key_env": "T_S3_SECRET",
            },
            {"T_S3_URL": server.url, "T_S3_KEY": "k", "T_S3_SECRET": "s"},
        )  # type: ignore[attr-defined]
    if kind == "gcs":
        from exporter_pipeline_tests.cloud import signing_key_json

        return (
            {
                "type": "gcs",
                "bucket": bucket,
                "project": "test",
                "credentials_json_env": "T_GCS_KEY",
            },
            {"T_GCS_KEY": signing_key_json()},
        )
    return (
        {
            "type": "azure",
            "container": bucket,
            "account_url_env": "T_AZ_URL",
            "account_key_env": "T_AZ_KEY",
        },
        {"T_AZ_URL": server.url, "T_AZ_KEY": AZURITE_KEY},
    )  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["local", "s3", "gcs", "azure"])
def test_manifest_on_each_output_is_delivered_once_and_verifiable(
    kind: str,
    lake: Lake,
    cloud_servers: dict[str, CloudServer],
    receiver: Receiver,
    smtp_server: Mailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output, env = output_for(kind, cloud_servers, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deployment = Deployment(tmp_path, lake, output, receiver, smtp_server, env)
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.tick() == []  # nothing has landed yet

    assert deployment.export().success
    requests = deployment.tick()
    assert len(requests) == 1
    manifest_key = "deliveries/_manifests/2026-10-01-00-00_2026-10-01-01-00.json"
    assert requests[0].run_config["ops"]["deliver"]["config"] == {
        "export": "acme_hourly",
        "key": manifest_key,
    }
    assert requests[0].run_key is not None and requests[0].run_key.startswith(f"{manifest_key}#")
    assert deployment.tick() == []  # the cursor moved on
    restarted = deployment.tick(cursor=deployment.cursor)  # a new daemon with the saved cursor
    assert restarted == []

    delivered = deployment.deliver(requests[0])
    assert delivered.success
    assert len(receiver.requests) == 1
    hook = receiver.requests[0]
    payload = Webhook(SECRET).verify(hook.body, hook.headers)
    assert payload["type"] == "export.ready" and payload["manifest"] == manifest_key
    assert payload["window"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T01:00:00Z"}
    assert [f["key"] for f in payload["files"]] == ["deliveries/2026-10-01-00-00.csv"]
    # Every link works with plain HTTP (or file:// for a local folder) and matches the manifest.
    for entry in payload["files"]:
        with urllib.request.urlopen(entry["url"], timeout=10) as response:
            data = response.read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]

    # The email arrived with the same links.
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["To"] == "data@acme.example"
    assert mail["Subject"].strip() == (
        "Export acme_hourly is ready: 2026-10-01T00:00:00Z to 2026-10-01T01:00:00Z"
    )
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert payload["files"][0]["url"] in text.replace("\n  ", "")
    assert f"Rows:   {payload['files'][0]['rows']}" in text


def test_signature_rejects_tampered_body_and_stale_timestamp(
    lake: Lake,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = Deployment(
        tmp_path, lake, {"type": "local", "path": str(tmp_path / "b")}, receiver, None, {}
    )
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.export().success
    assert deployment.deliver(deployment.tick()[0]).success
    hook = receiver.requests[0]
    verifier = Webhook(SECRET)
    verifier.verify(hook.body, hook.headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(hook.body.replace(b"acme", b"evil"), hook.headers)
    stale = signed_headers(SECRET, hook.headers["webhook-id"], hook.body, now=time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(hook.body, stale)


def test_receiver_503_three_times_gets_one_delivery_with_one_id(
    lake: Lake,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answers = [503, 503, 503]
    deployment = Deployment(
        tmp_path, lake, {"type": "local", "path": str(tmp_path / "b")}, receiver, None, {}
    )
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert result.success
    assert len(receiver.requests) == 4
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(SECRET).verify(request.body, request.headers)
    output = result.get_step_success_events()[0]
    meta = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = meta.event_specific_data.metadata  # type: ignore[union-attr]
    assert metadata["webhook_attempts"].value == 4 and metadata["webhook_status"].value == 200
    assert output is not None
    # Each failed attempt is a Dagster retry of the step, visible in the UI as such.
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3


def test_receiver_400_fails_without_retry(
    lake: Lake,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answers = [400, 200]
    deployment = Deployment(
        tmp_path, lake, {"type": "local", "path": str(tmp_path / "b")}, receiver, None, {}
    )
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert not result.success
    assert len(receiver.requests) == 1
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    assert error.message.strip().endswith(
        f"webhook {receiver.url} refused the delivery with 400; not retried"
    )


def test_failed_export_notifies_once_with_the_reason(
    lake: Lake,
    receiver: Receiver,
    smtp_server: Mailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = Deployment(
        tmp_path, lake, {"type": "local", "path": str(tmp_path / "b")}, receiver, smtp_server, {}
    )
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    # 2026-10-01 05:00 is not in the lake: the execution fails and leaves an error file.
    assert not deployment.export("2026-10-01-05:00").success
    requests = deployment.tick()
    assert [r.tags["delivery"] for r in requests] == ["failed"]
    assert deployment.tick() == []
    assert deployment.deliver(requests[0]).success
    payload = Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "export.failed"
    assert payload["error"] == (
        "raw_events has no data for 2026-10-01 05:00 UTC in the lake: "
        "materialize raw_events for that hour first"
    )
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["Subject"].strip() == (
        "Export acme_hourly failed: 2026-10-01T05:00:00Z to 2026-10-01T06:00:00Z"
    )
    body = smtp_server.messages[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Reason: raw_events has no data for 2026-10-01 05:00 UTC in the lake" in body


def test_schedule_requests_last_complete_window_across_dst_and_weekly(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    document = {
        "outputs": {"out": {"type": "local", "path": str(tmp_path / "o")}},
        "exports": [
            {
                "name": "daily",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "daily",
                "start": "2026-01-01",
                "output": {"name": "out"},
                "schedule": {"hour": 2, "minute": 30, "timezone": "Europe/Berlin"},
            },
            {
                "name": "weekly",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "weekly",
                "start": "2026-01-05",
                "output": {"name": "out"},
                "schedule": {"hour": 6, "timezone": "America/New_York", "day_of_week": "monday"},
            },
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    defs = build_definitions(
        Settings.from_env({"EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml")})
    )
    daily = defs.resolve_schedule_def("export_daily_schedule")
    weekly = defs.resolve_schedule_def("export_weekly_schedule")
    assert (daily.cron_schedule, daily.execution_timezone) == ("30 2 * * *", "Europe/Berlin")
    assert (weekly.cron_schedule, weekly.execution_timezone) == ("0 6 * * 1", "America/New_York")

    def requested(schedule: dg.ScheduleDefinition, moment: datetime) -> str | None:
        context = dg.build_schedule_context(
            scheduled_execution_time=moment, repository_def=defs.get_repository_def()
        )
        request = schedule.evaluate_tick(context).run_requests[0]  # type: ignore[index]
        assert request.run_key == request.partition_key
        return request.partition_key

    cases = {
        datetime(2026, 3, 28, 2, 30, tzinfo=berlin): "2026-03-27",  # before spring forward
        datetime(2026, 3, 29, 3, 30, tzinfo=berlin): "2026-03-28",  # 02:30 does not exist
        datetime(2026, 3, 30, 2, 30, tzinfo=berlin): "2026-03-29",  # a 23-hour local day
        datetime(2026, 10, 25, 2, 30, tzinfo=berlin): "2026-10-24",  # first of the two 02:30
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin): "2026-10-24",
        datetime(2026, 10, 26, 2, 30, tzinfo=berlin): "2026-10-25",  # a 25-hour local day
    }
    for moment, key in cases.items():
        assert requested(daily, moment) == key, moment
    new_york = ZoneInfo("America/New_York")
    # Weekly windows start on Mondays (the start date's weekday), UTC.
    assert requested(weekly, datetime(2026, 11, 2, 6, tzinfo=new_york)) == "2026-10-26"
    assert requested(weekly, datetime(2026, 11, 9, 6, tzinfo=new_york)) == "2026-11-02"
    assert requested(weekly, datetime(2026, 3, 9, 6, tzinfo=new_york)) == "2026-03-02"
