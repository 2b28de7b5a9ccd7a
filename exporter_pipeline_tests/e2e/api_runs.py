"""The steps of the HTTP API's end-to-end test (test_api.py) that run work: an execution
of three days, an export task to S3 (moto), a canceled task; each polls the API until
the run ends and checks what it published, file by file, against its manifest."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from exporter_pipeline.exports.manifest import Manifest
from exporter_pipeline_tests.cloud import S3CloudServer

LAKE_DAYS = 30


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


def check_task(acme: httpx.Client, s3: S3CloudServer, bucket: str) -> str:
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
    destination = s3.destination(bucket)
    (manifest_key,) = [o.key for o in destination.list("tasks/one/_manifests/")]
    assert manifest_key == "tasks/one/_manifests/2026-10-02-03-30_2026-10-02-09-00.json"
    manifest = Manifest.from_bytes(destination.get_bytes(manifest_key))
    assert manifest.run_id == task["id"] and len(manifest.files) == 6
    assert (done["files"], done["rows"], done["bytes"]) == (6, manifest.rows, manifest.bytes)
    files = acme.get(f"/v1/export-tasks/{task['id']}/files").json()["data"]
    assert [f["sha256"] for f in files] == [f.sha256 for f in manifest.files]
    assert all(f["url"].startswith(s3.url) for f in files)
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
