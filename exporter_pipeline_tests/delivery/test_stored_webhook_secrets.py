"""Webhooks signed with the secret the definitions store holds, end to end in process:
a tenant creates an output and two exports through the real HTTP API (uvicorn on
loopback, see api/conftest.py); the code location loads them from the store; each export
runs, the delivery sensor ticks and each delivery run POSTs to the real loopback
receiver (conftest). The receiver verifies the signature with the `standardwebhooks`
library and the secret the API answered once. An export whose stored secret is missing
fails its own delivery alone, clearly; a wrong EXPORTER_SECRET_KEY fails naming the
export and the key. The secret is nowhere in run config, tags, logs, metadata, what the
UI shows, errors or the process's output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from standardwebhooks import Webhook

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline_tests.api.conftest import Api, make_api  # noqa: F401 (the real API)
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.delivery.test_delivery import HOUR
from exporter_pipeline_tests.exports.conftest import Lake
from exporter_pipeline_tests.exports.test_secrets import everything_recorded, shown_in_the_ui
from exporter_pipeline_tests.servers import free_port


def hourly_export(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "dataset": "raw",
        "format": "csv",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "acme_files", "path": name},
        "delivery": {"webhook": {"url": url, "attempts": 2, "backoff_seconds": 0.01}},
    }


def failure_of(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """(the failure's message, all its text, the stack included)."""
    assert not result.success
    # Not retried: no attempt of the run would find a secret the first did not.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    return error.message.strip(), error.to_string()


def test_a_stored_secret_signs_only_its_own_exports_webhook(
    make_api: Callable[[Settings], Api],  # noqa: F811 (the fixture imported above)
    lake: Lake,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # One environment for the API, the code location and the runs (the store's URL is
    # the test's own: see the root conftest).
    for name, value in {
        "EXPORTER_SECRET_KEY": new_key(),
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "none.yaml"),
        "EXPORTER_PARTITIONS_START": "2026-09-01",
        "EXPORTER_API_LOCAL_ROOT": str(tmp_path / "tenant-outputs"),
        "EXPORTER_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",  # nothing to reload
    }.items():
        monkeypatch.setenv(name, value)
    api = make_api(Settings.from_env())
    with api.client("acme") as acme:
        output = {"name": "acme_files", "type": "local", "path": "files"}
        assert acme.post("/v1/outputs", json=output).status_code == 201
        created = acme.post("/v1/exports", json=hourly_export("acme_a", receiver.url))
        assert created.status_code == 201, created.text
        secret = created.json()["meta"]["webhook_secret"]
    # acme_b's webhook also leaves its secret to the store, which holds none for it (as
    # after applying a dump to a new store): applied as `definitions apply` does.
    acme_b = {**hourly_export("acme_b", receiver.url), "tenant": "acme"}
    acme_b["delivery"]["webhook"]["secret_stored"] = True
    api.services.store.put_export(acme_b)
    assert not api.services.store.has_webhook_secret("acme_b")

    defs = build_definitions(Settings.from_env())
    instance = dg.DagsterInstance.ephemeral()
    for name in ("acme_a", "acme_b"):
        export = defs.resolve_job_def(f"export_{name}")
        assert export.execute_in_process(instance=instance, partition_key=HOUR).success
    sensor = defs.resolve_sensor_def("deliver_manifests_sensor")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        tick = sensor.evaluate_tick(context)
    requests = {r.tags["export"]: r for r in tick.run_requests or []}
    assert set(requests) == {"acme_a", "acme_b"}

    def deliver(name: str) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def("deliver_export").execute_in_process(
            run_config=requests[name].run_config,
            instance=instance,
            tags=requests[name].tags,
            raise_on_error=False,
        )

    delivered_b, delivered_a = deliver("acme_b"), deliver("acme_a")
    assert delivered_a.success
    [request] = receiver.requests  # acme_b sent nothing
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["export"] == "acme_a" and payload["tenant"] == "acme"
    message_b, failed_b = failure_of(delivered_b)
    assert message_b.endswith(
        "webhook of export 'acme_b' not sent: the definitions store holds no signing secret "
        "for it (its webhook has secret_stored: true; give one through the HTTP API, PUT "
        "/v1/exports/acme_b with delivery.webhook.secret, or use secret_env)"
    )

    # Stored with another key: that export's delivery fails, naming it and the setting.
    monkeypatch.setenv("EXPORTER_SECRET_KEY", new_key())
    message_a, rekeyed = failure_of(deliver("acme_a"))
    assert message_a.endswith(
        "webhook of export 'acme_a' not sent: export 'acme_a': EXPORTER_SECRET_KEY does not "
        "decrypt its stored webhook secret (stored with another key?)"
    )
    assert len(receiver.requests) == 1

    captured = capfd.readouterr()
    seen = [shown_in_the_ui(defs), captured.out, captured.err, rekeyed, failed_b]
    seen += [everything_recorded(instance, r.run_id) for r in (delivered_a, delivered_b)]
    for text in seen:
        assert secret not in text and secret.removeprefix("whsec_") not in text
