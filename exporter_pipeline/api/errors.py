"""Every error of the API as JSON:API (seed 003): a status, a code, a title, a detail and
where in the request the problem is (`source.pointer` into the body, or
`source.parameter` for a query or path parameter).

Routes raise `ApiError`; FastAPI's own validation errors, unknown routes and methods, and
anything unexpected are turned into the same shape here, so a client reads one format.
An unexpected error says nothing of its cause (it is logged on the server, never sent).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from exporter_pipeline.api.dagster_client import DagsterError, DagsterUnavailable

log = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
# Where a request's parts are in FastAPI's error locations.
_PARAMETER_PLACES = frozenset({"query", "path", "header"})


class ErrorSource(BaseModel):
    pointer: str | None = None
    parameter: str | None = None


class ErrorObject(BaseModel):
    status: str
    code: str
    title: str
    detail: str
    source: ErrorSource | None = None


class ErrorDocument(BaseModel):
    errors: list[ErrorObject]


class ApiError(Exception):
    """One error of a request; `pointer` is a JSON pointer into the body (`/end_time`),
    `parameter` the name of a query or path parameter."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        pointer: str | None = None,
        parameter: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.title = title or code.replace("_", " ").capitalize()
        self.pointer, self.parameter = pointer, parameter

    def as_object(self) -> ErrorObject:
        source = None
        if self.pointer is not None or self.parameter is not None:
            source = ErrorSource(pointer=self.pointer, parameter=self.parameter)
        return ErrorObject(
            status=str(self.status),
            code=self.code,
            title=self.title,
            detail=self.detail,
            source=source,
        )


class ApiErrors(ApiError):
    """Several problems of one request (every invalid field of a body), answered together
    with the status of the first."""

    def __init__(self, errors: Sequence[ApiError]) -> None:
        first = errors[0]
        super().__init__(first.status, first.code, first.detail, title=first.title)
        self.errors = list(errors)


def not_found(what: str, name: object) -> ApiError:
    """The one answer for a resource that is missing or another tenant's: they must not
    be told apart."""
    return ApiError(404, "not_found", f"no {what} {name!r}", title="Not found")


def error_response(errors: Sequence[ApiError], status: int | None = None) -> JSONResponse:
    document = ErrorDocument(errors=[e.as_object() for e in errors])
    return JSONResponse(
        document.model_dump(exclude_none=True),
        status_code=status or errors[0].status,
        media_type=JSON_API,
    )


def pointer_of(location: Sequence[Any]) -> tuple[str | None, str | None]:
    """(pointer, parameter) of a FastAPI error location: `("body", "filters", 0)` is the
    pointer `/filters/0`; `("query", "_limit")` the parameter `_limit`."""
    place, *rest = location or ("body",)
    if place in _PARAMETER_PLACES:
        return None, str(rest[0]) if rest else None
    if place != "body":
        rest = [place, *rest]
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in rest), None


def _validation_errors(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = []
    for problem in error.errors():
        pointer, parameter = pointer_of(problem.get("loc") or ())
        where = pointer or parameter or "the request"
        found.append(
            ApiError(
                422,
                "invalid_" + ("parameter" if parameter else "field"),
                f"{where}: {problem.get('msg', 'is not valid')}",
                title="Invalid request",
                pointer=pointer if pointer != "/" else "",
                parameter=parameter,
            )
        )
    return error_response(found or [ApiError(422, "invalid_request", "invalid request")], 422)


def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    response = error_response(error.errors if isinstance(error, ApiErrors) else [error])
    if headers:
        response.headers.update(headers)
    return response


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    code = codes.get(error.status_code, f"http_{error.status_code}")
    response = error_response([ApiError(error.status_code, code, str(error.detail))])
    if error.status_code == 405:
        # Every method of the path (one route per method: Starlette names only the first).
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    path = request.url.path
    return sorted(
        {m for regex, methods in _route_table(request.app) if regex.match(path) for m in methods}
    )


def _route_table(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """(path regex, methods) of every route, routers included under their prefix."""
    table = []
    for route in app.routes:
        included = getattr(route, "original_router", None)
        if included is None:
            children, prefix = [route], ""
        else:  # FastAPI's include_router keeps the router whole, with its prefix
            children, prefix = included.routes, route.include_context.prefix  # type: ignore[attr-defined]  # FastAPI's included router
        for child in children:
            if getattr(child, "methods", None):
                table.append((compile_path(prefix + child.path)[0], set(child.methods)))  # type: ignore[attr-defined]  # a route with methods has a path
    return table


def _dagster_error(request: Request, error: Exception) -> JSONResponse:
    """Dagster down is 503 (try again); Dagster refusing what the API asked is 502. The
    details (the webserver's address, its message) stay in the server's log."""
    log.warning("%s %s: %s", request.method, request.url.path, error)
    if isinstance(error, DagsterUnavailable):
        answer = ApiError(
            503,
            "dagster_unavailable",
            "the Dagster webserver did not answer; try again shortly",
            title="Dagster unavailable",
        )
    else:
        answer = ApiError(
            502, "dagster_error", "Dagster refused the request; the server logged why"
        )
    response = error_response([answer])
    if answer.status == 503:
        response.headers["Retry-After"] = "10"
    return response


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
    return error_response(
        [ApiError(500, "internal_error", "the request failed; the server logged why")]
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_errors)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DagsterError, _dagster_error)
    app.add_exception_handler(Exception, _unexpected)


# The error answers every route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorDocument, "description": text}
    for status, text in {
        401: "no valid API key",
        403: "a tenant key naming another tenant (`?tenant=` is for admin keys)",
        404: "no such resource (or another tenant's)",
        422: "the request is not valid",
    }.items()
}

# What routes that ask Dagster may answer besides.
DAGSTER_RESPONSES: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorDocument, "description": "Dagster refused the request"},
    503: {"model": ErrorDocument, "description": "the Dagster webserver did not answer"},
}
