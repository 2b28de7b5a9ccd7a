"""Tenant isolation, generated from the API's own OpenAPI document: every operation that
takes the bearer key and a path parameter naming a resource (a name or an id, not a
choice like `live`) is called with tenant B's key and tenant A's names and ids. Each
must answer 404 exactly as it answers for names that do not exist (the same body, the
names aside), and A's resources must be as they were. A new route is covered by itself;
one whose parameter this module has no value for fails until one is added here."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from exporter_pipeline_tests.e2e.conftest import Deployment

METHODS = ("get", "put", "post", "delete", "patch")
RUN_COUNT = "{ runsOrError { ... on Runs { count } } }"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: list[str]
    body: bool


def resource_operations(document: dict[str, Any]) -> list[Operation]:
    """Operations with the bearer key and a path parameter that is not an enum."""
    found = []
    for path, methods in document["paths"].items():
        for method in METHODS:
            operation = methods.get(method)
            if operation is None or not operation.get("security"):
                continue
            names = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "path" and "enum" not in p.get("schema", {})
            ]
            if names:
                found.append(Operation(method, path, names, "requestBody" in operation))
    return found


def filled(operation: Operation, values: dict[str, dict[str, str]]) -> str:
    """The path with each parameter's value, chosen by the path's first segment."""
    family = operation.path.split("/")[2]
    path = operation.path
    for name in operation.parameters:
        path = path.replace("{" + name + "}", values[family][name])
    return path


def call(client: httpx.Client, operation: Operation, path: str, body: Any) -> httpx.Response:
    if operation.body:
        return client.request(operation.method.upper(), path, json=body)
    return client.request(operation.method.upper(), path)


def snapshot(client: httpx.Client, deployment: Deployment, store_document: str) -> dict[str, Any]:
    """What tenant A has: its lists, each resource, its store document, the run count."""
    seen: dict[str, Any] = {"store": store_document}
    for path in ("/v1/outputs", "/v1/exports", "/v1/export-tasks"):
        listed = client.get(path, params={"_limit": 10_000}).json()
        seen[path] = listed
        for item in listed["data"]:
            key = item.get("id") or item["name"]
            seen[f"{path}/{key}"] = client.get(f"{path}/{key}").json()
            if path == "/v1/exports":
                executions = client.get(f"{path}/{key}/executions").json()
                seen[f"{path}/{key}/executions"] = executions
    seen["runs"] = deployment.graphql(RUN_COUNT)["runsOrError"]["count"]
    return seen


def check_isolation(
    a_values: dict[str, dict[str, str]],
    bodies: dict[tuple[str, str], Any],
    a_client: httpx.Client,
    b_client: httpx.Client,
    deployment: Deployment,
    store_document: Any,
) -> int:
    """B's calls with A's names answer like missing names; A is unchanged. Returns how
    many operations were called."""
    document = b_client.get("/openapi.json").json()
    missing = {
        family: {name: _missing(name) for name in names} for family, names in a_values.items()
    }
    before = snapshot(a_client, deployment, store_document())
    operations = resource_operations(document)
    for operation in operations:
        body = bodies.get((operation.method, operation.path), {})
        theirs = call(b_client, operation, filled(operation, a_values), body)
        nothing = call(b_client, operation, filled(operation, missing), body)
        where = f"{operation.method.upper()} {operation.path}"
        assert theirs.status_code == 404, (where, theirs.text)
        assert nothing.status_code == 404, (where, nothing.text)
        assert _anonymised(theirs.text, a_values, missing) == nothing.text, where
        assert theirs.headers.get("content-type") == nothing.headers.get("content-type")
    after = snapshot(a_client, deployment, store_document())
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    return len(operations)


def _missing(name: str) -> str:
    # Ids are run ids (UUIDs); names follow the name rule.
    return str(uuid.uuid4()) if name.endswith("_id") else f"missing_{name}"


def _anonymised(
    text: str, values: dict[str, dict[str, str]], missing: dict[str, dict[str, str]]
) -> str:
    for family, names in values.items():
        for name, value in names.items():
            text = re.sub(re.escape(value), missing[family][name], text)
    return text
