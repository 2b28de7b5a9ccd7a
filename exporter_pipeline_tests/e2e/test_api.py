"""The HTTP API end to end: `dagster dev` (SQLite, then PostgreSQL) and the API on
uvicorn pointed at its GraphQL, over one definitions store and a lake of simulated data.
Through the API only: the tenant creates its outputs (one on an S3-compatible server,
moto, with its credentials) and its export, the API reloading the code location itself;
an execution of three days and an export task to S3 run to SUCCEEDED/FINISHED, every
file downloads through its signed URL with the manifest's sha256; a long task is
canceled and leaves no data file and no manifest; metrics, views and viewers equal
DuckDB's over the lake; another tenant's key gets, from every operation of the OpenAPI
document that names a resource, the 404 of a missing one and changes nothing; last,
schemathesis over the whole document (SQLite only: the API is the same on both)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter_pipeline.settings import Settings
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.dump import dump
from exporter_pipeline_tests.api.conftest import Api, make_api  # noqa: F401  # a fixture
from exporter_pipeline_tests.api.query_lake import FIRST_HOUR, HOURS
from exporter_pipeline_tests.cloud import S3CloudServer
from exporter_pipeline_tests.e2e.api_fuzz import check_schemathesis
from exporter_pipeline_tests.e2e.api_isolation import check_isolation
from exporter_pipeline_tests.e2e.api_queries import check_queries
from exporter_pipeline_tests.e2e.api_runs import (
    LAKE_DAYS,
    check_cancel,
    check_execution,
    check_task,
)
from exporter_pipeline_tests.e2e.conftest import Deployment, Postgres, start_dagster_dev
from exporter_pipeline_tests.e2e.lake_days import stretch_lake
from exporter_pipeline_tests.exports.conftest import Lake, build_lake

EXPORT = {
    "name": "acme_daily",
    "dataset": "raw",
    "format": "csv",
    "cadence": "daily",
    "start": "2026-10-01",
    "end": "2026-10-20",
    "output": {"name": "acme_local", "path": "daily"},
}


@dataclass
class Setup:
    api: Api
    dev: Deployment
    backend: str
    out: Path
    s3: S3CloudServer
    bucket: str
    recent: Lake
    root: Path


def create_definitions(acme: httpx.Client, s3: S3CloudServer, bucket: str) -> None:
    """The tenant's outputs and export, through the API; the export's answer says the
    code location was reloaded, so its job exists when the execution is asked for."""
    local = acme.post("/v1/outputs", json={"name": "acme_local", "type": "local", "path": "out"})
    assert local.status_code == 201, local.text
    credentials = {
        "endpoint_url": s3.url,
        "access_key_id": s3.secrets()["TEST_S3_KEY"],
        "secret_access_key": s3.secrets()["TEST_S3_SECRET"],
    }
    body = {"name": "acme_s3", "type": "s3", "bucket": bucket, "region": "us-east-1"}
    remote = acme.post("/v1/outputs", json={**body, "credentials": credentials})
    assert remote.status_code == 201, remote.text
    assert sorted(remote.json()["data"]["credentials"]) == sorted(credentials)
    checked = acme.post("/v1/outputs/acme_s3/test")
    assert checked.json()["data"]["ok"] is True, checked.text
    export = acme.post("/v1/exports", json=EXPORT)
    assert export.status_code == 201, export.text
    assert export.json()["meta"]["reload"] == {
        "location": "exporter_pipeline",
        "reload": "reloaded",
    }


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
    # Recent hours beside October's, for the query routes' "last 7 days" (seed 001).
    recent = build_lake(
        tmp_path / "data", events_per_hour=3000, seed=33, hours=HOURS, day=FIRST_HOUR
    )
    s3 = S3CloudServer(tmp_path)
    s3.start()
    env = {
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(tmp_path / "data" / "landing"),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "no-exports.yaml"),
        "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "EXPORTER_SECRET_KEY": new_key(),
        "EXPORTER_PARTITIONS_START": "2026-10-01",
        "EXPORTER_API_LOCAL_ROOT": str(tmp_path / "tenant-outputs"),
        # moto listens on 127.0.0.1, which an output's endpoint may not be in production.
        "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    try:
        for dev in start_dagster_dev(tmp_path, env, postgres):
            api = make_api(Settings.from_env({**env, "EXPORTER_DAGSTER_URL": dev.url}))
            out = tmp_path / "tenant-outputs" / "acme" / "out"
            yield Setup(api, dev, request.param, out, s3, s3.new_bucket(), recent, tmp_path)
    finally:
        s3.stop()


def isolation_values(execution: str, task: str) -> dict[str, dict[str, str]]:
    """Tenant A's names and ids, by the first segment of the path that takes them."""
    return {
        "outputs": {"name": "acme_local"},
        "exports": {"name": "acme_daily", "execution_id": execution},
        "export-tasks": {"task_id": task},
    }


def isolation_bodies() -> dict[tuple[str, str], Any]:
    """Valid bodies, so a route refuses B for the resource, not for the body."""
    return {
        ("put", "/v1/exports/{name}"): {k: v for k, v in EXPORT.items() if k != "name"},
        ("post", "/v1/exports/{name}/executions"): {
            "start": "2026-10-01T00:00:00Z",
            "end": "2026-10-02T00:00:00Z",
        },
    }


def test_the_api_over_a_running_deployment(setup: Setup) -> None:
    with setup.api.client("acme") as acme, setup.api.client("globex") as globex:
        create_definitions(acme, setup.s3, setup.bucket)
        execution = check_execution(acme, setup.out)
        task = check_task(acme, setup.s3, setup.bucket)
        long_task = check_cancel(acme, setup.out)
        listed = acme.get("/v1/export-tasks", params={"_limit": 1}).json()
        assert listed["meta"]["total"] == 2 and listed["data"][0]["id"] == long_task
        assert listed["links"]["next"] is not None
        # An execution id is not a task id (and the reverse).
        assert acme.get(f"/v1/export-tasks/{execution}").status_code == 404
        assert acme.get(f"/v1/exports/acme_daily/executions/{task}").status_code == 404
        check_queries(acme, setup.recent, "acme")
        assert globex.get("/v1/export-tasks").json()["meta"]["total"] == 0
        called = check_isolation(
            isolation_values(execution, task),
            isolation_bodies(),
            acme,
            globex,
            setup.dev,
            lambda: dump(setup.api.services.store),
        )
        assert called >= 12
    if setup.backend == "sqlite":
        # Last: its requests change things, and only for a tenant of its own.
        check_schemathesis(setup.api.url, setup.api.key("fuzz"), setup.root / "schemathesis")
