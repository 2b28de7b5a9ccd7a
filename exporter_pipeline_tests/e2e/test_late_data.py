"""Late data end to end, as the README tells it: `dagster dev`, a daily export with
`reexport_late_data: true` and a webhook, the day ingested and exported by one UI
backfill, then a late landing file re-ingested while a re-export of the window runs.

Whichever way the two runs interleave, the window ends exported from the late hour's
data (by the `reexport_late_data_sensor`, which Dagster started on its own, when the
re-export read the hour before it changed) and its manifest as it ends is delivered;
afterwards the sensor asks for nothing more."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks import Webhook

from exporter_pipeline.defs.late_data import LATE_DATA_SENSOR, LATE_DATA_SENSOR_INTERVAL_S
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.e2e.conftest import Deployment, start_dagster_dev
from exporter_pipeline_tests.e2e.test_dagster_dev import wait_for
from exporter_pipeline_tests.e2e.test_shards import (
    DAY,
    backfill,
    backfills_done,
    landing_ids,
    launch,
    shard_runs,
)

SECRET = "whsec_" + base64.b64encode(b"late data webhook secret bytes!!").decode()
EXPORT, JOB, WINDOW = "acme_late", "export_acme_late", f"{DAY:%Y-%m-%d}"
LOCATION = "exporter_pipeline"
LATE_HOUR = 5
SENSOR = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 20) {
        timestamp status runIds error { message } } } } } }"""
# The condition's evaluations the sensor stored (those that changed something).
EVALUATIONS = """query($key: AssetKeyInput!) {
    assetConditionEvaluationRecordsOrError(assetKey: $key, limit: 20) {
    ... on AssetConditionEvaluationRecords { records { evaluationId timestamp numRequested
        evaluationNodes { userLabel numTrue } } } } }"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@pytest.fixture
def late(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[Deployment, Path]]:
    landing = tmp_path / "landing"
    simulate(landing, ["acme", "globex"], DAY, DAY + timedelta(days=1), 48, seed=5)
    hook = {"url": receiver.url, "secret_env": "LATE_HOOK_SECRET", "backoff_seconds": 0.2}
    exports = {
        "outputs": {"local": {"type": "local", "path": str(tmp_path / "out")}},
        "exports": [
            {
                "name": EXPORT,
                "tenant": "acme",
                "dataset": "raw",
                "format": "csv",
                "cadence": "daily",
                "start": WINDOW,
                "end": f"{DAY + timedelta(days=1):%Y-%m-%d}",
                "output": {"name": "local", "path": "late"},
                "reexport_late_data": True,
                "delivery": {"webhook": hook},
            }
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(exports))
    env = {
        "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
        "EXPORTER_LANDING_URL": str(landing),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
        "EXPORTER_PARTITIONS_START": WINDOW,
        "LATE_HOOK_SECRET": SECRET,
    }
    for dev in start_dagster_dev(tmp_path, env, None):
        yield dev, tmp_path


def window_ids(landing: Path) -> set[str]:
    return set().union(*(landing_ids(landing, "acme", DAY + timedelta(hours=h)) for h in range(24)))


def export_runs(dev: Deployment) -> list[dict[str, Any]]:
    """The runs that exported the window (the job's, the sensor's), oldest first: the
    only runs of the day's partition key (the raw hours have hourly keys)."""
    found = [r for r in shard_runs(dev) if r["tags"].get("dagster/partition") == WINDOW]
    return sorted(found, key=lambda r: r["startTime"] or 0)


def add_late_file(root: Path) -> None:
    """A second landing file of acme for the late hour, with events of its own."""
    hour = DAY + timedelta(hours=LATE_HOUR)
    spare = root / "spare"
    simulate(spare, ["acme"], hour, hour + timedelta(hours=1), 30, seed=77)
    (written,) = (spare / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}").glob("*.jsonl")
    target = root / "landing" / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "acme-late.jsonl"
    shutil.copyfile(written, target)


