"""Export tasks (seed 000): one-off exports of any [start_time, end_time), each a run of
the job `export_on_demand` whose run config is the request. Status QUEUED, STARTED,
FINISHED, ERROR or CANCELED; progress 0-100 from the run's `progress` tag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field

from exporter_pipeline.api.context import CallerDep, Services, ServicesDep
from exporter_pipeline.api.dagster_client import tag_dict
from exporter_pipeline.api.errors import DAGSTER_RESPONSES, ApiError, ApiErrors
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_of_all, page_request
from exporter_pipeline.api.runs import (
    ENDED,
    ErrorsOut,
    FileOut,
    Published,
    errors_of,
    file_links,
    moment,
    owned_run,
    published_by,
    run_page_request,
    runs_page,
    task_status,
)
from exporter_pipeline.exports.run_progress import PROGRESS_TAG
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.exports.task_request import (
    REQUEST_KEYS,
    TaskRequestError,
    definition_of_request,
    refuse_export_location,
)
from exporter_pipeline.windows import parse_utc

router = APIRouter(tags=["export tasks"], responses=DAGSTER_RESPONSES)

ON_DEMAND_JOB: Final = "export_on_demand"
KIND: Final = "export_task"
# The progress line of a run from before the `progress` tag: "12/72 files (17%), …".
PROGRESS_LINE: Final = re.compile(r"^(\d+)/(\d+) files\b")


class TaskIn(BaseModel):
    """Seed 000's create export task; data-set keys (metrics, query, ...) may be added."""

    model_config = ConfigDict(extra="allow")

    name: str = Field("on_demand", description="names the task's manifest ([a-z0-9_-])")
    start_time: str = Field(description="ISO 8601, any moment (UTC if naive)")
    end_time: str = Field(description="ISO 8601, after start_time, at most 30 days later")
    dataset: str = "raw"
    columns: list[str] | None = None
    filters: dict[str, Any] | None = None
    format: str | None = Field(None, description="csv, parquet or jsonl; csv by default")
    compression: str | None = None
    output: str = Field(description="one of the tenant's outputs")
    path: str = "on-demand"


class TaskOut(BaseModel):
    id: str = Field(description="the run id")
    name: str
    status: str = Field(description="QUEUED, STARTED, FINISHED, ERROR or CANCELED")
    progress: int = Field(ge=0, le=100)
    start_time: datetime
    end_time: datetime
    dataset: str
    format: str
    compression: str | None
    columns: list[str] | None
    filters: dict[str, Any]
    output: str
    path: str
    files: int
    rows: int
    bytes: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


def _tags(tenant: str) -> dict[str, str]:
    return {"tenant": tenant, "kind": KIND}


def checked_request(
    services: Services, tenant: str, body: TaskIn
) -> tuple[dict[str, Any], Asked | None]:
    """The run config of the task: the request as given, checked as `export_on_demand`
    checks it, its output being one of the tenant's own; else 422 listing each problem."""
    problems: list[ApiError] = []
    given = set(body.model_extra or {})
    extra = sorted((given - REQUEST_KEYS) | (given & {"tenant"}))
    for key in extra:
        detail = (
            "the tenant is the API key's"
            if key == "tenant"
            else f"unknown field {key!r} for an export task"
        )
        problems.append(ApiError(422, "invalid_field", detail, pointer=f"/{key}"))
    request = {k: v for k, v in body.model_dump(exclude_none=True).items() if k not in extra}
    request["tenant"] = tenant
    asked = None
    try:
        asked = Asked.of(*definition_of_request(request))
    except TaskRequestError as error:
        for where, message in error.problems:
            code = "invalid_range" if where in ("/start_time", "/end_time") else "invalid_field"
            problems.append(ApiError(422, code, message, pointer=where))
    output = services.store.output(body.output)
    # Another tenant's output and the operator's are answered like a missing one.
    if output is None or output.tenant != tenant:
        detail = f"no output {body.output!r} (create it with POST /v1/outputs)"
        problems.append(ApiError(422, "unknown_output", detail, pointer="/output"))
    elif asked is not None:
        problems += _export_location_problems(services, request)
    if problems:
        raise ApiErrors(problems)
    return request, asked


