"""Resharding (`EXPORTER_SHARD`, shards.py) delivers nothing twice. A tenant's exports
move to another code location when the number of shards changes; that location's
delivery sensor starts with a cursor of its own and reads the last 7 days of events,
the windows the old location delivered among them. Their deliveries' run keys are
already used on the instance, so none is requested again; a window published after the
move is. Real export and delivery runs on one SQLite instance, a real webhook receiver,
and each location's sensor evaluated as the daemon does."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from standardwebhooks import Webhook

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.delivery_sensor import DELIVERY_JOB, DELIVERY_SENSOR, RUN_KEY_TAG
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import shard_of
from exporter_pipeline_tests.delivery.conftest import Receiver, delivering_outputs
from exporter_pipeline_tests.delivery.test_delivery import HOUR, SECRET
from exporter_pipeline_tests.exports.conftest import Lake

NEXT_HOUR = "2026-10-01-01:00"
MANIFEST = "deliveries/_manifests/2026-10-01-{:02d}-00_2026-10-01-{:02d}-00.json"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def(DELIVERY_SENSOR)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources
    ) as context:
        return sensor.evaluate_tick(context)


def keys(result: dg.SensorResult) -> list[str]:
    return [r.run_config["ops"]["deliver"]["config"]["key"] for r in result.run_requests or []]


def test_a_tenant_moved_to_another_shard_is_not_delivered_again(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    hook = {"url": receiver.url, "secret_env": "T_HOOK_SECRET"}
    settings = delivering_outputs(tmp_path, lake.root, ["o1"], hook)  # tenant acme
    before = f"{shard_of('acme', 2)}/2"
    after = f"{shard_of('acme', 3)}/3"
    old = build_definitions(Settings.from_env({**settings, "EXPORTER_SHARD": before}))
    new = build_definitions(Settings.from_env({**settings, "EXPORTER_SHARD": after}))
    with dg.instance_for_test() as instance:
        export = old.resolve_job_def("export_acme_o1")
        assert export.execute_in_process(instance=instance, partition_key=HOUR).success
        # The new location would see the window: it reads the same events.
        assert keys(tick(new, instance, None)) == [MANIFEST.format(0, 1)]
        # The old location delivers it, as the daemon launches the sensor's request.
        [request] = tick(old, instance, None).run_requests or []
        delivered = old.resolve_job_def(DELIVERY_JOB).execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags={**request.tags, RUN_KEY_TAG: str(request.run_key)},
        )
        assert delivered.success and len(receiver.requests) == 1

        # Resharded: the new location's sensor starts afresh and requests nothing again.
        first = tick(new, instance, None)
        assert keys(first) == []
        # A window published after the move is delivered from the new location, once.
        export = new.resolve_job_def("export_acme_o1")
        assert export.execute_in_process(instance=instance, partition_key=NEXT_HOUR).success
        second = tick(new, instance, first.cursor)
        assert keys(second) == [MANIFEST.format(1, 2)]
        assert keys(tick(new, instance, second.cursor)) == []

    [hook_body] = [Webhook(SECRET).verify(r.body, r.headers) for r in receiver.requests]
    assert hook_body["type"] == "export.ready" and hook_body["export"] == "acme_o1"
