"""Bad input across the routes, table-driven, against the API served by uvicorn with no
Dagster behind it (every request here is refused before Dagster would be asked): wrong
types, unknown fields, missing fields, huge `_limit`, end before start, a range too
long, unknown columns, three dimensions, an unknown time zone, a malformed tenant. Each
is a 4xx JSON:API error whose `source` names the field (`pointer`) or the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from exporter_pipeline_tests.api.conftest import Api

TASK = {
    "start_time": "2026-10-01T00:00:00Z",
    "end_time": "2026-10-01T05:00:00Z",
    "output": "acme_local",
}
RUN = {"start": "2026-10-02T00:00:00Z", "end": "2026-10-04T00:00:00Z"}
EXPORT = {"name": "x", "dataset": "raw", "start": "2026-10-01", "output": {"name": "acme_local"}}
VIEWS = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T05:00:00Z"}
METRICS = {"metrics": "http", "interval": "1d", "from": 0, "to": 86_400_000}

# (method, path, query, body, the source of the (first) error)
CASES: list[tuple[str, str, dict[str, Any], Any, dict[str, str]]] = [
    ("POST", "/v1/exports/x/executions", {}, {**RUN, "start": [2026]}, {"pointer": "/start"}),
    ("POST", "/v1/exports/x/executions", {}, {**RUN, "colour": 1}, {"pointer": "/colour"}),
    ("POST", "/v1/exports/x/executions", {}, {"start": RUN["start"]}, {"pointer": "/end"}),
    ("POST", "/v1/exports/x/executions", {}, [RUN], {"pointer": ""}),
    ("POST", "/v1/export-tasks", {}, {**TASK, "columns": "event_id"}, {"pointer": "/columns"}),
    ("POST", "/v1/export-tasks", {}, {**TASK, "name": ["a"]}, {"pointer": "/name"}),
    ("POST", "/v1/export-tasks", {}, {**TASK, "colour": 1}, {"pointer": "/colour"}),
    ("POST", "/v1/export-tasks", {}, {**TASK, "columns": ["nope"]}, {"pointer": "/columns"}),
    (
        "POST",
        "/v1/export-tasks",
        {},
        {**TASK, "end_time": "2026-09-30T00:00:00Z"},
        {"pointer": "/end_time"},
    ),
    (
        "POST",
        "/v1/export-tasks",
        {},
        {**TASK, "end_time": "2026-11-01T00:00:00Z"},
        {"pointer": "/end_time"},
    ),
    ("POST", "/v1/outputs", {}, {"name": "o", "type": "local", "path": 5}, {"pointer": "/path"}),
    ("POST", "/v1/outputs", {}, {"name": "o", "type": "ftp"}, {"pointer": "/type"}),
    ("POST", "/v1/exports", {}, {**EXPORT, "columns": "event_id"}, {"pointer": "/columns"}),
    ("POST", "/v1/exports", {}, {**EXPORT, "end": "2026-09-01"}, {"pointer": "/end"}),
    ("POST", "/v1/exports", {}, {**EXPORT, "end": "2026-11-15"}, {"pointer": "/end"}),
    ("GET", "/v1/exports", {"_limit": 10**12}, None, {"parameter": "_limit"}),
    ("GET", "/v1/export-tasks", {"_limit": 10_001}, None, {"parameter": "_limit"}),
    ("GET", "/v1/export-tasks", {"_page": "one"}, None, {"parameter": "_page"}),
    ("GET", "/v1/exports/x/executions", {"_limit": 0}, None, {"parameter": "_limit"}),
    ("GET", "/v1/outputs", {"tenant": "Acme!"}, None, {"parameter": "tenant"}),
    ("GET", "/v1/views", {**VIEWS, "end": "2026-09-30T00:00:00Z"}, None, {"parameter": "end"}),
    ("GET", "/v1/viewers", {**VIEWS, "end": "2026-11-01T00:00:00Z"}, None, {"parameter": "end"}),
    ("GET", "/v1/views", {**VIEWS, "timezone": "Europe/Nowhere"}, None, {"parameter": "timezone"}),
    ("GET", "/v1/views", {**VIEWS, "_limit": 10**9}, None, {"parameter": "_limit"}),
    (
        "GET",
        "/v1/metrics",
        {**METRICS, "dimensions": "os.name,isp.name,city.name"},
        None,
        {"parameter": "dimensions"},
    ),
    ("GET", "/v1/metrics", {**METRICS, "metrics": "http,bits"}, None, {"parameter": "metrics"}),
    ("GET", "/v1/metrics", {**METRICS, "to": 0}, None, {"parameter": "to"}),
    (
        "GET",
        "/v1/files/o/k",
        {"expires": 10**30, "signature": "ab"},
        None,
        {"parameter": "expires"},
    ),
    ("GET", "/v1/files/o/k", {"expires": 1, "signature": "é"}, None, {"parameter": "signature"}),
    # Once 500s: a parser's recursion, moments whose UTC (or next window) overflows, zones
    # the zone database lists but polars cannot write in, pages Dagster would read to.
    ("GET", "/v1/metrics", {**METRICS, "filters": "[" * 1000}, None, {"parameter": "filters"}),
    (
        "POST",
        "/v1/export-tasks",
        {},
        {**TASK, "start_time": "9999-12-31T23:59:59-23:59"},
        {"pointer": "/start_time"},
    ),
    (
        "POST",
        "/v1/export-tasks",
        {},
        {**TASK, "end_time": "0001-01-01T00:00:00+01:00"},
        {"pointer": "/end_time"},
    ),
    (
        "POST",
        "/v1/exports/x/executions",
        {},
        {**RUN, "start": "0001-01-01T00:00:00+01:00"},
        {"pointer": "/start"},
    ),
    (
        "POST",
        "/v1/exports/x/executions",
        {},
        {**RUN, "end": "9999-12-31T00:00:00Z"},
        {"pointer": "/end"},
    ),
    *[
        ("GET", path, {**VIEWS, "timezone": zone}, None, {"parameter": "timezone"})
        for path in ("/v1/views", "/v1/viewers")
        for zone in ("Factory", "localtime", "posixrules", "posix/Europe/Paris", "right/UTC")
    ],
    ("GET", "/v1/export-tasks", {"_page": 12, "_limit": 10_000}, None, {"parameter": "_page"}),
    (
        "GET",
        "/v1/exports/x/executions",
        {"_page": 100_002, "_limit": 1},
        None,
        {"parameter": "_page"},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "source"),
    CASES,
    ids=[f"{c[0]} {c[1]} {next(iter(c[4].values()))}" for c in CASES],
)
def test_bad_input_is_a_4xx_naming_the_field(
    api_server: Api,
    method: str,
    path: str,
    query: dict[str, Any],
    body: Any,
    source: dict[str, str],
) -> None:
    with api_server.client("acme") as acme:
        answer = acme.request(method, path, params=query, json=body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/vnd.api+json"
    errors = answer.json()["errors"]
    assert source in [e.get("source") for e in errors], errors
    assert all(e["status"] == str(answer.status_code) and e["detail"] for e in errors)


def test_the_document_declares_the_error_answers_as_served(api_server: Api) -> None:
    """Every error answer is declared as JSON:API; every route with a body declares 400."""
    with api_server.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            if "requestBody" in operation:
                assert "400" in responses, (method, path)
            for status, answer in responses.items():
                if status[0] in "45":
                    assert list(answer["content"]) == ["application/vnd.api+json"], (path, status)


def test_a_method_a_path_does_not_take_is_405_with_every_method_it_does(api_server: Api) -> None:
    with api_server.client("acme") as acme:
        for path, allowed in {
            "/v1/outputs": "GET, POST",
            "/v1/exports/x": "DELETE, GET, PUT",
            "/v1/files/o/a/b.csv": "GET",
        }.items():
            answer = acme.request("PATCH", path)
            assert (answer.status_code, answer.headers["allow"]) == (405, allowed), path
            assert answer.json()["errors"][0]["code"] == "method_not_allowed"
        broken = acme.post(
            "/v1/export-tasks", content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert broken.headers["content-type"] == "application/vnd.api+json"
