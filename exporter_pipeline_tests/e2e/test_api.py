"""The HTTP API end to end: `dagster dev` (SQLite, then PostgreSQL) and the API on
uvicorn pointed at its GraphQL, over one definitions store and a lake of simulated data.
Through the API only: an execution of three days of a daily export and an export task to
an S3-compatible server (moto) run to SUCCEEDED/FINISHED, every file downloads through
its signed URL (the API's own route for the local folder, moto's presigned URL for S3)
with the manifest's sha256; a long task is canceled and leaves no data file and no
manifest; another tenant's key sees none of it (404, as for missing ones)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from exporter_pipeline.exports.manifest import Manifest
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.reload import reload_locations
from exporter_pipeline_tests.api.conftest import Api, make_api  # noqa: F401  # a fixture
from exporter_pipeline_tests.cloud import S3CloudServer
from exporter_pipeline_tests.e2e.conftest import Postgres, start_dagster_dev
from exporter_pipeline_tests.exports.conftest import DAY, build_lake

LAKE_DAYS = 30


@dataclass
class Setup:
    api: Api
    out: Path
    s3: S3CloudServer
    bucket: str


def stretch_lake(lake_root: Path, first_hours: int, days: int) -> None:
    """Raw hours for `days` days from the first `first_hours` simulated ones, their event
    times moved to the new hour: a month of raw data in seconds (for a long task)."""
    for hour in range(first_hours, days * 24):
        source = DAY + timedelta(hours=hour % first_hours)
        shift = timedelta(hours=hour - hour % first_hours)
        frame = pl.read_parquet(lake_root / hourly_key("raw_events", source))
        target = lake_root / hourly_key("raw_events", DAY + timedelta(hours=hour))
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.with_columns(pl.col("event_time") + shift).write_parquet(target)


def store_definitions(api: Api, out: Path, s3: S3CloudServer, bucket: str) -> None:
    # TODO: create these through POST /v1/outputs and POST /v1/exports (which reload the
    # location themselves) once those routes exist; the store is written directly here.
    store = api.services.store
    store.put_output("acme_local", {"type": "local", "path": str(out), "tenant": "acme"})
    store.put_output(
        "acme_s3",
        {"type": "s3", "bucket": bucket, "region": "us-east-1", "tenant": "acme"},
        secrets={
            "endpoint_url": s3.url,
            "access_key_id": s3.secrets()["TEST_S3_KEY"],
            "secret_access_key": s3.secrets()["TEST_S3_SECRET"],
        },
    )
    store.put_export(
        {
            "name": "acme_daily",
            "tenant": "acme",
            "dataset": "raw",
            "format": "csv",
            "cadence": "daily",
            "start": "2026-10-01",
            "end": "2026-10-20",
            "output": {"name": "acme_local", "path": "daily"},
        }
    )


@pytest.fixture(params=["sqlite", "postgres"])
def setup(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_api: Callable[[Settings], Api],  # noqa: F811  # the fixture imported above
) -> Iterator[Setup]:
    postgres: Postgres | None = (
        request.getfixturevalue("postgres") if request.param == "postgres" else None
    )
    lake = build_lake(tmp_path / "data", events_per_hour=5000, hours=24)
    stretch_lake(lake.root, 24, LAKE_DAYS)
    s3 = S3CloudServer(tmp_path)
    s3.start()
    bucket = s3.new_bucket()
    env = {
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(tmp_path / "data" / "landing"),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "no-exports.yaml"),
        "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "EXPORTER_SECRET_KEY": new_key(),
        "EXPORTER_PARTITIONS_START": "2026-10-01",
    }
    try:
        for dev in start_dagster_dev(tmp_path, env, postgres):
            api = make_api(Settings.from_env({**env, "EXPORTER_DAGSTER_URL": dev.url}))
            store_definitions(api, tmp_path / "out", s3, bucket)
            assert reload_locations(dev.url, ["exporter_pipeline"]) == [
                "exporter_pipeline: reloaded"
            ]
            yield Setup(api, tmp_path / "out", s3, bucket)
    finally:
        s3.stop()


def poll(
    client: httpx.Client,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    every: float = 1.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: still {body} after {timeout:.0f} s")
        time.sleep(every)


def download_all(files: list[dict[str, Any]]) -> None:
    """Every file through its URL, with no API key, matching the manifest's sha256."""
    with httpx.Client(timeout=60) as anonymous:
        for file in files:
            answer = anonymous.get(file["url"])
            assert answer.status_code == 200, (file["key"], answer.text[:200])
            assert len(answer.content) == file["bytes"]
            assert hashlib.sha256(answer.content).hexdigest() == file["sha256"], file["key"]


