"""Export definitions (seed 004): the YAML keys of one export as JSON, the tenant implied
by the key. Created, read, replaced and removed here; each change reloads the tenant's
code location, so its job and schedule follow at once (`documents.reload_tenant`).

Answers: one export is `{"data": Export}`, after a change with `"meta": {"reload":
{"location", "reload"}}` (a 204 carries the reload's outcome in the `Exporter-Reload`
header) and, once, `"webhook_secret"` when the service made the webhook's secret
(`api/webhook_secrets.py`); a list is a `Page`; errors are JSON:API, pointing at the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from exporter_pipeline.api import request_schemas
from exporter_pipeline.api.context import Caller, CallerDep, ServicesDep
from exporter_pipeline.api.documents import (
    RELOAD_HEADER,
    ChangedDocument,
    ChangeMeta,
    Document,
    reload_tenant,
)
from exporter_pipeline.api.errors import ApiError, ApiErrors, not_found
from exporter_pipeline.api.export_rules import read_export, store_problems
from exporter_pipeline.api.output_rules import invalid
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_request
from exporter_pipeline.api.webhook_secrets import keyless, new_webhook_secret, take_webhook_secret
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.store.apply import uses_stored_secret
from exporter_pipeline.store.store import NameTaken, NotOwned, jsonable

router = APIRouter(tags=["exports"])

ExportBody = Annotated[dict[str, Any], Body(description="The export's YAML keys as JSON.")]


class OutputRefOut(BaseModel):
    name: str
    path: str = ""


class ExportOut(BaseModel):
    """An export definition: these keys and every other key it was given, as given."""

    model_config = ConfigDict(extra="allow")

    name: str
    tenant: str
    dataset: str
    output: OutputRefOut
    start: str = Field(description="First partition (ISO 8601 date or date and time).")


class ExportChangeMeta(ChangeMeta):
    webhook_secret: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="The webhook's signing secret, when the service has just made it: "
        "told here once, never again.",
    )


class ExportChanged(ChangedDocument[ExportOut]):
    meta: ExportChangeMeta


def _out(definition: dict[str, Any]) -> ExportOut:
    return ExportOut.model_validate(definition)


def _mine(services: ServicesDep, caller: Caller, name: str) -> dict[str, Any]:
    found = services.store.export_definition(name, caller.tenant)
    if found is None:
        raise not_found("export", name)
    return found


def _checked(
    services: ServicesDep, caller: Caller, body: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """(the definition, the webhook secret given with it or None); ApiErrors listing
    every problem of both."""
    _total, outputs = services.store.output_page(caller.tenant, 0, 1_000_000)
    body, given, problems = take_webhook_secret(body)
    try:
        definition = read_export(body, caller.tenant, {o.name for o in outputs})
    except ApiErrors as error:
        raise ApiErrors([*error.errors, *problems]) from None
    if problems:
        raise ApiErrors(problems)
    return dict(jsonable(definition)), given


def _webhook_secret(
    services: ServicesDep, definition: dict[str, Any], given: str | None, stored: bool
) -> tuple[str | None, str | None]:
    """(the webhook secret to store, the one to tell the caller): the one given, else the
    one `stored` already, else a new one, told once; none without a stored-secret hook."""
    if not uses_stored_secret(definition) or (stored and not given):
        return None, None
    if not services.store.stores_credentials:
        raise keyless()
    if given:
        return given, None
    made = new_webhook_secret()
    return made, made


def _changed(definition: dict[str, Any], meta: ChangeMeta, told: str | None) -> ExportChanged:
    return ExportChanged(
        data=_out(definition), meta=ExportChangeMeta(reload=meta.reload, webhook_secret=told)
    )


def _taken(name: str) -> ApiError:
    return ApiError(
        409,
        "name_taken",
        f"an export named {name!r} already exists; choose another name",
        title="Name taken",
        pointer="/name",
    )


def _refused(error: DefinitionError, name: str, tenant: str) -> Exception:
    if "both become the Dagster job" in str(error):
        return _taken(name)
    return ApiErrors(store_problems(str(error), tenant))


@router.get("/exports", response_model=Page[ExportOut], summary="List the tenant's exports")
def list_exports(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(page_request)],
) -> Page[ExportOut]:
    """The caller's export definitions by name: `{"data": [Export], "meta", "links"}`."""
    total, rows = services.store.export_page(caller.tenant, asked.offset, asked.limit)
    return page_of(request, [_out(row) for row in rows], total, asked)


