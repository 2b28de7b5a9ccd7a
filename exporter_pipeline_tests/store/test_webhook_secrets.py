"""Webhook secrets held by the definitions store (on the test's own SQLite file): only
encrypted on disk, bound to their export, never dumped; `definitions apply` of a dump, or
of any file whose webhook keeps `secret_stored: true`, keeps the secret, while a webhook
that no longer uses it, or an export given to another tenant, loses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from exporter_pipeline.errors import DefinitionError, PermanentDestinationError
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.store.conftest import two_tenants, write
from exporter_pipeline_tests.store.test_credentials import write_text

SECRET = "whsec_c3RvcmVkIGJ5IHRoZSBzdG9yZSwgMzIgYnl0ZXMgbG9uZw=="
HOOK = {"url": "https://hooks.acme.example/x", "secret_stored": True}


def hooked(document: dict[str, Any], index: int, **hook: Any) -> dict[str, Any]:
    """Export `index` of `document`, with a webhook of `HOOK`'s keys and `hook`'s."""
    return {**document["exports"][index], "delivery": {"webhook": {**HOOK, **hook}}}


def test_a_dump_applied_again_keeps_the_secret(
    store: DefinitionsStore, definitions_store: str, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    store.apply_file(write(tmp_path / "a.yaml", document))
    store.replace_export(hooked(document, 1), SECRET)
    assert store.webhook_secret("acme_local") == SECRET
    store.engine.dispose()  # everything on disk, WAL included
    database = Path(definitions_store.removeprefix("sqlite:///"))
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert SECRET.encode() not in on_disk and SECRET[6:].encode() not in on_disk
    with store.engine.connect() as connection:
        definitions = connection.execute(text("SELECT definition FROM exports")).all()
    assert SECRET not in repr(definitions)

    dumped = dump(store)
    assert SECRET not in dumped and "secret_stored: true" in dumped
    assert not store.apply_file(write_text(tmp_path / "dump.yaml", dumped), prune=True).changed
    assert store.webhook_secret("acme_local") == SECRET
    # Another key of the export, its webhook still signing with the stored secret.
    document["exports"][1] = hooked(document, 1, attempts=3)
    assert store.apply_file(write(tmp_path / "b.yaml", document)).exports.updated == 1
    assert store.webhook_secret("acme_local") == SECRET
    # The webhook signs with a variable now: the stored secret goes.
    document["exports"][1] = {
        **document["exports"][1],
        "delivery": {"webhook": {"url": HOOK["url"], "secret_env": "ACME_HOOK"}},
    }
    store.apply_file(write(tmp_path / "c.yaml", document))
    assert not store.has_webhook_secret("acme_local")
    assert store.webhook_secret("acme_local") is None


def test_a_webhook_secret_stays_with_its_export_and_tenant(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    store.apply_file(write(tmp_path / "a.yaml", document))
    store.replace_export(hooked(document, 1), SECRET)
    store.replace_export(hooked(document, 2), SECRET.replace("c3Rv", "b3Rv"))
    # A token copied to another export's row does not sign that export's webhooks.
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE exports SET webhook_secret = "
                "(SELECT webhook_secret FROM exports WHERE name = 'acme_local') "
                "WHERE name = 'globex_local'"
            )
        )
    with pytest.raises(PermanentDestinationError) as raised:
        store.webhook_secret("globex_local")
    assert str(raised.value) == (
        "export 'globex_local': its stored webhook secret was stored for another export"
    )
    # An export given to another tenant (the operator's file may) loses its secret.
    document["exports"][1] = {**hooked(document, 1), "tenant": "globex"}
    store.apply_file(write(tmp_path / "b.yaml", document))
    assert not store.has_webhook_secret("acme_local")


def test_without_a_key_nothing_is_stored_and_nothing_is_read(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    store.apply_file(write(tmp_path / "a.yaml", document))
    store.replace_export(hooked(document, 1), SECRET)
    keyless = DefinitionsStore(store.engine)
    with pytest.raises(DefinitionError) as refused:
        keyless.replace_export(hooked(document, 1), SECRET.replace("c3Rv", "b3Rv"))
    assert "export 'acme_local' has a stored webhook secret: EXPORTER_SECRET_KEY must be set" in (
        str(refused.value)
    )
    with pytest.raises(PermanentDestinationError, match="EXPORTER_SECRET_KEY must be set"):
        keyless.webhook_secret("acme_local")
    assert store.webhook_secret("acme_local") == SECRET  # the refused change stored nothing