def _export_location_problems(services: Services, request: dict[str, Any]) -> list[ApiError]:
    """The task's path where a definition export writes (its publish would remove that
    export's files), as the on-demand job refuses it. Only the exports at, inside or
    around that path (on its output or any output naming the same place) are read, as
    the store's load keeps them: the request costs the same however many exports the
    store holds."""
    export = definition_of_request(request)[0]
    around = services.store.load_around(export.output.name, export.output.path)
    try:
        refuse_export_location(export, around.outputs, around.exports)
    except TaskRequestError as error:
        return [ApiError(422, "invalid_field", m, pointer=w) for w, m in error.problems]
    return []


def _config(run: dict[str, Any]) -> dict[str, Any]:
    ops = (run.get("runConfig") or {}).get("ops") or {}
    config = (ops.get(KIND) or {}).get("config")
    return config if isinstance(config, dict) else {}


def progress_of(run_status: str, tag: str | None, messages: list[str]) -> int:
    """0-100: FINISHED is 100; a run in progress is at its `progress` tag (the figure the
    run reports per file, `exports.run_progress`), or, for a run from before that tag,
    its last progress line; never 100 before it has published."""
    if run_status == "SUCCESS":
        return 100
    if tag is not None and tag.isdigit():
        return min(99, int(tag))
    for message in reversed(messages):
        found = PROGRESS_LINE.match(message)
        if found and int(found[2]):
            return min(99, int(found[1]) * 100 // int(found[2]))
    return 0


@dataclass(frozen=True)
class Asked:
    """What a task asked for, as the on-demand job reads its request."""

    name: str
    start: datetime
    end: datetime
    dataset: str
    format: str
    compression: str | None
    columns: list[str] | None
    filters: dict[str, Any]
    output: str
    path: str

    @classmethod
    def of(cls, export: ExportDefinition, start: datetime, end: datetime) -> Asked:
        return cls(
            name=export.name,
            start=start,
            end=end,
            dataset=export.dataset,
            format=export.format,
            compression=export.compression,
            columns=getattr(export, "columns", None),
            filters=dict(getattr(export, "filters", None) or {}),
            output=export.output.name,
            path=export.output.path,
        )

    @classmethod
    def of_config(cls, config: dict[str, Any]) -> Asked:
        try:
            return cls.of(*definition_of_request(config))
        except TaskRequestError:
            # A request the rules of this release refuse (a column since renamed): shown
            # as it was given, never a failure of the whole list.
            return cls(
                name=str(config.get("name", "on_demand")),
                start=parse_utc(str(config.get("start_time"))),
                end=parse_utc(str(config.get("end_time"))),
                dataset=str(config.get("dataset", "raw")),
                format=str(config.get("format") or "csv"),
                compression=config.get("compression"),
                columns=config.get("columns"),
                filters=config.get("filters") or {},
                output=str(config.get("output")),
                path=str(config.get("path", "on-demand")),
            )


WAITING = frozenset({"QUEUED", "NOT_STARTED", "STARTING", "MANAGED", "SUSPENDED"})


def task_out(services: Services, run: dict[str, Any], asked: Asked | None = None) -> TaskOut:
    asked = asked or Asked.of_config(_config(run))
    run_status = run["status"]
    waiting = run_status in WAITING
    tag = tag_dict(run).get(PROGRESS_TAG)
    # The run's log is read only for a run that started before the tag existed.
    logs = not (waiting or run_status == "SUCCESS" or tag is not None)
    messages = services.dagster.messages(run["runId"]) if logs else []
    published = (
        Published()
        if waiting
        else published_by(services, run, asked.output, asked.path, [(asked.start, asked.end)])
    )
    return TaskOut(
        id=run["runId"],
        name=asked.name,
        status=task_status(run_status),
        progress=progress_of(run_status, tag, messages),
        start_time=asked.start,
        end_time=asked.end,
        dataset=asked.dataset,
        format=asked.format,
        compression=asked.compression,
        columns=asked.columns,
        filters=asked.filters,
        output=asked.output,
        path=asked.path,
        files=published.files,
        rows=published.rows,
        bytes=published.bytes,
        created_at=moment(run.get("creationTime")),
        started_at=moment(run.get("startTime")),
        finished_at=moment(run.get("endTime")),
    )


def _published(services: Services, run: dict[str, Any]) -> Published:
    if run["status"] in WAITING:
        return Published()
    asked = Asked.of_config(_config(run))
    return published_by(services, run, asked.output, asked.path, [(asked.start, asked.end)])


def _owned(services: Services, tenant: str, task_id: str) -> dict[str, Any]:
    return owned_run(
        services,
        task_id,
        job=ON_DEMAND_JOB,
        tags=_tags(tenant),
        what="export task",
        with_config=True,
    )


@router.post("/export-tasks", status_code=status.HTTP_201_CREATED, summary="Create an export task")
def create_task(body: TaskIn, services: ServicesDep, caller: CallerDep) -> TaskOut:
    request, asked = checked_request(services, caller.tenant, body)
    run_config = {"ops": {KIND: {"config": request}}}
    run_id = services.dagster.launch(caller.tenant, ON_DEMAND_JOB, _tags(caller.tenant), run_config)
    # Answered from the request: reading the run back would cost another round trip, and a
    # launched run is queued (QueuedRunCoordinator) until the daemon starts it.
    run = {"runId": run_id, "status": "QUEUED", "creationTime": datetime.now(UTC).timestamp()}
    return task_out(services, run, asked)


@router.get("/export-tasks", response_model=Page[TaskOut], summary="List export tasks")
def list_tasks(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(run_page_request)],
) -> Page[TaskOut]:
    runs, total = runs_page(
        services, asked, job=ON_DEMAND_JOB, tags=_tags(caller.tenant), with_config=True
    )
    return page_of(request, [task_out(services, run) for run in runs], total, asked)


