"""End to end on a running instance, the way a user meets it: `dagster dev` on a free
port (webserver + daemon, the project's workspace.yaml), driven through the GraphQL API
the UI uses, on SQLite and on PostgreSQL. It launches an export run, backfills three
days of a daily export (one run, 72 files and 3 manifests), writes to a local folder and
to an S3-compatible server (moto), sees the sensors deliver exactly one signed webhook
per manifest to a real HTTP receiver, and sees a schedule request the run it should.
After the backfill and the deliveries it reads (only reads) that state twice more:
`exporter-pipeline status` shows the numbers the GraphQL API gives, and the catalog
filtered by one tenant's group shows only that tenant's exports in Chromium."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_graphql.client.query import (
    LAUNCH_PARTITION_BACKFILL_MUTATION,
    LAUNCH_PIPELINE_EXECUTION_MUTATION,
)
from standardwebhooks import Webhook

from exporter_pipeline_tests.cloud import CloudServer
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.e2e.conftest import (
    ARTIFACTS,
    Deployment,
    Postgres,
    browser,
    start_dagster_dev,
)
from exporter_pipeline_tests.exports.conftest import build_lake

SECRET = "whsec_" + base64.b64encode(b"end-to-end webhook secret bytes!").decode()
LOCATION = {"repositoryLocationName": "exporter_pipeline", "repositoryName": "__repository__"}
RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
    runId status jobName startTime endTime tags { key value } } } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { id status } } }"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
SCRIPT = Path(sys.executable).parent / "exporter-pipeline"
ASSET_EVENTS = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
    assetMaterializations { partition runId }
    assetObservations { partition runId metadataEntries { label
        ... on IntMetadataEntry { intValue } } } } } }"""


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
    cloud_servers: dict[str, CloudServer],
) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    postgres: Postgres | None = (
        request.getfixturevalue("postgres") if request.param == "postgres" else None
    )
    lake = build_lake(tmp_path / "data", events_per_hour=120, hours=96)
    s3 = cloud_servers["s3"]
    bucket = s3.new_bucket()
    now = datetime.now(UTC)
    # The schedule ticks once, at the first HH:MM with this minute; it asks for the last
    # complete hour before that tick.
    tick = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    schedule_minute = tick.minute
    expected_partition = f"{tick.replace(minute=0) - timedelta(hours=1):%Y-%m-%d-%H:%M}"
    hook = {"url": receiver.url, "secret_env": "E2E_HOOK_SECRET", "backoff_seconds": 0.2}
    exports = {
        "outputs": {
            "local": {"type": "local", "path": str(tmp_path / "out")},
            "bucket": {
                "type": "s3",
                "bucket": bucket,
                "region": "us-east-1",
                "endpoint_url_env": "E2E_S3_URL",
                "access_key_id_env": "E2E_S3_KEY",
                "secret_access_key_env": "E2E_S3_SECRET",
            },
        },
        "exports": [
            {
                "name": "e2e_daily",
                "tenant": "acme",
                "dataset": "raw",
                "format": "csv",
                "cadence": "daily",
                "start": "2026-10-01",
                "end": "2026-10-04",
                "output": {"name": "local", "path": "daily"},
                "delivery": {"webhook": hook},
            },
            {
                "name": "e2e_s3",
                "tenant": "globex",
                "dataset": "raw",
                "format": "parquet",
                "cadence": "hourly",
                "start": "2026-10-01T00:00:00Z",
                "output": {"name": "bucket", "path": "hourly"},
                "delivery": {"webhook": hook},
            },
            {
                "name": "e2e_sched",
                "tenant": "acme",
                "dataset": "raw",
                "format": "csv",
                "cadence": "hourly",
                "start": f"{now:%Y-%m-%d}T00:00:00Z",
                "schedule": {"minute": schedule_minute},
                "output": {"name": "local", "path": "s"},
            },
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(exports))
    env = {
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(tmp_path / "data/landing"),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
        "EXPORTER_PARTITIONS_START": "2026-10-01",
        "E2E_HOOK_SECRET": SECRET,
        "E2E_S3_URL": s3.url,  # type: ignore[attr-defined]
        "E2E_S3_KEY": "e2e-key",
        "E2E_S3_SECRET": "e2e-secret",
    }
    for running in start_dagster_dev(tmp_path, env, postgres):
        yield (
            running,
            {
                "bucket": bucket,
                "s3": s3,
                "out": tmp_path / "out",
                "schedule_minute": schedule_minute,
                "expected_schedule_partition": expected_partition,
            },
        )


def launch(deployment: Deployment, job: str, tags: dict[str, str]) -> str:
    params = {
        "selector": {**LOCATION, "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    result = deployment.graphql(LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})[
        "launchPipelineExecution"
    ]
    assert result["__typename"] == "LaunchRunSuccess", result
    return str(result["run"]["runId"])


def runs(deployment: Deployment, **filters: Any) -> list[dict[str, Any]]:
    found = deployment.graphql(RUNS, {"filter": filters})["runsOrError"]["results"]
    for run in found:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return found  # type: ignore[no-any-return]


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def test_ui_launch_backfill_sensor_and_schedule(
    deployment: tuple[Deployment, dict[str, Any]], receiver: Receiver
) -> None:
    dev, facts = deployment
    # A launch from the launchpad, one to the S3 output, and a UI backfill of 3 days.
    first = launch(dev, "export_e2e_daily", {"dagster/partition": "2026-10-01"})
    to_s3 = launch(dev, "export_e2e_s3", {"dagster/partition": "2026-10-02-05:00"})
    backfill = dev.graphql(
        LAUNCH_PARTITION_BACKFILL_MUTATION,
        {
            "backfillParams": {
                "assetSelection": [{"path": ["exports", "e2e_daily"]}],
                "partitionNames": ["2026-10-02", "2026-10-03", "2026-10-04"],
                "fromFailure": False,
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

    def finished() -> bool:
        status = dev.graphql(BACKFILL, {"id": backfill["backfillId"]})
        done = status["partitionBackfillOrError"]["status"] in ("COMPLETED", "COMPLETED_SUCCESS")
        ours = [r for r in runs(dev) if r["jobName"] != "deliver_export"]
        return done and len(ours) >= 3 and all(r["status"] in TERMINAL for r in ours)

    wait_for(finished, 240, "the runs and the backfill to finish")
    by_id = {r["runId"]: r for r in runs(dev)}
    assert by_id[first]["status"] == "SUCCESS" and by_id[to_s3]["status"] == "SUCCESS"
    backfill_runs = runs(dev, tags=[{"key": "dagster/backfill", "value": backfill["backfillId"]}])
    assert len(backfill_runs) == 1 and backfill_runs[0]["status"] == "SUCCESS"
    assert backfill_runs[0]["jobName"] == "__ASSET_JOB"

    out: Path = facts["out"]
    data = sorted(p.name for p in (out / "daily").glob("*.csv"))
    manifests = sorted(p.name for p in (out / "daily/_manifests").glob("*.json"))
    assert len(data) == 96 and data[24] == "2026-10-02-00-00.csv"
    assert manifests == [f"2026-10-0{d}-00-00_2026-10-0{d + 1}-00-00.json" for d in (1, 2, 3, 4)]
    s3_keys = [o.key for o in facts["s3"].destination(facts["bucket"]).list()]
    assert s3_keys == [
        "hourly/2026-10-02-05-00.parquet",
        "hourly/_manifests/2026-10-02-05-00_2026-10-02-06-00.json",
    ]

    # The sensors deliver one webhook per manifest: 4 local (run + backfill) and 1 on S3.
    def delivered() -> list[dict[str, Any]]:
        bodies = [Webhook(SECRET).verify(r.body, r.headers) for r in receiver.requests]
        return bodies if len(bodies) >= 5 else []

    bodies = wait_for(delivered, 180, "five webhook deliveries")
    assert sorted(b["manifest"] for b in bodies) == sorted(
        [f"daily/_manifests/{m}" for m in manifests]
        + ["hourly/_manifests/2026-10-02-05-00_2026-10-02-06-00.json"]
    )
    time.sleep(40)  # more sensor ticks: nothing is delivered twice
    assert len(receiver.requests) == 5
    deliveries = runs(dev, pipelineName="deliver_export")
    assert len(deliveries) == 5 and {r["status"] for r in deliveries} == {"SUCCESS"}
    storage = (
        "postgres" if (dev.home / "dagster.yaml").read_text().count("postgres_db") else "sqlite"
    )
    check_status_command(dev, out)
    check_catalog_of_one_tenant(dev, storage)

    # The schedule ticks at its minute and asks for the last complete hour.
    def scheduled() -> list[dict[str, Any]]:
        return runs(
            dev, tags=[{"key": "dagster/schedule_name", "value": "export_e2e_sched_schedule"}]
        )

    # What a person sees: the job page and the export's partitions, in a real browser.
    job_page = browser(
        f"{dev.url}/locations/exporter_pipeline/jobs/export_e2e_daily",
        ARTIFACTS / f"e2e-{storage}-job.png",
        dev.root / "chromium",
    )
    assert "export_e2e_daily" in job_page and "tenant: acme" in job_page
    assert "Executions of export e2e_daily (tenant acme)." in job_page
    partitions_page = browser(
        f"{dev.url}/assets/exports/e2e_daily?view=partitions",
        ARTIFACTS / f"e2e-{storage}-partitions.png",
        dev.root / "chromium",
    )
    for day in ("2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"):
        assert day in partitions_page
    assert "Materialized" in partitions_page

    ticked = wait_for(scheduled, 200, "the schedule's run")[0]
    assert ticked["tags"]["dagster/partition"] == facts["expected_schedule_partition"]
    assert ticked["tags"]["export"] == "e2e_sched" and ticked["tags"]["tenant"] == "acme"


def graphql_windows(dev: Deployment, export: str) -> dict[str, tuple[str, str, str, str]]:
    """Per window, from the GraphQL API: its newest materialization's run (8 characters),
    that run's status, and the rows and files the run observed for the window."""
    asset = dev.graphql(ASSET_EVENTS, {"key": {"path": ["exports", export]}})["assetOrError"]
    status = {r["runId"]: r["status"] for r in runs(dev)}
    facts = {
        (o["partition"], o["runId"]): {e["label"]: e.get("intValue") for e in o["metadataEntries"]}
        for o in asset["assetObservations"]
    }
    windows: dict[str, tuple[str, str, str, str]] = {}
    for m in asset["assetMaterializations"]:  # newest first
        if m["partition"] not in windows:
            seen = facts[(m["partition"], m["runId"])]
            windows[m["partition"]] = (
                m["runId"][:8],
                status[m["runId"]],
                str(seen["rows"]),
                str(seen["files"]),
            )
    return windows


def check_status_command(dev: Deployment, out: Path) -> None:
    """`exporter-pipeline status --tenant acme`: e2e_daily's 4 windows (1 launched, 3 by
    the UI backfill), its last delivery and no failure; the same numbers as GraphQL's, and
    rows equal to the manifests'. globex's export is not listed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    shown = subprocess.run(
        [str(SCRIPT), "status", "--tenant", "acme", "--dagster-url", dev.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "export e2e_daily (tenant acme)" in text and "e2e_s3" not in text
    daily = text.split("export e2e_daily")[1].split("\nexport ")[0]
    rows = {c[0]: tuple(c[1:5]) for c in (line.split() for line in daily.splitlines()) if c}
    expected = graphql_windows(dev, "e2e_daily")
    assert len(expected) == 4
    assert {k: v for k, v in rows.items() if k in expected} == expected
    for day, (_run, status, count, files) in expected.items():
        manifest = out / f"daily/_manifests/{day}-00-00_{day[:8]}{int(day[8:]) + 1:02d}-00-00.json"
        assert (status, files) == ("SUCCESS", "24")
        assert int(count) == yaml.safe_load(manifest.read_text())["rows"] > 0
    (last,) = runs(
        dev,
        pipelineName="deliver_export",
        tags=[{"key": "export", "value": "e2e_daily"}],
    )[:1]
    assert f"last delivery: {last['runId'][:8]} {last['status']} " in daily
    assert "webhook 200 after 1 attempt(s)" in daily
    assert "failed runs in the last 24 hours: 0" in daily


def check_catalog_of_one_tenant(dev: Deployment, storage: str) -> None:
    """The catalog filtered by acme's asset group lists acme's exports, not globex's."""
    selection = urllib.parse.quote('group:"tenant_acme"')
    page = browser(
        f"{dev.url}/assets?asset-selection={selection}",
        ARTIFACTS / f"e2e-{storage}-tenant-catalog.png",
        dev.root / "chromium",
    )
    assert "e2e_daily" in page and "e2e_sched" in page
    assert "e2e_s3" not in page


def test_one_tenant_backlog_leaves_room_for_another(
    deployment: tuple[Deployment, dict[str, Any]],
) -> None:
    """Four runs of acme, then one of globex: acme never has more than 2 runs at once
    (its pool's limit), and globex starts before acme's queue has drained."""
    dev, _ = deployment
    acme = [
        launch(dev, "export_e2e_daily", {"dagster/partition": f"2026-10-0{d}"})
        for d in (1, 2, 3, 4)
    ]
    globex = launch(dev, "export_e2e_s3", {"dagster/partition": "2026-10-01-07:00"})

    def all_done() -> list[dict[str, Any]]:
        found = {r["runId"]: r for r in runs(dev)}
        ours = [found.get(i) for i in (*acme, globex)]
        return ours if all(r and r["status"] in TERMINAL for r in ours) else []  # type: ignore[return-value]

    finished = wait_for(all_done, 240, "the five runs")
    assert {r["status"] for r in finished} == {"SUCCESS"}
    acme_runs, globex_run = finished[:4], finished[4]
    spans = [(r["startTime"], r["endTime"]) for r in acme_runs]
    # At any acme start, acme runs in progress: never more than 2. (Whether 2 overlap is
    # timing: the code server starts workers one after another and an in-process run of
    # this size ends within a second. test_run_monitoring shows a run held QUEUED.)
    overlaps = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(overlaps) <= 2, spans
    assert globex_run["startTime"] < max(s for s, _ in spans)
