"""An on-demand task may not write where a definition export writes (exports/task_request
`refuse_export_location`): at its path, inside it or around it, through any output naming
the same folder; the launchpad job refuses it (a real in-process run on a temporary
instance, local output folder) and the failure sensor, evaluated over that real failed
run and over one of an unknown tenant, writes no error file for a refused task."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from exporter_pipeline.defs.on_demand import REFUSED_TAG
from exporter_pipeline.exports.definitions_file import parse_definitions
from exporter_pipeline.exports.task_request import (
    TaskRequestError,
    definition_of_request,
    refuse_export_location,
)
from exporter_pipeline_tests.exports.test_export_jobs import Project, export, on_demand_config

HELD = (
    "path {path!r} of output {output!r} meets the files of export 'daily_raw' (output "
    "'local', path 'daily_raw'): a task may not write at, inside or around an export's "
    "path; choose another path"
)


def refusal(path: str, output: str = "local", tenant: str = "acme") -> str | None:
    document = {
        "outputs": {
            "local": {"type": "local", "path": "/data/out"},
            "same_folder": {"type": "local", "path": "/data/out/"},
            "elsewhere": {"type": "local", "path": "/data/other"},
        },
        "exports": [
            {
                **export("daily_raw"),
                "tenant": "acme",
                "output": {"name": "local", "path": "daily_raw"},
            },
            {
                **export("globex_raw"),
                "tenant": "globex",
                "output": {"name": "local", "path": "g/x"},
            },
        ],
    }
    definitions = parse_definitions(document, Path("t.yaml"))
    request = {"tenant": tenant, "output": output, "path": path}
    task = definition_of_request(
        {**request, "start_time": "2026-10-01T00:00:00Z", "end_time": "2026-10-01T01:00:00Z"}
    )[0]
    try:
        refuse_export_location(task, definitions.outputs, definitions.exports)
    except TaskRequestError as error:
        ((where, message),) = error.problems
        assert where == "/path"
        assert str(error) == f"export task 'on_demand' (/path): {message}"
        return message
    return None


@pytest.mark.parametrize(
    ("path", "output"),
    [
        ("daily_raw", "local"),
        ("/daily_raw/", "local"),
        ("daily_raw/x", "local"),
        ("", "local"),
        ("daily_raw", "same_folder"),
    ],
)
def test_a_task_at_inside_or_around_an_exports_path_is_refused(path: str, output: str) -> None:
    # The definition model normalizes the path ("/daily_raw/" is "daily_raw").
    assert refusal(path, output) == HELD.format(path=path.strip("/"), output=output)


@pytest.mark.parametrize(
    ("path", "output"),
    [
        ("daily_raw2", "local"),
        ("daily_raw", "elsewhere"),
        ("on-demand", "local"),
        ("g", "elsewhere"),
    ],
)
def test_a_task_beside_every_export_is_accepted(path: str, output: str) -> None:
    assert refusal(path, output) is None


def test_another_tenants_export_is_not_named() -> None:
    assert refusal("g", "local") == (
        "path 'g' of output 'local' meets the files of an export of another tenant: a task "
        "may not write at, inside or around an export's path; choose another path"
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(tmp_path_factory.mktemp("refused"), [export("daily_raw")])
    # The task's hours, with events of acme and globex only.
    project.ingest(datetime(2026, 10, 2, 10, tzinfo=UTC), 2, events_per_hour=20)
    return project


def failed_task(project: Project, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    job = project.defs.resolve_job_def("export_on_demand")
    result = job.execute_in_process(
        run_config=config, instance=project.instance, raise_on_error=False
    )
    assert not result.success
    return result


def notice(
    project: Project, result: dg.ExecuteInProcessResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluate the failure sensor over the real failed run, as the daemon would."""
    monkeypatch.setenv("EXPORTER_DATABASE_URL", project.settings.database_url)
    sensor = project.defs.resolve_sensor_def("export_failure_notice_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    run = project.instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[REFUSED_TAG] == "request"
    failure = project.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
    assert failure.dagster_event is not None
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=project.instance,
            dagster_run=run,
            dagster_event=failure.dagster_event,
        )
    )


def test_the_job_refuses_a_task_at_an_exports_path_and_no_error_file_lands(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = failed_task(project, on_demand_config("acme", "daily_raw"))
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and error.cause is not None
    assert error.cause.message.splitlines()[0] == (
        "exporter_pipeline.exports.task_request.TaskRequestError: export task 'typo_task' "
        "(/path): " + HELD.format(path="daily_raw", output="local")
    )
    notice(project, result, monkeypatch)
    assert project.files() == []


def test_no_error_file_for_a_task_of_an_unknown_tenant(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = failed_task(project, on_demand_config("acmee", "typo"))
    notice(project, result, monkeypatch)
    assert project.files() == []
