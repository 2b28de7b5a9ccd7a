"""The OpenAPI document as the API really answers, for clients and for schemathesis.

FastAPI writes every documented answer as `application/json`; the errors are JSON:API
documents served as `application/vnd.api+json` (errors.py), so each 4xx/5xx answer is
moved to that media type, with the error model where a route gave only a description.
A route that takes a JSON body may also answer 400 (a body that is not JSON at all,
refused by FastAPI before the route runs), which is added here so no route forgets it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from exporter_pipeline.api.errors import JSON_API

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorDocument"}
BAD_BODY = {
    "description": "the body is not JSON",
    "content": {JSON_API: {"schema": ERROR_SCHEMA}},
}


def _error_answer(answer: dict[str, Any]) -> dict[str, Any]:
    content = answer.get("content") or {}
    schema = (content.get("application/json") or {}).get("schema", ERROR_SCHEMA)
    return {**answer, "content": {JSON_API: {"schema": schema}}}


def fix_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses.setdefault("400", BAD_BODY)
    for status, answer in responses.items():
        if status[0] in "45":
            responses[status] = _error_answer(answer)


def install(app: FastAPI) -> None:
    """Serve the corrected document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            for methods in document.get("paths", {}).values():
                for operation in methods.values():
                    fix_operation(operation)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
