"""Keys and errors of the HTTP API, against the API served by uvicorn on loopback: no key,
a wrong or revoked key answer 401 as JSON:API; a tenant key cannot act for another
tenant; an admin key can; the `api-keys` commands create, list and revoke keys, and a
key is stored only as its hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from sqlalchemy import text

from exporter_pipeline.store.api_keys import list_keys, revoke_key
from exporter_pipeline_tests.api.conftest import Api

REPO = Path(__file__).resolve().parents[2]


def test_no_key_wrong_key_and_revoked_key_answer_401(api_server: Api) -> None:
    with api_server.client() as anonymous:
        answer = anonymous.get("/v1/outputs")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {
        "errors": [
            {
                "status": "401",
                "code": "unauthorized",
                "title": "Unauthorized",
                "detail": "an API key is needed: Authorization: Bearer <key>",
            }
        ]
    }
    with api_server.client(key="ep_" + "x" * 43) as wrong:
        assert wrong.get("/v1/outputs").json()["errors"][0]["detail"] == (
            "the API key is not valid (unknown or revoked)"
        )
    key = api_server.key("acme")
    with api_server.client(key=key) as acme:
        assert acme.get("/v1/outputs").status_code == 200
        (record,) = list_keys(api_server.services.store.engine, "acme")
        assert revoke_key(api_server.services.store.engine, record.id)
        assert acme.get("/v1/outputs").status_code == 401


def test_a_tenant_key_acts_only_for_its_tenant_an_admin_key_for_any(api_server: Api) -> None:
    with api_server.client("acme") as acme:
        answer = acme.get("/v1/outputs", params={"tenant": "globex"})
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["source"] == {"parameter": "tenant"}
        assert acme.get("/v1/outputs", params={"tenant": "acme"}).status_code == 200
    with api_server.client(key=api_server.key("ops", admin=True)) as admin:
        listed = admin.get("/v1/outputs", params={"tenant": "globex"})
        assert listed.status_code == 200 and listed.json()["meta"]["total"] == 0
        bad = admin.get("/v1/outputs", params={"tenant": "Globex!"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["source"] == {
            "parameter": "tenant"
        }


def test_unknown_routes_and_bad_parameters_are_json_api(api_server: Api) -> None:
    with api_server.client("acme") as acme:
        missing = acme.get("/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"
        huge = acme.get("/v1/outputs", params={"_limit": 10_001})
        assert huge.status_code == 422
        (error,) = huge.json()["errors"]
        assert error["source"] == {"parameter": "_limit"} and error["code"] == "invalid_parameter"
        assert acme.get("/v1/outputs", params={"_page": 0}).status_code == 422


def test_openapi_is_3_1_and_served_with_docs(api_server: Api) -> None:
    with api_server.client() as anonymous:
        schema = anonymous.get("/openapi.json").json()
        assert schema["openapi"].startswith("3.1")
        assert "/v1/outputs" in schema["paths"]
        assert anonymous.get("/docs").status_code == 200


def test_api_keys_commands_create_list_revoke_and_store_only_a_hash(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "DAGSTER_HOME": str(tmp_path),
    }
    command = [str(REPO / ".venv" / "bin" / "exporter-pipeline"), "api-keys"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], env=env, capture_output=True, text=True)

    created = run("create", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ep_") and len(key) == 46
    listing = run("list")
    assert "acme" in listing.stdout and key[:9] + "…" in listing.stdout
    assert key not in listing.stdout
    from exporter_pipeline.store.store import DefinitionsStore

    engine = DefinitionsStore.open(env["EXPORTER_DATABASE_URL"]).engine
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT prefix, digest FROM api_keys")).all()
    assert rows == [(key[:9], hashlib.sha256(key.encode()).hexdigest())]
    assert run("revoke", "1").stdout.strip() == "key 1 revoked"
    again = run("revoke", "1")
    assert again.returncode == 1 and again.stderr.strip() == "no live key 1"
    bad = run("create", "--tenant", "Not A Name")
    assert bad.returncode == 2 and "tenant 'Not A Name'" in bad.stderr
