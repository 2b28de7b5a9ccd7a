"""Output credentials stored encrypted (Fernet, EXPORTER_SECRET_KEY): never in clear in
the database file or its rows, never in a dump or an error; opened into a real client.
The last test writes through them into moto's S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from sqlalchemy import text

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.errors import DefinitionError, PermanentDestinationError
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.conftest import S3Server
from exporter_pipeline_tests.exports.conftest import DAY, build_lake
from exporter_pipeline_tests.exports.test_secrets import everything_recorded, shown_in_the_ui
from exporter_pipeline_tests.store.conftest import export, two_tenants, write


# Made up per test: found nowhere unless it leaked.
def secret() -> str:
    return f"SECRET-{uuid.uuid4().hex}"


def test_a_stored_secret_is_nowhere_in_clear(
    store: DefinitionsStore, definitions_store: str, tmp_path: Path
) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    value = secret()
    store.set_credentials("acme_s3", {"secret_access_key": value, "access_key_id": "AKIA1"})
    store.engine.dispose()  # everything on disk, WAL included
    database = Path(definitions_store.removeprefix("sqlite:///"))
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert value.encode() not in on_disk
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM outputs")).all()
    assert value not in repr(rows)
    assert store.credential_names("acme_s3") == ["access_key_id", "secret_access_key"]
    dumped = dump(store)
    assert value not in dumped and "AKIA1" not in dumped
    assert "# access_key_id, secret_access_key: stored encrypted" in dumped
    # The dump is still a file that applies without a change, and keeps the credentials.
    assert not store.apply_file(write_text(tmp_path / "dump.yaml", dumped)).changed
    assert store.credential_names("acme_s3") == ["access_key_id", "secret_access_key"]
    assert yaml.safe_load(dumped)["outputs"]["acme_s3"]["secret_access_key_env"] == (
        "ACME_AWS_SECRET"
    )


def write_text(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def test_a_wrong_or_missing_key_names_the_output_never_the_secret(
    store: DefinitionsStore, definitions_store: str, tmp_path: Path
) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    value = secret()
    store.set_credentials("acme_s3", {"secret_access_key": value})
    other = DefinitionsStore.open(definitions_store, new_key())
    with pytest.raises(PermanentDestinationError) as raised:
        other.open_output("acme_s3")
    assert str(raised.value) == (
        "output 'acme_s3': EXPORTER_SECRET_KEY does not decrypt its stored credentials "
        "(stored with another key?)"
    )
    with pytest.raises(PermanentDestinationError, match="EXPORTER_SECRET_KEY must be set"):
        DefinitionsStore.open(definitions_store, "").open_output("acme_s3")
    with pytest.raises(DefinitionError) as refused:
        store.set_credentials("acme_s3", {"password": value})
    assert value not in str(refused.value)
    assert str(refused.value) == (
        "output 'acme_s3' (s3) has no credential password "
        "(choose endpoint_url, access_key_id, secret_access_key)"
    )


def test_outputs_resource_opens_a_stored_credential(
    store: DefinitionsStore, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's resource reads the one output from the store and hands its decrypted
    credentials to boto3: without them (and without the variables) it cannot open."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ACME_AWS_KEY", "ACME_AWS_SECRET"):
        monkeypatch.delenv(name, raising=False)
    # A tenant's output may reach moto on loopback only so (`delivery.endpoints`).
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    bucket = s3_server.new_bucket()
    document = two_tenants(tmp_path / "out")
    document["outputs"]["acme_s3"]["bucket"] = bucket
    store.apply_file(write(tmp_path / "a.yaml", document))
    resource = OutputsResource.of()
    with pytest.raises(PermanentDestinationError, match="ACME_AWS_KEY is not set"):
        resource.destination("acme_s3")
    store.put_output(
        "acme_s3",
        {**document["outputs"]["acme_s3"], "region": "us-east-1"},
        secrets={
            "endpoint_url": s3_server.endpoint_url,
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    )
    destination = OutputsResource.of().destination("acme_s3")
    try:
        key = destination.check()
    finally:
        destination.close()
    assert key.startswith("_exporter_check/")


def test_a_run_through_a_stored_credential_records_it_nowhere(
    store: DefinitionsStore,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A whole export run on moto with the output's keys held only by the store: the
    files land, and neither key is in run config, tags, the event log, what the UI shows
    of the location, or the process's output."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    # A tenant's output may reach moto on loopback only so (`delivery.endpoints`).
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    lake = build_lake(tmp_path / "data", events_per_hour=40, hours=1)
    bucket, key_id, value = s3_server.new_bucket(), f"AKIA{uuid.uuid4().hex[:16]}", secret()
    output = {"type": "s3", "tenant": "acme", "bucket": bucket, "region": "us-east-1"}
    hourly = export("acme_hourly", "acme", "acme_s3", "x", cadence="hourly")
    document = {
        "outputs": {"acme_s3": output},
        "exports": [{**hourly, "start": "2026-10-01T00:00:00Z"}],
    }
    store.apply_file(write(tmp_path / "a.yaml", document))
    store.set_credentials(
        "acme_s3",
        {
            "endpoint_url": s3_server.endpoint_url,
            "access_key_id": key_id,
            "secret_access_key": value,
        },
    )
    defs = build_definitions(
        Settings.from_env(
            {
                "EXPORTER_LAKE_URL": str(lake.root),
                "EXPORTER_EXPORTS_FILE": str(tmp_path / "none.yaml"),
                "EXPORTER_PARTITIONS_START": "2026-09-01",
            }
        )
    )
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("export_acme_hourly").execute_in_process(
        instance=instance, partition_key=f"{DAY:%Y-%m-%d-%H:%M}"
    )
    assert result.success
    answer = s3_server.client().list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in answer["Contents"]] == [
        "x/2026-10-01-00-00.csv",
        "x/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
    ]
    captured = capfd.readouterr()
    for text_seen in (
        everything_recorded(instance, result.run_id),
        shown_in_the_ui(defs),
        captured.out,
        captured.err,
    ):
        assert value not in text_seen and key_id not in text_seen


def test_stored_credentials_never_pass_to_another_tenant(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    store.apply_file(write(tmp_path / "a.yaml", document))
    store.set_credentials("acme_s3", {"secret_access_key": secret(), "access_key_id": "AKIA1"})
    # Same owner, another bucket: the credentials stay.
    document["outputs"]["acme_s3"]["bucket"] = "acme-archive"
    assert store.apply_file(write(tmp_path / "b.yaml", document)).changed
    assert store.credential_names("acme_s3") == ["access_key_id", "secret_access_key"]
    # Given to globex (acme's export that used it gone): they are dropped, not inherited.
    document["outputs"]["acme_s3"]["tenant"] = "globex"
    document["exports"] = [e for e in document["exports"] if e["name"] != "acme_raw"]
    assert store.apply_file(write(tmp_path / "c.yaml", document), prune=True).changed
    assert store.credential_names("acme_s3") == []


def test_a_tenants_stored_endpoint_is_judged_when_opened(
    store: DefinitionsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the client is made: nothing is sent to a private endpoint of a tenant's
    output (an IP literal here, so no DNS), unless private addresses are allowed."""
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "false")
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    secrets = {"endpoint_url": "http://169.254.169.254", "access_key_id": "k"}
    store.set_credentials("acme_s3", {**secrets, "secret_access_key": "s"})
    with pytest.raises(PermanentDestinationError, match="link-local address"):
        store.open_output("acme_s3")
    store.open_output("acme_s3", {"EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true"}).close()
