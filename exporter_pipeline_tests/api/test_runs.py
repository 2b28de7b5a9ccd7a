"""Executions, export tasks and downloads of the HTTP API without Dagster: the status
words of every Dagster run status, the windows a range asks for and how a bad range is
refused (pointing at /start or /end), a task request checked as the launchpad checks it,
signed links of a local output downloaded from the API served by uvicorn (tampered,
expired and escaping links refused), and 503 `dagster_unavailable` when the Dagster
webserver does not answer (these settings point it at a closed port)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from exporter_pipeline.api.errors import ApiErrors
from exporter_pipeline.api.ranges import (
    range_tags,
    requested_range,
    requested_windows,
    run_windows,
)
from exporter_pipeline.api.runs import EXECUTION_STATUS, TASK_STATUS
from exporter_pipeline.api.signed_urls import SECRET_NAME, download_url, local_url, safe_key
from exporter_pipeline.api.tasks import progress_of
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.store.api_keys import service_secret
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.exports.conftest import definition

NOW = datetime(2026, 10, 20, 13, 30, tzinfo=UTC)


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2026, 10, d, hour, tzinfo=UTC)


@pytest.mark.parametrize("status", [s.value for s in dg.DagsterRunStatus])
def test_every_dagster_status_has_its_words(status: str) -> None:
    assert EXECUTION_STATUS[status] in {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"}
    assert TASK_STATUS[status] in {"QUEUED", "STARTED", "FINISHED", "ERROR", "CANCELED"}


def test_status_words_follow_the_seeds() -> None:
    execution = {k: EXECUTION_STATUS[k] for k in ("QUEUED", "STARTED", "SUCCESS", "FAILURE")}
    assert execution == {
        "QUEUED": "PENDING",
        "STARTED": "RUNNING",
        "SUCCESS": "SUCCEEDED",
        "FAILURE": "FAILED",
    }
    assert [TASK_STATUS[k] for k in ("QUEUED", "STARTED", "SUCCESS", "FAILURE", "CANCELING")] == [
        "QUEUED",
        "STARTED",
        "FINISHED",
        "ERROR",
        "CANCELED",
    ]


def test_progress_is_the_runs_tag_and_100_only_when_finished() -> None:
    # The run's `progress` tag, as the on-demand op sets it per file.
    assert progress_of("STARTED", "42", []) == 42
    assert progress_of("STARTED", "100", []) == 99  # published only when the run succeeds
    assert progress_of("SUCCESS", "42", []) == 100
    # A run from before the tag: its last progress line.
    lines = ["Started", "3/72 files (4%), 2026-10-01 02:00", "36/72 files (50%), x"]
    assert progress_of("STARTED", None, lines) == 50
    assert progress_of("STARTED", None, ["72/72 files (100%), x"]) == 99
    assert progress_of("STARTED", None, ["nothing yet"]) == 0
    assert progress_of("SUCCESS", None, []) == 100


@pytest.mark.parametrize(
    ("cadence", "start", "end", "keys"),
    [
        ("daily", day(1), day(4), ("2026-10-01", "2026-10-03")),
        ("hourly", day(2, 5), day(2, 7), ("2026-10-02-05:00", "2026-10-02-06:00")),
        # Weekly windows start on the weekday of `start` (a Thursday here).
        ("weekly", day(1), day(15), ("2026-10-01", "2026-10-08")),
    ],
)
def test_a_range_is_its_windows_and_one_runs_partition_range(
    cadence: str, start: datetime, end: datetime, keys: tuple[str, str]
) -> None:
    export = definition(cadence=cadence, start="2026-10-01")
    windows = requested_windows(export, start, end, NOW)
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(b[0] == a[1] for a, b in itertools.pairwise(windows))
    tags = range_tags(cadence, windows)
    assert (
        tags["dagster/asset_partition_range_start"],
        tags["dagster/asset_partition_range_end"],
    ) == keys
    assert run_windows(export, tags) == windows
    assert run_windows(export, {"dagster/partition": keys[0]}) == windows[:1]
    assert run_windows(export, {}) == []


def refused(export: Any, start: datetime, end: datetime) -> list[tuple[str, str]]:
    with pytest.raises(ApiErrors) as raised:
        requested_windows(export, start, end, NOW)
    assert {p.status for p in raised.value.errors} == {422}
    return [(p.pointer or "", p.detail) for p in raised.value.errors]


def test_bad_ranges_are_refused_pointing_at_start_or_end() -> None:
    daily = definition(cadence="daily", start="2026-10-02", end="2026-10-10")
    assert refused(daily, day(3, 5), day(5)) == [
        (
            "/start",
            "start 2026-10-03T05:00:00Z is not the start of a window: the daily windows of t "
            "around it start 2026-10-03T00:00:00Z and 2026-10-04T00:00:00Z",
        )
    ]
    assert [p for p, _ in refused(daily, day(3), day(5, 1))] == ["/end"]
    assert refused(daily, day(5), day(5)) == [
        (
            "/end",
            "end 2026-10-05T00:00:00Z must be after start 2026-10-05T00:00:00Z: "
            "the range holds no window",
        )
    ]
    assert refused(daily, day(1), day(3)) == [
        (
            "/start",
            "start 2026-10-01T00:00:00Z is before the export's first window, 2026-10-02T00:00:00Z",
        )
    ]
    assert refused(daily, day(9), day(12)) == [
        (
            "/end",
            "end 2026-10-12T00:00:00Z is after the end of the export's last window, "
            "2026-10-11T00:00:00Z",
        )
    ]
    hourly = definition(cadence="hourly", start="2026-10-01T00:00:00Z")
    assert refused(hourly, day(20, 10), day(20, 15)) == [
        (
            "/end",
            "end 2026-10-20T15:00:00Z is in the future: the last complete window ends "
            "2026-10-20T13:00:00Z",
        )
    ]
    # Both ends wrong: both said at once.
    assert [p for p, _ in refused(daily, day(3, 1), day(5, 1))] == ["/start", "/end"]


def test_one_execution_covers_at_most_30_days() -> None:
    hourly = definition(cadence="hourly", start="2000-01-01T00:00:00Z")
    september = datetime(2026, 9, 1, tzinfo=UTC)
    assert len(requested_windows(hourly, september, day(1), NOW)) == 30 * 24
    assert refused(hourly, datetime(2000, 1, 1, tzinfo=UTC), day(1)) == [
        (
            "/end",
            "end 2026-10-01T00:00:00Z is more than 30 days after start 2000-01-01T00:00:00Z: "
            "an execution covers at most 30 days; start several",
        )
    ]


def test_moments_outside_the_products_years_are_refused_before_any_arithmetic() -> None:
    early = datetime.fromisoformat("0001-01-01T00:00:00+01:00")
    late = datetime.fromisoformat("9999-12-31T00:00:00+00:00")
    with pytest.raises(ApiErrors) as raised:
        requested_range(early, late)
    assert [(p.pointer, p.code, p.detail) for p in raised.value.errors] == [
        (
            "/start",
            "invalid_range",
            "start 0001-01-01T00:00:00+01:00 is not between 2000-01-01 and 2100-12-31 (UTC)",
        ),
        (
            "/end",
            "invalid_range",
            "end 9999-12-31T00:00:00+00:00 is not between 2000-01-01 and 2100-12-31 (UTC)",
        ),
    ]
    # Naive moments are UTC.
    assert requested_range(datetime(2026, 10, 1), day(2)) == (day(1), day(2))


def test_keys_that_escape_an_output_are_not_keys() -> None:
    assert safe_key("daily/2026-10-01-00-00.csv")
    for bad in ("", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\..\\b"):
        assert not safe_key(bad), bad


# --- against the API on uvicorn


def local_output(
    api: Api, folder: Path, name: str = "acme_local", tenant: str | None = "acme"
) -> None:
    body: dict[str, Any] = {"type": "local", "path": str(folder)}
    if tenant:
        body["tenant"] = tenant
    api.services.store.put_output(name, body)


def test_a_signed_link_downloads_a_local_file_without_a_key(
    api_server: Api, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    (folder / "daily").mkdir(parents=True)
    data = b"event_id,tenant\n" + b"e,acme\n" * 50_000
    (folder / "daily/2026-10-01-00-00.csv").write_bytes(data)
    (tmp_path / "secret.txt").write_text("not yours")
    local_output(api_server, folder)
    secret = service_secret(api_server.services.store.engine, SECRET_NAME)
    url, expires_at = download_url(
        LocalDestination(folder),
        "acme_local",
        "daily/2026-10-01-00-00.csv",
        base_url=api_server.url,
        secret=secret,
    )
    assert timedelta(days=6, hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=7)
    with api_server.client() as anonymous:
        answer = anonymous.get(url)
        assert answer.status_code == 200, answer.text
        assert hashlib.sha256(answer.content).digest() == hashlib.sha256(data).digest()
        assert answer.headers["content-type"].startswith("text/csv")

        def error_of(link: str) -> tuple[int, str]:
            got = anonymous.get(link)
            return got.status_code, got.json()["errors"][0]["code"]

        assert error_of(url.replace("signature=", "signature=0")) == (403, "invalid_signature")
        assert error_of(url.replace("2026-10-01-00-00", "2026-10-01-01-00")) == (
            403,
            "invalid_signature",
        )
        past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())
        expired = local_url(
            api_server.url, secret, "acme_local", "daily/2026-10-01-00-00.csv", past
        )
        assert error_of(expired) == (403, "invalid_signature")
        assert "expired" in anonymous.get(expired).json()["errors"][0]["detail"]
        # A well-signed key that climbs out of the folder, or names nothing, is no file.
        future = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
        escape = local_url(api_server.url, secret, "acme_local", "daily/../../secret.txt", future)
        escape = escape.replace("/../../", "/%2E%2E/%2E%2E/")
        assert error_of(escape) == (404, "not_found")
        gone = local_url(api_server.url, secret, "acme_local", "daily/nothing.csv", future)
        assert error_of(gone) == (404, "not_found")
        assert error_of(url.split("?")[0]) == (422, "invalid_parameter")


def test_dagster_down_is_503_and_bad_requests_are_refused_before_asking_it(
    api_server: Api, tmp_path: Path
) -> None:
    local_output(api_server, tmp_path / "out")
    local_output(api_server, tmp_path / "globex", "globex_local", "globex")
    local_output(api_server, tmp_path / "ops", "operator_local", None)
    api_server.services.store.put_export(
        {
            "name": "acme_daily",
            "tenant": "acme",
            "dataset": "raw",
            "cadence": "daily",
            "start": "2026-10-01",
            "output": {"name": "acme_local", "path": "daily"},
        }
    )
    task = {
        "name": "t1",
        "start_time": "2026-10-01T00:00:00Z",
        "end_time": "2026-10-01T05:00:00Z",
        "columns": ["event_time", "played_ms"],
        "output": "acme_local",
    }
    with api_server.client("acme") as acme, api_server.client("globex") as globex:
        down = acme.get("/v1/export-tasks")
        assert down.status_code == 503 and down.headers["retry-after"] == "10"
        assert down.json()["errors"][0]["code"] == "dagster_unavailable"
        assert acme.post("/v1/export-tasks", json=task).status_code == 503
        run = {"start": "2026-10-02", "end": "2026-10-04"}
        assert acme.post("/v1/exports/acme_daily/executions", json=run).status_code == 503
        assert acme.get("/v1/exports/acme_daily/executions").status_code == 503

        def problems(answer: Any) -> list[tuple[str, str]]:
            assert answer.status_code == 422, answer.text
            return [(e["source"]["pointer"], e["code"]) for e in answer.json()["errors"]]

        # Too long for one run, or a last window past datetime's range: 422, not 500.
        for body in ({"start": "2026-10-01", "end": "2026-11-15"}, {**run, "end": "9999-12-31"}):
            assert problems(acme.post("/v1/exports/acme_daily/executions", json=body)) == [
                ("/end", "invalid_range")
            ]
        bad = {"start": "2026-10-02T03:00:00Z", "end": "2026-10-02T03:00:00Z"}
        assert problems(acme.post("/v1/exports/acme_daily/executions", json=bad)) == [
            ("/start", "invalid_range"),
            ("/end", "invalid_range"),
            ("/end", "invalid_range"),
        ]
        # Another tenant's export is no export at all.
        answer = globex.post("/v1/exports/acme_daily/executions", json=run)
        assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "not_found"
        assert globex.get("/v1/exports/acme_daily/executions").status_code == 404
        # A task is checked as the launchpad checks it, and only the tenant's outputs serve.
        backwards = {**task, "end_time": "2026-09-30T00:00:00Z"}
        assert problems(acme.post("/v1/export-tasks", json=backwards)) == [
            ("/end_time", "invalid_range")
        ]
        too_long = {**task, "end_time": "2026-11-15T00:00:00Z"}
        assert problems(acme.post("/v1/export-tasks", json=too_long)) == [
            ("/end_time", "invalid_range")
        ]
        unknown = {**task, "columns": ["no_such_column"], "tenant": "globex", "colour": 1}
        assert problems(acme.post("/v1/export-tasks", json=unknown)) == [
            ("/colour", "invalid_field"),
            ("/tenant", "invalid_field"),
            ("/columns", "invalid_field"),
        ]
        for output in ("globex_local", "operator_local", "nothing"):
            assert problems(acme.post("/v1/export-tasks", json={**task, "output": output})) == [
                ("/output", "unknown_output")
            ]
        # Run ids that are no run's id are 404 without asking Dagster.
        for path in ("/v1/export-tasks/x", "/v1/exports/acme_daily/executions/1/files"):
            assert acme.get(path).status_code == 404
