"""The definitions store's fixtures: a store on the test's own SQLite file, a Fernet key,
a small definitions file of two tenants, and entries stored without the rules' check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter_pipeline.store.apply import Applier
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.locking import write_session
from exporter_pipeline.store.store import DefinitionsStore, jsonable


def export(name: str, tenant: str, output: str, path: str, **keys: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": tenant,
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-10-01",
        "output": {"name": output, "path": path},
        **keys,
    }


def two_tenants(out: Path) -> dict[str, Any]:
    """Operator output `local`, acme's own S3 output, three exports of two tenants."""
    return {
        "outputs": {
            "local": {"type": "local", "path": str(out)},
            "acme_s3": {
                "type": "s3",
                "tenant": "acme",
                "bucket": "acme-exports",
                "region": "eu-west-1",
                "access_key_id_env": "ACME_AWS_KEY",
                "secret_access_key_env": "ACME_AWS_SECRET",
            },
        },
        "exports": [
            export("acme_raw", "acme", "acme_s3", "raw", columns=["event_time", "user_id"]),
            export("acme_local", "acme", "local", "acme", schedule={"hour": 2}),
            export("globex_local", "globex", "local", "globex", compression="gzip"),
        ],
    }


def store_unchecked(
    store: DefinitionsStore, outputs: dict[str, Any], exports: list[dict[str, Any]]
) -> None:
    """The entries written as they are, in this order, without the rules' check: what
    two writers at once could store before the write lock, or an older release."""
    with write_session(store.engine) as session:
        Applier(session).apply(jsonable(outputs), jsonable(exports), prune=False)


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = new_key()
    monkeypatch.setenv("EXPORTER_SECRET_KEY", key)
    return key


@pytest.fixture
def store(definitions_store: str, secret_key: str) -> DefinitionsStore:
    return DefinitionsStore.open(definitions_store, secret_key)