@router.post(
    "/exports",
    status_code=201,
    response_model=ExportChanged,
    summary="Create an export definition",
    responses={409: {"description": "the name is taken"}, 503: {"description": "no secret key"}},
    openapi_extra=request_schemas.EXPORT_REQUEST,
)
def create_export(services: ServicesDep, caller: CallerDep, body: ExportBody) -> ExportChanged:
    """The export's YAML keys as JSON (`tenant` omitted or the caller's; `output.name` one
    of the caller's outputs; a webhook's secret write-only, `delivery.webhook.secret`).
    201 `{"data": Export, "meta": {"reload": ..., "webhook_secret"?}}` (the secret the
    service made for the webhook, told once); 409 `name_taken` when any export has it."""
    definition, given = _checked(services, caller, body)
    name = str(definition["name"])
    secret, told = _webhook_secret(services, definition, given, stored=False)
    try:
        services.store.create_export(definition, secret)
    except (NameTaken, IntegrityError):
        raise _taken(name) from None
    except DefinitionError as error:
        raise _refused(error, name, caller.tenant) from None
    meta = reload_tenant(services.settings, caller.tenant)
    return _changed(definition, meta, told)


@router.get("/exports/{name}", response_model=Document[ExportOut], summary="Get an export")
def get_export(services: ServicesDep, caller: CallerDep, name: str) -> Document[ExportOut]:
    """`{"data": Export}`: the definition as it was given."""
    return Document(data=_out(_mine(services, caller, name)))


@router.put(
    "/exports/{name}",
    response_model=ExportChanged,
    summary="Replace an export definition",
    responses={503: {"description": "no secret key"}},
    openapi_extra=request_schemas.EXPORT_REPLACE_REQUEST,
)
def replace_export(
    services: ServicesDep, caller: CallerDep, name: str, body: ExportBody
) -> ExportChanged:
    """The whole new definition (the name in the path; a body `name` must be the same).
    200 `{"data": Export, "meta": {"reload": ...}}`. The webhook keeps its stored secret
    unless `delivery.webhook.secret` gives a new one (a webhook that had none gets one,
    told once in `meta.webhook_secret`)."""
    _mine(services, caller, name)
    if body.get("name", name) != name:
        raise ApiErrors([invalid("/name", f"name must be omitted or {name!r} (the path's)")])
    definition, given = _checked(services, caller, {**body, "name": name})
    stored = services.store.has_webhook_secret(name)
    secret, told = _webhook_secret(services, definition, given, stored)
    try:
        services.store.replace_export(definition, secret)
    except NotOwned:
        raise not_found("export", name) from None
    except DefinitionError as error:
        raise _refused(error, name, caller.tenant) from None
    meta = reload_tenant(services.settings, caller.tenant)
    return _changed(definition, meta, told)


@router.delete(
    "/exports/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete an export definition",
)
def delete_export(services: ServicesDep, caller: CallerDep, name: str) -> Response:
    """204 without a body; the reload's outcome is in the `Exporter-Reload` header. The
    files already delivered stay where they are."""
    if not services.store.delete_export(name, owner=caller.tenant):
        raise not_found("export", name)
    meta = reload_tenant(services.settings, caller.tenant)
    return Response(status_code=204, headers={RELOAD_HEADER: meta.reload.reload})
