"""Failure notices for runs that died (delivery/failures.py): which export and windows a
run covered, the reason told to the tenant, which windows get an error file and which
must not (already reported, published, or answered by a later run), against a real
local output folder and a real Dagster instance whose run ends as a killed one does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.exports import EXPORT_EXECUTOR
from exporter_pipeline.defs.failures import (
    WindowState,
    export_names_of_run,
    failure_reason,
    report_failed_run,
    windows_to_report,
)
from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.exports.manifest import ErrorRecord, Window, build_manifest
from exporter_pipeline.exports.spec import DefinitionsFile, load_definitions_file
from exporter_pipeline.settings import Settings

D1, D2, D3 = (datetime(2026, 10, d, tzinfo=UTC) for d in (1, 2, 3))
DIED = "the run worker died (killed by signal 9, SIGKILL); Dagster marked the run failed"
ERROR_1 = "daily/_manifests/2026-10-01-00-00_2026-10-02-00-00.error.json"
ERROR_2 = "daily/_manifests/2026-10-02-00-00_2026-10-03-00-00.error.json"
MANIFEST_1 = "daily/_manifests/2026-10-01-00-00_2026-10-02-00-00.json"


def manifest_by(run_id: str) -> bytes:
    """A manifest of the first daily window as `run_id` would have written it."""
    return build_manifest(
        export="acme_daily",
        tenant="acme",
        dataset="raw",
        start=D1,
        end=D2,
        run_id=run_id,
        file_format="csv",
        compression=None,
        columns=[],
        files=[],
    ).to_bytes()


def error_file_by(run_id: str, error: str) -> bytes:
    """An error file of the first daily window as `run_id` would have written it."""
    record = ErrorRecord(
        export="acme_daily",
        tenant="acme",
        run_id=run_id,
        window=Window(start=D1, end=D2),
        error=error,
        failed_at=D2,
        files_published=False,
    )
    return orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


@pytest.fixture
def definitions(tmp_path: Path) -> DefinitionsFile:
    document = {
        "outputs": {"local": {"type": "local", "path": str(tmp_path / "out")}},
        "exports": [
            {
                "name": "acme_daily",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "daily",
                "start": "2026-10-01",
                "output": {"name": "local", "path": "daily"},
            },
            {
                "name": "acme_hourly",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "hourly",
                "start": "2026-10-01T00:00:00Z",
                "output": {"name": "local", "path": "hourly"},
            },
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    return load_definitions_file(tmp_path / "exports.yaml")


@pytest.fixture
def output(tmp_path: Path) -> Destination:
    return destination_from_url(str(tmp_path / "out"))


def report(
    definitions: DefinitionsFile,
    output: Destination,
    run: dg.DagsterRun,
    later: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    return report_failed_run(
        definitions,
        run,
        DIED,
        lambda other: other in later,
        lambda name: output,
        now=lambda: datetime(2026, 11, 2, tzinfo=UTC),
    )


def document(output: Destination, key: str) -> dict[str, object]:
    return orjson.loads(output.get_bytes(key))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("job", "assets", "expected"),
    [
        ("export_acme_daily", [], ["acme_daily"]),
        ("__ASSET_JOB", [["exports", "acme_hourly"], ["raw_events"]], ["acme_hourly"]),
        (
            "__ASSET_JOB",
            [["exports", "acme_daily"], ["exports", "acme_hourly"]],
            ["acme_daily", "acme_hourly"],
        ),
        ("__ASSET_JOB", [["raw_events"], ["view_segments"]], []),
        ("__ASSET_JOB", [["exports", "gone"]], []),
        ("deliver_export", [], []),
        ("export_gone", [], []),
        # A hyphenated export's job has its Dagster name (a scheduled run: no assets).
        ("export_acme_weekly", [], ["acme-weekly"]),
    ],
)
def test_the_exports_of_a_run(job: str, assets: list[list[str]], expected: list[str]) -> None:
    known = ["acme_daily", "acme_hourly", "acme-weekly"]
    assert export_names_of_run(job, assets, known) == expected


@pytest.mark.parametrize(
    ("status", "messages", "reason"),
    [
        (
            "FAILURE",
            ["Run execution process for 1f2e was terminated by signal 9 (SIGKILL).", ""],
            DIED,
        ),
        (
            "FAILURE",
            ["Run execution process for 1f2e unexpectedly exited with code 137."],
            "the run worker died; Dagster marked the run failed",
        ),
        (
            "FAILURE",
            [
                "Canceling due to exceeding maximum runtime of 900 seconds.",
                "Exceeded maximum runtime of 900 seconds.",
            ],
            "the run exceeded its maximum runtime of 900 s and was stopped",
        ),
        (
            "CANCELED",
            ["Canceling due to exceeding maximum runtime of 900 seconds."],
            "the run exceeded its maximum runtime of 900 s and was stopped",
        ),
        (
            "FAILURE",
            ["Run timed out due to taking longer than 180 seconds to start."],
            "the run did not start within 180 s",
        ),
        (
            "CANCELED",
            ["Sending run termination request.", "Execution was interrupted unexpectedly."],
            "the run was canceled before this window was published",
        ),
        (
            "FAILURE",
            ["Execution of run for \"export_x\" failed. Steps failed: ['exports__x']. /srv/x"],
            "the run ended before this window was published",
        ),
    ],
)
def test_the_reason_told_to_the_tenant(status: str, messages: list[str], reason: str) -> None:
    assert failure_reason(status, messages) == reason


def test_windows_already_answered_are_not_reported_again() -> None:
    windows = [(D1, D2), (D2, D3), (D3, D3.replace(day=4)), (D1, D3)]
    states = {
        (D1, D2): WindowState(error_run="dead"),  # the run reported it itself
        (D2, D3): WindowState(manifest_run="dead"),  # the run published it
        (D3, D3.replace(day=4)): WindowState(manifest_run="newer"),  # a re-run did
        (D1, D3): WindowState(manifest_run="older", error_run="older"),  # stale: report
    }
    assert windows_to_report("dead", windows, states, later={"newer"}) == [(D1, D3)]
    assert windows_to_report("dead", [(D1, D2)], {}, later=set()) == [(D1, D2)]


def test_a_dead_runs_windows_get_one_error_file_each(
    definitions: DefinitionsFile, output: Destination
) -> None:
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id="dead-run",
        asset_selection=frozenset({dg.AssetKey(["exports", "acme_daily"])}),
        tags={
            "dagster/asset_partition_range_start": "2026-10-01",
            "dagster/asset_partition_range_end": "2026-10-02",
        },
    )
    # The run published its first window and died in the second.
    output.put_bytes(manifest_by("dead-run"), MANIFEST_1)
    assert report(definitions, output, run) == [ERROR_2]
    assert document(output, ERROR_2) == {
        "export": "acme_daily",
        "tenant": "acme",
        "run_id": "dead-run",
        "window": {"start": "2026-10-02T00:00:00Z", "end": "2026-10-03T00:00:00Z"},
        "error": DIED,
        "failed_at": "2026-11-02T00:00:00Z",
        "files_published": False,
        "files_uploaded": 0,
    }
    assert not output.exists(ERROR_1)
    # Looking again (a second sensor, a retried tick) writes nothing: one notice.
    modified = output.list(ERROR_2)[0].modified
    time.sleep(0.01)
    assert report(definitions, output, run) == []
    assert output.list(ERROR_2)[0].modified == modified


def test_a_window_the_run_reported_or_a_later_run_answered_is_left_alone(
    definitions: DefinitionsFile, output: Destination
) -> None:
    run = dg.DagsterRun(
        job_name="export_acme_daily", run_id="dead-run", tags={"dagster/partition": "2026-10-01"}
    )
    output.put_bytes(error_file_by("dead-run", "own words"), ERROR_1)
    assert report(definitions, output, run) == []
    assert document(output, ERROR_1)["error"] == "own words"

    output.delete(ERROR_1)
    output.put_bytes(manifest_by("re-run"), MANIFEST_1)
    assert report(definitions, output, run, later={"re-run"}) == []
    assert not output.exists(ERROR_1)
    # An older run's manifest stays as it was, and the failure is reported beside it.
    assert report(definitions, output, run) == [ERROR_1]
    assert output.get_bytes(MANIFEST_1) == manifest_by("re-run")


def test_files_a_run_put_before_dying_are_not_published(
    definitions: DefinitionsFile, output: Destination
) -> None:
    run = dg.DagsterRun(
        job_name="export_acme_hourly",
        run_id="dead-run",
        tags={"dagster/partition": "2026-10-01-05:00"},
    )
    # Put after the run started, but no manifest of the run lists it: not published.
    output.put_bytes(b"a,b\n", "hourly/2026-10-01-05-00.csv")
    assert report(definitions, output, run) == [
        "hourly/_manifests/2026-10-01-05-00_2026-10-01-06-00.error.json"
    ]
    error = document(output, "hourly/_manifests/2026-10-01-05-00_2026-10-01-06-00.error.json")
    assert error["files_published"] is False


def test_an_on_demand_task_is_reported_at_its_own_path(
    definitions: DefinitionsFile, output: Destination
) -> None:
    config = {
        "name": "adhoc",
        "tenant": "acme",
        "start_time": "2026-10-01T03:30:00Z",
        "end_time": "2026-10-01T05:00:00Z",
        "output": "local",
        "path": "tasks",
    }
    run = dg.DagsterRun(
        job_name="export_on_demand",
        run_id="dead-task",
        run_config={"ops": {"export_task": {"config": config}}},
    )
    key = "tasks/_manifests/2026-10-01-03-30_2026-10-01-05-00.error.json"
    assert report(definitions, output, run) == [key]
    assert document(output, key)["export"] == "adhoc"
    # A request that names an output the definitions lack has no window to report.
    bad = dg.DagsterRun(
        job_name="export_on_demand",
        run_id="bad-task",
        run_config={"ops": {"export_task": {"config": {**config, "output": "nope"}}}},
    )
    assert report(definitions, output, bad) == []


def test_the_sensor_reports_a_run_dagster_marked_failed_after_its_worker_died(
    tmp_path: Path, definitions: DefinitionsFile, output: Destination
) -> None:
    settings = Settings.from_env(
        {
            "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
            "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
            "EXPORTER_PARTITIONS_START": "2026-10-01",
        }
    )
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("export_failure_notice_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    job = defs.resolve_job_def("export_acme_daily")
    assert job.executor_def is EXPORT_EXECUTOR
    assert job.tags["dagster/max_runtime"] == str(settings.export_max_runtime_s)
    assert defs.resolve_job_def("deliver_export").tags["dagster/max_runtime"] == "1800"
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(job, tags={**job.tags, "dagster/partition": "2026-10-01"})
        # What the code server records when a run worker is SIGKILLed.
        instance.report_engine_event(
            f"Run execution process for {run.run_id} was terminated by signal 9 (SIGKILL).", run
        )
        instance.report_run_failed(run)
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
        assert failure.dagster_event is not None
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run.run_id),  # type: ignore[arg-type]
            dagster_event=failure.dagster_event,
        )
        sensor(context)
        assert document(output, ERROR_1)["error"] == DIED
        assert document(output, ERROR_1)["run_id"] == run.run_id
        sensor(context)  # the CANCELED sensor, or a second look: nothing more
        assert [o.key for o in output.list()] == [ERROR_1]
