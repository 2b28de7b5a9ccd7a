"""Export definitions through the HTTP API, served by uvicorn on loopback over a SQLite
store (no Dagster webserver listens, so each change says it reloaded nothing and still
succeeds): create, get, list, replace and delete; the definition rules as JSON:API errors
pointing at the field; only the caller's own outputs; 409 for a taken name, one message
whoever holds it; another tenant's exports answer 404 exactly as missing ones, unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from exporter_pipeline.api.documents import NO_WEBSERVER, RELOAD_HEADER
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.api.test_outputs import errors_of, local_output, pointers


def export(name: str = "acme_daily", output: str = "acme_files", **keys: Any) -> dict[str, Any]:
    return {
        "name": name,
        "dataset": "raw",
        "columns": ["event_time", "event_type", "user_id"],
        "format": "csv",
        "cadence": "daily",
        "start": "2026-10-01",
        "output": {"name": output, "path": "daily"},
        **keys,
    }


@contextlib.contextmanager
def with_output(api: Api, tenant: str, name: str) -> Iterator[httpx.Client]:
    """A client of `tenant`, which has created the local output `name`."""
    with api.client(tenant) as client:
        assert client.post("/v1/outputs", json=local_output(name)).status_code == 201
        yield client


def test_an_export_round_trip(defs_api: Api) -> None:
    with with_output(defs_api, "acme", "acme_files") as acme:
        created = acme.post("/v1/exports", json=export())
        assert created.status_code == 201, created.text
        stored = {**export(), "tenant": "acme"}
        assert created.json() == {
            "data": stored,
            "meta": {"reload": {"location": "exporter_pipeline", "reload": NO_WEBSERVER}},
        }
        assert acme.get("/v1/exports/acme_daily").json() == {"data": stored}
        listed = acme.get("/v1/exports").json()
        assert listed["data"] == [stored] and listed["meta"]["total"] == 1
        changed = {k: v for k, v in export(format="parquet").items() if k != "name"}
        replaced = acme.put("/v1/exports/acme_daily", json=changed)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["data"]["format"] == "parquet"
        assert acme.get("/v1/exports/acme_daily").json()["data"]["format"] == "parquet"
        renamed = acme.put("/v1/exports/acme_daily", json=export("acme_other"))
        assert pointers(renamed) == ["/name"]
        deleted = acme.delete("/v1/exports/acme_daily")
        assert deleted.status_code == 204 and deleted.headers[RELOAD_HEADER] == NO_WEBSERVER
        assert acme.get("/v1/exports/acme_daily").status_code == 404
        assert acme.get("/v1/exports").json()["meta"]["total"] == 0
    assert defs_api.services.store.load(["acme"]).exports == []


def test_definition_rules_point_at_their_field(defs_api: Api) -> None:
    with with_output(defs_api, "acme", "acme_files") as acme:
        column = acme.post("/v1/exports", json=export(columns=["event_time", "nope"]))
        assert errors_of(column) == [
            {
                "status": "422",
                "code": "invalid_field",
                "title": "Invalid definition",
                "detail": "unknown column 'nope' for dataset raw",
                "source": {"pointer": "/columns/1"},
            }
        ]
        backwards = acme.post("/v1/exports", json=export(end="2026-09-01"))
        assert errors_of(backwards) == [
            {
                "status": "422",
                "code": "invalid_range",
                "title": "Invalid definition",
                "detail": "end 2026-09-01 00:00 is before start 2026-10-01 00:00",
                "source": {"pointer": "/end"},
            }
        ]
        unknown = acme.post("/v1/exports", json=export(bogus=True))
        assert errors_of(unknown)[0]["code"] == "unknown_field"
        assert pointers(unknown) == ["/bogus"]
        filters = acme.post("/v1/exports", json=export(filters={"country": ["DE"], "x": ["1"]}))
        assert pointers(filters) == ["/filters/x"]
        stranger = acme.post("/v1/exports", json=export(tenant="globex"))
        assert pointers(stranger) == ["/tenant"]
        hook = {"webhook": {"url": "https://hooks.example/x", "secret_env": "HOME"}}
        secret_env = acme.post("/v1/exports", json=export(delivery=hook))
        assert errors_of(secret_env)[0]["code"] == "env_not_allowed"
        assert pointers(secret_env) == ["/delivery/webhook/secret_env"]
        several = acme.post("/v1/exports", json=export(columns=["nope"], end="2026-09-01"))
        assert sorted(pointers(several)) == ["/columns/0", "/end"]
        assert acme.get("/v1/exports").json()["meta"]["total"] == 0


def test_only_the_callers_own_outputs_may_be_used(defs_api: Api) -> None:
    defs_api.services.store.put_output("ops_files", {"type": "local", "path": "/srv/ops"})
    with (
        with_output(defs_api, "acme", "acme_files") as acme,
        with_output(defs_api, "globex", "globex_files"),
    ):
        details = {}
        for name in ("globex_files", "ops_files", "nothing"):
            (error,) = errors_of(acme.post("/v1/exports", json=export(output=name)))
            assert error["source"] == {"pointer": "/output/name"}
            assert error["code"] == "unknown_output"
            details[name] = error["detail"].replace(name, "<name>")
        assert (
            details["globex_files"]
            == details["ops_files"]
            == details["nothing"]
            == ("unknown output '<name>' (your outputs: acme_files)")
        )


def test_a_taken_name_is_409_with_one_message(defs_api: Api) -> None:
    with (
        with_output(defs_api, "acme", "acme_files") as acme,
        with_output(defs_api, "globex", "globex_files") as globex,
    ):
        assert acme.post("/v1/exports", json=export()).status_code == 201
        again = acme.post("/v1/exports", json=export())
        theirs = globex.post("/v1/exports", json=export(output="globex_files"))
        assert (
            errors_of(again, 409)
            == errors_of(theirs, 409)
            == [
                {
                    "status": "409",
                    "code": "name_taken",
                    "title": "Name taken",
                    "detail": "an export named 'acme_daily' already exists; choose another name",
                    "source": {"pointer": "/name"},
                }
            ]
        )
        # A name that becomes the same Dagster job is taken too, and says nothing more.
        clash = globex.post("/v1/exports", json=export("acme-daily", output="globex_files"))
        assert errors_of(clash, 409)[0]["code"] == "name_taken"
        assert "acme_daily" not in clash.text
    assert defs_api.services.store.export_definition("acme_daily", "acme") is not None


def test_another_tenants_exports_answer_like_missing_ones(defs_api: Api) -> None:
    with (
        with_output(defs_api, "acme", "acme_files") as acme,
        with_output(defs_api, "globex", "globex_files") as globex,
    ):
        assert acme.post("/v1/exports", json=export()).status_code == 201
        before = acme.get("/v1/exports/acme_daily").json()
        body = export(output="globex_files")
        for method in ("GET", "PUT", "DELETE"):
            for name in ("acme_daily", "nothing"):
                kwargs: dict[str, Any] = {"json": {**body, "name": name}} if method == "PUT" else {}
                answer = globex.request(method, f"/v1/exports/{name}", **kwargs)
                (error,) = errors_of(answer, 404)
                assert error["detail"] == f"no export {name!r}", method
        assert globex.get("/v1/exports").json()["meta"]["total"] == 0
        assert acme.get("/v1/exports/acme_daily").json() == before


def test_lists_are_paged(defs_api: Api) -> None:
    with with_output(defs_api, "acme", "acme_files") as acme:
        for name in ("acme_c", "acme_a", "acme_b"):
            assert acme.post("/v1/exports", json=export(name)).status_code == 201
        first = acme.get("/v1/exports", params={"_limit": 2}).json()
        assert [e["name"] for e in first["data"]] == ["acme_a", "acme_b"]
        assert first["meta"] == {"page": 1, "limit": 2, "total": 3}
        second = httpx.get(first["links"]["next"], headers=acme.headers).json()
        assert [e["name"] for e in second["data"]] == ["acme_c"]
        assert second["links"]["next"] is None


def test_openapi_describes_every_answer(defs_api: Api) -> None:
    with defs_api.client() as anonymous:
        schema = anonymous.get("/openapi.json").json()
    paths = schema["paths"]
    for path, methods in {
        "/v1/outputs": ("get", "post"),
        "/v1/outputs/{name}": ("get", "delete"),
        "/v1/outputs/{name}/test": ("post",),
        "/v1/exports": ("get", "post"),
        "/v1/exports/{name}": ("get", "put", "delete"),
    }.items():
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"], (path, method)
            answers = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
            for status, answer in answers.items():
                if status != "204":
                    assert "$ref" in str(answer["content"]["application/json"]["schema"])
    created = paths["/v1/exports"]["post"]["requestBody"]["content"]["application/json"]
    assert "columns" in created["schema"]["properties"]
