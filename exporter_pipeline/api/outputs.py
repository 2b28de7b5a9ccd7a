"""Outputs (seed 000): a tenant's own targets, which its exports write to.

An output is created once with its credentials (write-only: stored encrypted, answered
by name only) and can be checked (`/test`) and removed while no export uses it. Only the
caller's outputs exist for it: another tenant's, and the operator's (no tenant), answer
404 exactly like missing ones. The rules a tenant's output follows are `output_rules`.

Answers: one output is `{"data": Output}`, a list is a `Page`, errors are JSON:API.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from exporter_pipeline.api import request_schemas
from exporter_pipeline.api.context import Caller, CallerDep, ServicesDep
from exporter_pipeline.api.documents import Document
from exporter_pipeline.api.errors import ApiError, not_found
from exporter_pipeline.api.output_rules import read_output_request, shown_settings
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_request
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.store.store import NameTaken, StoreOutput

log = logging.getLogger(__name__)
router = APIRouter(tags=["outputs"])


class OutputOut(BaseModel):
    name: str
    type: str = Field(description="local, s3, gcs or azure")
    settings: dict[str, Any] = Field(description="The output's other keys, as written.")
    credentials: list[str] = Field(description="Names of the stored credentials (never values).")


class OutputCheck(BaseModel):
    ok: bool
    key: str | None = Field(default=None, description="The object written, read back and deleted.")
    detail: str | None = Field(default=None, description="What failed (never a credential).")


def _shown(services: ServicesDep, caller: Caller, row: StoreOutput) -> OutputOut:
    root = services.settings.api_local_root
    return OutputOut(
        name=row.name,
        type=row.type,
        settings=shown_settings(row.type, row.settings, root, caller.tenant),
        credentials=list(row.secret_names or []),
    )


def _mine(services: ServicesDep, caller: Caller, name: str) -> StoreOutput:
    row = services.store.output_row(name)
    if row is None or row.tenant != caller.tenant:
        raise not_found("output", name)
    return row


@router.get("/outputs", response_model=Page[OutputOut], summary="List the tenant's outputs")
def list_outputs(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(page_request)],
) -> Page[OutputOut]:
    """The caller's outputs by name: `{"data": [Output], "meta", "links"}`."""
    total, rows = services.store.output_page(caller.tenant, asked.offset, asked.limit)
    items = [_shown(services, caller, row) for row in rows]
    return page_of(request, items, total, asked)


@router.post(
    "/outputs",
    status_code=201,
    response_model=Document[OutputOut],
    summary="Create an output (credentials write-only)",
    responses={409: {"description": "the name is taken"}, 503: {"description": "no secret key"}},
    openapi_extra=request_schemas.OUTPUT_REQUEST,
)
def create_output(
    services: ServicesDep,
    caller: CallerDep,
    body: Annotated[dict[str, Any], Body(description="name, type, its keys, credentials")],
) -> Document[OutputOut]:
    """`{"name", "type", <the output's YAML keys>, "credentials": {name: value}}` creates
    the output; answers 201 `{"data": Output}` naming the stored credentials. Addresses
    must be public, a local path relative (it lives in the tenant's folder), and no
    `*_env` field is taken."""
    asked = read_output_request(body, caller.tenant, services.settings)
    if asked.credentials and not services.store.stores_credentials:
        raise ApiError(
            503,
            "credentials_unavailable",
            "credentials cannot be stored: the service has no EXPORTER_SECRET_KEY "
            "(the operator must set one)",
            pointer="/credentials",
        )
    try:
        services.store.create_output(asked.name, asked.body, asked.credentials)
    except (NameTaken, IntegrityError):
        raise _taken(asked.name) from None
    except DefinitionError as error:
        # `a-b` and another's `a_b` would be one Dagster resource: taken, whoever's it is.
        if "both become the Dagster name" in str(error):
            raise _taken(asked.name) from None
        raise ApiError(422, "invalid_output", _first_line(error), pointer="") from None
    return Document(data=_shown(services, caller, _mine(services, caller, asked.name)))


@router.get("/outputs/{name}", response_model=Document[OutputOut], summary="Get an output")
def get_output(services: ServicesDep, caller: CallerDep, name: str) -> Document[OutputOut]:
    """`{"data": Output}`: its settings and the names of its stored credentials."""
    return Document(data=_shown(services, caller, _mine(services, caller, name)))


@router.delete(
    "/outputs/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete an output no export uses",
    responses={409: {"description": "an export still uses it"}},
)
def delete_output(services: ServicesDep, caller: CallerDep, name: str) -> Response:
    """204 without a body; 409 `output_in_use` naming the exports that still use it."""
    _mine(services, caller, name)
    try:
        removed = services.store.delete_output(name, owner=caller.tenant)
    except DefinitionError as error:
        raise ApiError(409, "output_in_use", str(error), title="Output in use") from None
    if not removed:
        raise not_found("output", name)
    return Response(status_code=204)


@router.post(
    "/outputs/{name}/test",
    response_model=Document[OutputCheck],
    response_model_exclude_none=True,
    summary="Check an output: write, read back and delete a small object",
)
def test_output(services: ServicesDep, caller: CallerDep, name: str) -> Document[OutputCheck]:
    """`{"data": {"ok": true, "key"}}` when a small object could be written, read back and
    deleted under `_exporter_check/`; `{"data": {"ok": false, "detail"}}` otherwise, also
    when an endpoint of the output now resolves to an address it may not reach (nothing
    is sent there)."""
    _mine(services, caller, name)
    # One attempt per call: a tenant waits for an answer, not for the SDK's retries. The
    # endpoint rule the store applies before opening is the API's own setting.
    environ = services.output_environ(EXPORTER_DESTINATION_ATTEMPTS="1")
    try:
        with services.store.open_output(name, environ) as destination:
            key = destination.check()
    except Exception as error:  # any failure is the check's answer
        return Document(data=OutputCheck(ok=False, detail=check_detail(name, error)))
    return Document(data=OutputCheck(ok=True, key=key))


def check_detail(name: str, error: Exception) -> str:
    """What a failed check says: our own errors are worded without secrets; an SDK's
    error text may quote anything, so only its type is told (and the server logs it)."""
    from exporter_pipeline.errors import ExporterError

    if isinstance(error, ExporterError):
        return f"output {name!r}: check failed: {str(error).removeprefix(f'output {name!r}: ')}"
    log.warning("check of output %r failed", name, exc_info=error)
    return f"output {name!r}: check failed: {type(error).__name__}"


def _taken(name: str) -> ApiError:
    return ApiError(
        409,
        "name_taken",
        f"an output named {name!r} already exists; choose another name",
        title="Name taken",
        pointer="/name",
    )


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0].removeprefix("definitions store: ")
