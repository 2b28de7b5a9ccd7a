"""Output credentials stored encrypted (Fernet, EXPORTER_SECRET_KEY): never in clear in
the database file or its rows, never in a dump or an error; opened into a real client.
The last test writes through them into moto's S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.errors import DefinitionError, PermanentDestinationError
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.conftest import S3Server
from exporter_pipeline_tests.store.conftest import two_tenants, write


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