def check_execution(acme: httpx.Client, out: Path) -> str:
    created = acme.post(
        "/v1/exports/acme_daily/executions",
        json={"start": "2026-10-01T00:00:00Z", "end": "2026-10-04T00:00:00Z"},
    )
    assert created.status_code == 201, created.text
    execution = created.json()
    assert execution["status"] in ("PENDING", "RUNNING")
    assert execution["window"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-10-04T00:00:00Z"}
    path = f"/v1/exports/acme_daily/executions/{execution['id']}"
    done = poll(acme, path, lambda e: e["status"] in ("SUCCEEDED", "FAILED"), 300)
    assert done["status"] == "SUCCEEDED", done
    manifests = [
        Manifest.from_bytes(p.read_bytes())
        for p in sorted((out / "daily/_manifests").glob("*.json"))
    ]
    assert len(manifests) == 3 and {m.run_id for m in manifests} == {execution["id"]}
    assert (done["files"], done["rows"], done["bytes"]) == (
        72,
        sum(m.rows for m in manifests),
        sum(m.bytes for m in manifests),
    )
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    files = acme.get(f"{path}/files", params={"_limit": 1000}).json()
    assert files["meta"]["total"] == 72
    assert [(f["key"], f["sha256"]) for f in files["data"]] == [
        (f.key, f.sha256) for m in manifests for f in m.files
    ]
    assert all(
        f["url"].startswith(acme.base_url.join("/v1/files/acme_local/").__str__())
        for f in files["data"]
    )
    download_all(files["data"])
    listed = acme.get("/v1/exports/acme_daily/executions").json()
    assert [e["id"] for e in listed["data"]] == [execution["id"]]
    assert acme.get(f"{path}/errors").status_code == 404
    return str(execution["id"])


def check_task(acme: httpx.Client, setup: Setup) -> str:
    request = {
        "name": "acme-s3-task",
        "start_time": "2026-10-02T03:30:00Z",
        "end_time": "2026-10-02T09:00:00Z",
        "dataset": "raw",
        "columns": ["event_id", "event_time", "event_type", "played_ms"],
        "filters": {"event_type": ["playStart", "heartbeat"]},
        "format": "parquet",
        "compression": "zstd",
        "output": "acme_s3",
        "path": "tasks/one",
    }
    began = time.perf_counter()
    created = acme.post("/v1/export-tasks", json=request)
    took = time.perf_counter() - began
    assert created.status_code == 201, created.text
    task = created.json()
    print(f"POST /v1/export-tasks answered in {took * 1000:.0f} ms")  # timing
    assert took < 1.0
    assert (task["status"], task["progress"], task["format"]) == ("QUEUED", 0, "parquet")
    done = poll(
        acme, f"/v1/export-tasks/{task['id']}", lambda t: t["status"] in ("FINISHED", "ERROR"), 300
    )
    assert (done["status"], done["progress"]) == ("FINISHED", 100), done
    destination = setup.s3.destination(setup.bucket)
    (manifest_key,) = [o.key for o in destination.list("tasks/one/_manifests/")]
    assert manifest_key == "tasks/one/_manifests/2026-10-02-03-30_2026-10-02-09-00.json"
    manifest = Manifest.from_bytes(destination.get_bytes(manifest_key))
    assert manifest.run_id == task["id"] and len(manifest.files) == 6
    assert (done["files"], done["rows"], done["bytes"]) == (6, manifest.rows, manifest.bytes)
    files = acme.get(f"/v1/export-tasks/{task['id']}/files").json()["data"]
    assert [f["sha256"] for f in files] == [f.sha256 for f in manifest.files]
    assert all(f["url"].startswith(setup.s3.url) for f in files)
    download_all(files)
    finished = acme.post(f"/v1/export-tasks/{task['id']}/cancel")
    assert finished.status_code == 409 and finished.json()["errors"][0]["code"] == "already_ended"
    return str(task["id"])


def check_cancel(acme: httpx.Client, out: Path) -> str:
    request = {
        "name": "acme-long",
        "start_time": "2026-10-01T00:00:00Z",
        "end_time": f"2026-10-{1 + LAKE_DAYS}T00:00:00Z",
        "format": "csv",
        "compression": "gzip",
        "output": "acme_local",
        "path": "long",
    }
    task = acme.post("/v1/export-tasks", json=request).json()
    path = f"/v1/export-tasks/{task['id']}"
    running = poll(acme, path, lambda t: t["status"] != "QUEUED" and t["progress"] > 0, 120, 0.3)
    assert running["status"] == "STARTED" and 0 < running["progress"] < 100, running
    canceled = acme.post(f"{path}/cancel")
    assert canceled.status_code == 202, canceled.text
    assert canceled.json()["status"] == "CANCELED"
    done = poll(acme, path, lambda t: t["finished_at"] is not None, 120)
    assert done["status"] == "CANCELED" and (done["files"], done["rows"]) == (0, 0)
    # Nothing at final keys: no data file, no manifest (the failure sensor may have
    # written the window's error file, which says it was canceled).
    assert list((out / "long").glob("*.csv*")) == []
    assert list((out / "long").glob("_manifests/*.json")) == [
        p for p in (out / "long").glob("_manifests/*.error.json")
    ]
    assert acme.get(f"{path}/files").json()["meta"]["total"] == 0
    assert acme.post(f"{path}/cancel").status_code == 409
    return str(task["id"])


def test_executions_tasks_downloads_cancel_and_tenants(setup: Setup) -> None:
    with setup.api.client("acme") as acme, setup.api.client("globex") as globex:
        execution = check_execution(acme, setup.out)
        task = check_task(acme, setup)
        long_task = check_cancel(acme, setup.out)
        listed = acme.get("/v1/export-tasks", params={"_limit": 1}).json()
        assert listed["meta"]["total"] == 2 and listed["data"][0]["id"] == long_task
        assert listed["links"]["next"] is not None
        # Another tenant: nothing of acme's exists for it.
        for path in (
            f"/v1/exports/acme_daily/executions/{execution}",
            "/v1/exports/acme_daily/executions",
            f"/v1/export-tasks/{task}",
            f"/v1/export-tasks/{task}/files",
            f"/v1/export-tasks/{long_task}/errors",
        ):
            answer = globex.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["errors"][0]["code"] == "not_found"
        assert globex.post(f"/v1/export-tasks/{task}/cancel").status_code == 404
        assert globex.get("/v1/export-tasks").json()["meta"]["total"] == 0
        # An execution id is not a task id (and the reverse).
        assert acme.get(f"/v1/export-tasks/{execution}").status_code == 404
        assert acme.get(f"/v1/exports/acme_daily/executions/{task}").status_code == 404
