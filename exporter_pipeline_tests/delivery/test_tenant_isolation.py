"""One tenant's bucket is down while another tenant exports and delivers.

globex's output is an S3 bucket whose endpoint is a loopback port where nothing listens
(connections refused: the bucket is down); acme's is a local folder. acme's export runs,
the one delivery sensor requests acme's manifest and acme's webhook is received; globex's
export fails naming its output, the sensor keeps globex's news for a later tick instead
of failing, and nothing of globex reaches the receiver."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from standardwebhooks import Webhook

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.delivery.cursor import DeliveryCursor
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.delivery.test_delivery import HOUR, SECRET
from exporter_pipeline_tests.exports.conftest import Lake
from exporter_pipeline_tests.exports.test_output_isolation import s3_output, step_failures
from exporter_pipeline_tests.servers import free_port

MANIFEST = "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json"


def export(tenant: str, output: str, receiver: Receiver) -> dict[str, Any]:
    hook = {"url": receiver.url, "secret_env": "HOOK_SECRET", "backoff_seconds": 0.01}
    return {
        "name": f"{tenant}_hourly",
        "tenant": tenant,
        "dataset": "raw",
        "format": "csv",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": output, "path": "raw"},
        "delivery": {"webhook": hook},
    }


def definitions(lake: Lake, receiver: Receiver, tmp_path: Path) -> dg.Definitions:
    local = {"type": "local", "path": str(tmp_path / "acme"), "tenant": "acme"}
    document = {
        "outputs": {"acme_out": local, "globex_s3": s3_output("globex-bucket", "globex")},
        "exports": [export("acme", "acme_out", receiver), export("globex", "globex_s3", receiver)],
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


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param(lambda: f"http://127.0.0.1:{free_port()}", id="down"),  # nothing listens
        # botocore refuses it with a ValueError of its own when the client is made.
        pytest.param(lambda: "minio.globex:9000", id="malformed-endpoint"),
    ],
)
def test_a_bucket_down_for_one_tenant_stops_only_that_tenant(
    lake: Lake,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: Callable[[], str],
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("GLOBEX_S3_URL", endpoint())
    monkeypatch.setenv("GLOBEX_AWS_KEY", "key")
    monkeypatch.setenv("GLOBEX_AWS_SECRET", "secret")
    monkeypatch.setenv("EXPORTER_DESTINATION_ATTEMPTS", "1")
    defs = definitions(lake, receiver, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    runs = {
        tenant: defs.resolve_job_def(f"export_{tenant}_hourly").execute_in_process(
            instance=instance, partition_key=HOUR, raise_on_error=False
        )
        for tenant in ("globex", "acme")
    }
    assert runs["acme"].success
    assert not runs["globex"].success
    if "127.0.0.1" in os.environ["GLOBEX_S3_URL"]:
        # The first call to the bucket once the files are written: the window's listing.
        assert "S3 list failed for s3://globex-bucket/" in step_failures(runs["globex"])

    sensor = defs.resolve_sensor_def("deliver_manifests_sensor")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        tick = sensor.evaluate_tick(context)
    requests = tick.run_requests or []
    assert [r.tags["export"] for r in requests] == ["acme_hourly"]
    assert requests[0].run_config["ops"]["deliver"]["config"]["key"] == MANIFEST
    # globex's news waits in the cursor for its bucket to come back.
    pending = DeliveryCursor.parse(tick.cursor).pending
    assert pending and {h.export for h in pending} == {"globex_hourly"}

    delivered = defs.resolve_job_def("deliver_export").execute_in_process(
        run_config=requests[0].run_config, instance=instance
    )
    assert delivered.success
    [request] = receiver.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert (payload["tenant"], payload["manifest"]) == ("acme", MANIFEST)