def test_a_late_file_re_ingested_during_a_re_export_ends_re_exported_and_delivered(
    late: tuple[Deployment, Path], receiver: Receiver
) -> None:
    dev, root = late
    state = dev.graphql(SENSOR, {"selector": SELECTOR})["sensorOrError"]["sensorState"]
    assert state["status"] == "RUNNING"  # on from the start, as the README says

    # The UI's backfill of the day's 24 raw hours (one run), then a launch of the window.
    raw = backfill(dev, [["raw_events"]], tuple(range(24)))
    wait_for(lambda: backfills_done(dev, [raw]), 240, "the backfill of the day's hours")
    first = launch(dev, LOCATION, JOB, WINDOW)
    wait_for(lambda: len(receiver.requests) == 1, 180, "the first delivery")
    assert [r["runId"] for r in export_runs(dev)] == [first]
    before = window_ids(root / "landing")

    # A late file lands; its hour is re-ingested while the window is exported again.
    add_late_file(root)
    after = window_ids(root / "landing")
    assert len(after) == len(before) + 30
    hour = f"{DAY + timedelta(hours=LATE_HOUR):%Y-%m-%d-%H:%M}"
    began = time.time()
    launch(dev, LOCATION, JOB, WINDOW)
    launch(dev, LOCATION, "__ASSET_JOB", hour, ["raw_events"])

    seen: dict[str, Any] = {}

    def settled() -> list[dict[str, Any]] | None:
        runs = export_runs(dev)
        last = manifest(root)
        seen.update(
            runs=[(r["runId"][:8], r["status"]) for r in runs],
            rows=last and last["rows"],
            hooks=len(receiver.requests),
        )
        done = runs and all(r["status"] in TERMINAL for r in runs)
        fresh = last is not None and last["rows"] == len(after)
        # The window's manifest as it now is was delivered. A re-export that rewrote the
        # manifest before the delivery sensor's tick saw the one before it is delivered
        # once, as it now is: the run it replaced left nothing to deliver.
        hooks = [json.loads(r.body) for r in receiver.requests]
        delivered = fresh and bool(hooks) and hooks[-1]["run_id"] == last["run_id"]
        return runs if done and fresh and delivered else None

    try:
        runs = wait_for(settled, 300, "the window re-exported from the late hour and delivered")
    except TimeoutError as error:
        raise AssertionError(
            f"{error}: expected {len(after)} rows, saw {seen}\n{timeline(dev, began)}"
        ) from None
    assert {r["status"] for r in runs} == {"SUCCESS"}
    final = manifest(root)
    assert final is not None and final["run_id"] == runs[-1]["runId"]
    # One file per hour: read back, the window holds every landed event of acme.
    exported = [
        row["event_id"]
        for file in final["files"]
        for row in csv.DictReader((root / "out" / file["key"]).open(newline=""))
    ]
    assert set(exported) == after and len(exported) == sum(f["rows"] for f in final["files"])
    last_hook = json.loads(receiver.requests[-1].body)
    assert Webhook(SECRET).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    assert last_hook["run_id"] == final["run_id"]
    assert sum(f["rows"] for f in last_hook["files"]) == len(after)

    assert 2 <= len(receiver.requests) <= len(runs)

    # Two more ticks of the sensor: nothing more is asked for, nor delivered.
    hooks = len(receiver.requests)
    time.sleep(2 * LATE_DATA_SENSOR_INTERVAL_S + 5)
    assert len(export_runs(dev)) == len(runs)
    assert len(receiver.requests) == hooks


SELECTOR = {
    "repositoryLocationName": LOCATION,
    "repositoryName": "__repository__",
    "sensorName": LATE_DATA_SENSOR,
}


def timeline(dev: Deployment, began: float) -> str:
    """What happened from `began` (s): the runs of the window and of the late hour, the
    sensor's ticks, and the condition's stored evaluations of the window (its labelled
    parts: how many windows each was true for)."""
    lines = [
        f"run {r['runId'][:8]} {'/'.join(r['assets'])} {r['tags'].get('dagster/partition')} "
        f"{r['status']} "
        f"{(r['startTime'] or began) - began:.1f}..{(r['endTime'] or began) - began:.1f}"
        for r in sorted(shard_runs(dev), key=lambda r: r["startTime"] or 0)
        if (r["startTime"] or began) >= began
    ]
    state = dev.graphql(SENSOR, {"selector": SELECTOR})["sensorOrError"]["sensorState"]
    lines += [
        f"tick {t['timestamp'] - began:.1f} {t['status']} runs {t['runIds']} "
        f"{(t['error'] or {}).get('message', '')}".rstrip()
        for t in reversed(state["ticks"])
        if t["timestamp"] >= began
    ]
    key = {"path": ["exports", EXPORT]}
    found = dev.graphql(EVALUATIONS, {"key": key})["assetConditionEvaluationRecordsOrError"]
    lines += [
        f"evaluation {e['evaluationId']} {e['timestamp'] - began:.1f} requested "
        f"{e['numRequested']}: "
        + ", ".join(
            f"{n['userLabel']}={n['numTrue']}" for n in e["evaluationNodes"] if n["userLabel"]
        )
        for e in reversed(found.get("records", []))
    ]
    return "\n".join(lines)


def manifest(root: Path) -> dict[str, Any] | None:
    found = list((root / "out" / "late" / "_manifests").glob("*.json"))
    found = [f for f in found if not f.name.endswith(".error.json")]
    return json.loads(found[0].read_bytes()) if found else None
