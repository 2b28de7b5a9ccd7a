"""Outputs through the HTTP API, served by uvicorn on loopback over a SQLite store, the S3
checks against moto's S3 server: create, get, list, check and delete a local output;
credentials stored encrypted and never answered; every refusal as JSON:API with its
pointer (`*_env`, escaping paths, private endpoints, missing credentials, unknown
fields); 409s; and another tenant's or the operator's outputs answering 404 exactly as
missing ones do, with nothing changed."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.conftest import S3Server


def local_output(name: str = "acme_files", path: str = "exports/daily") -> dict[str, Any]:
    return {"name": name, "type": "local", "path": path}


def s3_output(name: str, s3: S3Server, bucket: str, secret: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "s3",
        "bucket": bucket,
        "region": s3.region,
        "credentials": {
            "endpoint_url": s3.endpoint_url,
            "access_key_id": s3.access_key_id,
            "secret_access_key": secret,
        },
    }


def errors_of(answer: httpx.Response, status: int = 422) -> list[dict[str, Any]]:
    assert answer.status_code == status, answer.text
    found: list[dict[str, Any]] = answer.json()["errors"]
    return found


def pointers(answer: httpx.Response) -> list[str]:
    return [e["source"]["pointer"] for e in errors_of(answer)]


def test_a_local_output_round_trip(defs_api: Api, defs_settings: Settings) -> None:
    with defs_api.client("acme") as acme:
        created = acme.post("/v1/outputs", json=local_output())
        assert created.status_code == 201, created.text
        shown = {
            "name": "acme_files",
            "type": "local",
            "settings": {"path": "exports/daily"},
            "credentials": [],
        }
        assert created.json() == {"data": shown}
        assert acme.get("/v1/outputs/acme_files").json() == {"data": shown}
        listed = acme.get("/v1/outputs").json()
        assert listed["data"] == [shown] and listed["meta"]["total"] == 1
        # Stored inside the tenant's own folder, whatever path it gave.
        row = defs_api.services.store.output_row("acme_files")
        assert row is not None
        root = Path(defs_settings.api_local_root)
        assert row.settings["path"] == str(root / "acme" / "exports" / "daily")
        checked = acme.post("/v1/outputs/acme_files/test").json()["data"]
        assert checked["ok"] is True and checked["key"].startswith("_exporter_check/")
        assert acme.delete("/v1/outputs/acme_files").status_code == 204
        assert acme.get("/v1/outputs/acme_files").status_code == 404
    assert defs_api.services.store.output_row("acme_files") is None


def test_refusals_point_at_their_field(defs_api: Api) -> None:
    with defs_api.client("acme") as acme:
        env = acme.post(
            "/v1/outputs",
            json={"name": "a", "type": "s3", "bucket": "b", "secret_access_key_env": "HOME"},
        )
        assert errors_of(env)[0] == {
            "status": "422",
            "code": "env_not_allowed",
            "title": "Invalid request",
            "detail": "secret_access_key_env names an environment variable of the service, "
            "which the API does not lend; give the value as credentials.secret_access_key",
            "source": {"pointer": "/secret_access_key_env"},
        }
        for path in ("/etc", "../globex", "a/../../b", "~root/x"):
            escaping = acme.post("/v1/outputs", json=local_output("a", path))
            assert pointers(escaping) == ["/path"], path
        unknown = acme.post("/v1/outputs", json={**local_output("a"), "bogus": 1})
        assert errors_of(unknown) == [
            {
                "status": "422",
                "code": "invalid_field",
                "title": "Invalid request",
                "detail": "unknown field 'bogus'",
                "source": {"pointer": "/bogus"},
            }
        ]
        no_keys = acme.post("/v1/outputs", json={"name": "a", "type": "s3", "bucket": "b"})
        assert errors_of(no_keys)[0]["code"] == "credentials_required"
        assert pointers(no_keys) == ["/credentials"]
        wrong = acme.post("/v1/outputs", json={**local_output("a"), "tenant": "globex"})
        assert pointers(wrong) == ["/tenant"]
        bad_type = acme.post("/v1/outputs", json={"name": "a", "type": "ftp"})
        assert pointers(bad_type) == ["/type"]
        assert acme.get("/v1/outputs").json()["meta"]["total"] == 0


def test_private_endpoints_are_refused_without_quoting_them(defs_api: Api) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"
    cases = {
        "/credentials/endpoint_url": {"endpoint_url": f"http://127.0.0.1:9000/?k={secret}"},
        "/credentials/connection_string": {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountKey={secret};"
            "BlobEndpoint=http://169.254.169.254/acct;"
        },
    }
    with defs_api.client("acme") as acme:
        for where, credentials in cases.items():
            kind = "s3" if "endpoint_url" in credentials else "azure"
            target = {"bucket": "b"} if kind == "s3" else {"container": "c"}
            keys = {"access_key_id": "k", "secret_access_key": secret} if kind == "s3" else {}
            answer = acme.post(
                "/v1/outputs",
                json={"name": "a", "type": kind, **target, "credentials": {**credentials, **keys}},
            )
            (error,) = errors_of(answer)
            assert error["source"] == {"pointer": where} and error["code"] == (
                "address_not_allowed"
            )
            assert "public addresses only" in error["detail"]
            assert secret not in answer.text and "127.0.0.1" not in answer.text
        azure = acme.post(
            "/v1/outputs",
            json={
                "name": "a",
                "type": "azure",
                "container": "c",
                "account_url": "http://localhost:10000/acct",
                "credentials": {"account_key": secret},
            },
        )
        assert pointers(azure) == ["/account_url"]


def test_names_are_taken_for_everyone_with_one_message(defs_api: Api) -> None:
    with defs_api.client("acme") as acme, defs_api.client("globex") as globex:
        assert acme.post("/v1/outputs", json=local_output()).status_code == 201
        again = acme.post("/v1/outputs", json=local_output())
        theirs = globex.post("/v1/outputs", json=local_output())
        assert errors_of(again, 409) == errors_of(theirs, 409)
        assert errors_of(again, 409)[0]["code"] == "name_taken"
        clash = globex.post("/v1/outputs", json=local_output("acme-files"))
        assert errors_of(clash, 409)[0]["code"] == "name_taken"
        assert "acme_files" not in clash.text
        export = {
            "name": "acme_daily",
            "dataset": "raw",
            "start": "2026-10-01",
            "output": {"name": "acme_files", "path": "daily"},
        }
        assert acme.post("/v1/exports", json=export).status_code == 201
        (in_use,) = errors_of(acme.delete("/v1/outputs/acme_files"), 409)
        assert in_use["code"] == "output_in_use" and "'acme_daily'" in in_use["detail"]
        assert acme.get("/v1/outputs/acme_files").status_code == 200


def test_other_tenants_and_the_operators_outputs_answer_like_missing_ones(
    defs_api: Api,
) -> None:
    store = defs_api.services.store
    store.put_output("ops_files", {"type": "local", "path": "/srv/ops"})
    with defs_api.client("acme") as acme, defs_api.client("globex") as globex:
        assert acme.post("/v1/outputs", json=local_output()).status_code == 201
        for name in ("acme_files", "ops_files"):
            for method, path in (
                ("GET", f"/v1/outputs/{name}"),
                ("DELETE", f"/v1/outputs/{name}"),
                ("POST", f"/v1/outputs/{name}/test"),
            ):
                asked = globex.request(method, path)
                missing = globex.request(method, path.replace(name, "nothing"))
                assert asked.status_code == 404, (method, path)
                assert asked.json()["errors"][0]["detail"] == (
                    missing.json()["errors"][0]["detail"].replace("nothing", name)
                )
        assert globex.get("/v1/outputs").json()["meta"]["total"] == 0
        assert acme.get("/v1/outputs").json()["meta"]["total"] == 1
        assert acme.get("/v1/outputs/ops_files").status_code == 404
    assert store.output_row("acme_files") is not None
    assert store.output_row("ops_files") is not None


def test_s3_credentials_are_stored_encrypted_and_checked_against_moto(
    private_api: Api, s3_server: S3Server, defs_settings: Settings
) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"  # moto takes any key; the test seeks it everywhere
    answers = []
    with private_api.client("acme") as acme:
        body = s3_output("acme_s3", s3_server, s3_server.new_bucket(), secret)
        created = acme.post("/v1/outputs", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["data"]["credentials"] == [
            "access_key_id",
            "endpoint_url",
            "secret_access_key",
        ]
        good = acme.post("/v1/outputs/acme_s3/test")
        assert good.json()["data"]["ok"] is True
        missing = s3_output("acme_gone", s3_server, f"gone-{uuid.uuid4().hex[:8]}", secret)
        assert acme.post("/v1/outputs", json=missing).status_code == 201
        bad = acme.post("/v1/outputs/acme_gone/test")
        assert bad.status_code == 200
        assert bad.json()["data"]["ok"] is False
        assert "NoSuchBucket" in bad.json()["data"]["detail"]
        answers += [created, good, bad, acme.get("/v1/outputs"), acme.get("/v1/outputs/acme_s3")]
    for answer in answers:
        assert secret not in answer.text and s3_server.endpoint_url not in answer.text
    with private_api.services.store.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM outputs")).all()
    assert secret not in repr(rows) and s3_server.endpoint_url not in repr(rows)
    database = Path(defs_settings.database_url.removeprefix("sqlite:///"))
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert secret.encode() not in on_disk


def test_credentials_without_a_secret_key_are_refused_clearly(
    make_api: Callable[[Settings], Api], defs_settings: Settings
) -> None:
    api = make_api(dataclasses.replace(defs_settings, secret_key=""))
    with api.client("acme") as acme:
        answer = acme.post(
            "/v1/outputs",
            json={
                "name": "a",
                "type": "s3",
                "bucket": "b",
                "credentials": {"access_key_id": "k", "secret_access_key": "s"},
            },
        )
        (error,) = errors_of(answer, 503)
        assert error["code"] == "credentials_unavailable"
        assert "EXPORTER_SECRET_KEY" in error["detail"]
        assert acme.get("/v1/outputs/a").status_code == 404
        assert acme.post("/v1/outputs", json=local_output()).status_code == 201


def test_odd_bodies_and_sdk_parsed_connection_strings_are_422s(defs_api: Api) -> None:
    """No DNS here: every endpoint is an IP literal or no endpoint at all."""
    dotless = "BlobEndpo\u0131nt"  # the SDK upper-cases key names: this is BlobEndpoint
    connection_strings = [
        f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;{dotless}="
        "http://127.0.0.1:10000/a",
        "DefaultEndpointsProtocol=http;AccountKey=a2V5;BlobEndpoint =http://127.0.0.1:10000/a",
    ]
    with defs_api.client("acme") as acme:
        for kind in ([], {}):
            assert pointers(acme.post("/v1/outputs", json={"name": "x", "type": kind})) == ["/type"]
        deep = {"credentials_json": "[" * 1000}
        gcs = acme.post(
            "/v1/outputs", json={"name": "x", "type": "gcs", "bucket": "b", "credentials": deep}
        )
        assert pointers(gcs) == ["/credentials/credentials_json"]
        for value in connection_strings:
            credentials = {"connection_string": value}
            body = {"name": "x", "type": "azure", "container": "c", "credentials": credentials}
            answer = acme.post("/v1/outputs", json=body)
            assert pointers(answer) == ["/credentials/connection_string"], value
            assert "127.0.0.1" not in answer.text
        assert acme.get("/v1/outputs").json()["meta"]["total"] == 0


def test_the_check_refuses_a_private_endpoint_before_connecting(defs_api: Api) -> None:
    """An output stored with a private endpoint (as one stored before the rule, or one
    whose name resolves differently now) is refused by `/test`: nothing is sent there."""
    defs_api.services.store.create_output(
        "acme_meta",
        {"type": "s3", "tenant": "acme", "bucket": "b"},
        {"endpoint_url": "http://169.254.169.254", "access_key_id": "k", "secret_access_key": "s"},
    )
    with defs_api.client("acme") as acme:
        checked = acme.post("/v1/outputs/acme_meta/test").json()["data"]
    assert checked == {
        "ok": False,
        "detail": "output 'acme_meta': check failed: credentials.endpoint_url points at a "
        "link-local address; an output may reach public addresses only",
    }
