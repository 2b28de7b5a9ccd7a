"""Executions (seed 004): the runs of an export's job `export_<name>`. `POST` launches one
run over the windows of [start, end) (Dagster's single-run backfill of a partition
range); each execution reads back its status, window and what its manifests hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field

from exporter_pipeline.api.context import CallerDep, Services, ServicesDep
from exporter_pipeline.api.dagster_client import tag_dict
from exporter_pipeline.api.errors import DAGSTER_RESPONSES, not_found
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_of_all, page_request
from exporter_pipeline.api.ranges import (
    range_tags,
    requested_range,
    requested_windows,
    run_windows,
)
from exporter_pipeline.api.runs import (
    ErrorsOut,
    FileOut,
    Published,
    WindowOut,
    errors_of,
    execution_status,
    file_links,
    moment,
    owned_run,
    published_by,
    run_page_request,
    runs_page,
)
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.names import export_job_name

router = APIRouter(tags=["executions"], responses=DAGSTER_RESPONSES)


class ExecutionIn(BaseModel):
    # An unknown key is a mistake to point at, not a key to drop.
    model_config = ConfigDict(extra="forbid")

    start: datetime = Field(description="ISO 8601; the start of the first window (UTC if naive)")
    end: datetime = Field(description="ISO 8601; the end of the last window, exclusive")


class ExecutionOut(BaseModel):
    id: str
    export: str
    status: str = Field(description="PENDING, RUNNING, SUCCEEDED, FAILED or CANCELED")
    window: WindowOut | None = Field(description="[start, end) of the windows it covers")
    files: int
    rows: int
    bytes: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


def export_of(services: Services, tenant: str, name: str) -> ExportDefinition:
    """The caller's export `name`, or 404 (missing, another tenant's, or not valid now)."""
    loaded = services.store.load_named(name)
    export = next((e for e in loaded.exports if e.name == name), None)
    if export is None or export.tenant != tenant:
        raise not_found("export", name)
    return export


def _published(services: Services, export: ExportDefinition, run: dict[str, Any]) -> Published:
    windows = run_windows(export, tag_dict(run))
    return published_by(services, run, export.output.name, export.output.path, windows)


def _execution(services: Services, export: ExportDefinition, run_id: str) -> dict[str, Any]:
    """The run `run_id` if it is an execution of `export` (its job, its tenant), or 404."""
    job = export_job_name(export.name)
    return owned_run(services, run_id, job=job, tags=_tags(export), what="execution")


def execution_out(
    services: Services, export: ExportDefinition, run: dict[str, Any]
) -> ExecutionOut:
    windows = run_windows(export, tag_dict(run))
    published = _published(services, export, run)
    return ExecutionOut(
        id=run["runId"],
        export=export.name,
        status=execution_status(run["status"]),
        window=WindowOut(start=windows[0][0], end=windows[-1][1]) if windows else None,
        files=published.files,
        rows=published.rows,
        bytes=published.bytes,
        created_at=moment(run.get("creationTime")),
        started_at=moment(run.get("startTime")),
        finished_at=moment(run.get("endTime")),
    )


def _tags(export: ExportDefinition) -> dict[str, str]:
    return {"tenant": export.tenant, "export": export.name}


@router.post(
    "/exports/{name}/executions",
    status_code=status.HTTP_201_CREATED,
    summary="Run the windows of [start, end) of an export (one run)",
)
def create_execution(
    name: str, body: ExecutionIn, services: ServicesDep, caller: CallerDep
) -> ExecutionOut:
    start, end = requested_range(body.start, body.end)
    export = export_of(services, caller.tenant, name)
    windows = requested_windows(export, start, end, datetime.now(UTC))
    tags = {**_tags(export), **range_tags(export.cadence, windows)}
    run_id = services.dagster.launch(caller.tenant, export_job_name(export.name), tags)
    run = _execution(services, export, run_id)
    return execution_out(services, export, run)


@router.get(
    "/exports/{name}/executions",
    response_model=Page[ExecutionOut],
    summary="List an export's executions, newest first",
)
def list_executions(
    name: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(run_page_request)],
) -> Page[ExecutionOut]:
    export = export_of(services, caller.tenant, name)
    runs, total = runs_page(services, asked, job=export_job_name(name), tags=_tags(export))
    items = [execution_out(services, export, run) for run in runs]
    return page_of(request, items, total, asked)


@router.get("/exports/{name}/executions/{execution_id}", summary="One execution")
def get_execution(
    name: str, execution_id: str, services: ServicesDep, caller: CallerDep
) -> ExecutionOut:
    export = export_of(services, caller.tenant, name)
    run = _execution(services, export, execution_id)
    return execution_out(services, export, run)


@router.get(
    "/exports/{name}/executions/{execution_id}/files",
    response_model=Page[FileOut],
    summary="The files of an execution, each with a signed URL valid 7 days",
)
def execution_files(
    name: str,
    execution_id: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(page_request)],
) -> Page[FileOut]:
    export = export_of(services, caller.tenant, name)
    run = _execution(services, export, execution_id)
    published = _published(services, export, run)
    files = file_links(services, export.output.name, published.manifests)
    return page_of_all(request, files, asked)


@router.get(
    "/exports/{name}/executions/{execution_id}/errors",
    summary="The error files of a failed execution (seed 004), one per failed window",
)
def execution_errors(
    name: str, execution_id: str, services: ServicesDep, caller: CallerDep
) -> ErrorsOut:
    export = export_of(services, caller.tenant, name)
    run = _execution(services, export, execution_id)
    published = _published(services, export, run)
    return errors_of(published, "execution", execution_id)