@router.get("/export-tasks/{task_id}", summary="One export task, with its progress")
def get_task(task_id: str, services: ServicesDep, caller: CallerDep) -> TaskOut:
    return task_out(services, _owned(services, caller.tenant, task_id))


@router.post(
    "/export-tasks/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel an export task (409 once it has ended)",
)
def cancel_task(task_id: str, services: ServicesDep, caller: CallerDep) -> TaskOut:
    run = _owned(services, caller.tenant, task_id)
    if run["status"] in ENDED - {"CANCELING"}:
        raise ApiError(
            409,
            "already_ended",
            f"export task {task_id!r} has already ended ({task_status(run['status'])})",
            title="Conflict",
        )
    if run["status"] != "CANCELING":
        services.dagster.terminate(task_id)
    return task_out(services, _owned(services, caller.tenant, task_id))


@router.get(
    "/export-tasks/{task_id}/files",
    response_model=Page[FileOut],
    summary="The files of an export task, each with a signed URL valid 7 days",
)
def task_files(
    task_id: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(page_request)],
) -> Page[FileOut]:
    run = _owned(services, caller.tenant, task_id)
    published = _published(services, run)
    output = str(_config(run).get("output"))
    files = file_links(services, output, published.manifests)
    return page_of_all(request, files, asked)


@router.get("/export-tasks/{task_id}/errors", summary="The error file of a failed export task")
def task_errors(task_id: str, services: ServicesDep, caller: CallerDep) -> ErrorsOut:
    return errors_of(
        _published(services, _owned(services, caller.tenant, task_id)), "export task", task_id
    )
