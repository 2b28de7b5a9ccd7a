"""Alembic migrations of the store, from an empty database to the newest, on SQLite and
on a throwaway PostgreSQL cluster (the `postgres` fixture): the migrated schema is the
models' schema, an upgrade is safe to repeat, and the store works there end to end. A
store holding definitions at the previous revision upgrades with its data: recorded as
seeded, its lookup columns filled, its entries loaded as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.migrate import alembic_config, head, upgrade
from exporter_pipeline.store.models import Base, OutputRow
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import Postgres
from exporter_pipeline_tests.store.conftest import two_tenants, write


def check_upgrade_from_empty(url: str) -> None:
    engine = create_engine(url)
    assert inspect(engine).get_table_names() == []
    upgrade(engine)
    upgrade(engine)  # a second upgrade finds nothing to do
    assert set(inspect(engine).get_table_names()) == {
        "alembic_version",
        "exports",
        "outputs",
        "api_keys",
        "store_secrets",
        "store_state",
    }
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head()
        assert compare_metadata(context, Base.metadata) == []
    # Down to nothing and up again, as an operator would with the alembic command line.
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    engine.dispose()


def round_trip(url: str, tmp_path: Path) -> None:
    store = DefinitionsStore.open(url, new_key())
    source = write(tmp_path / "a.yaml", two_tenants(tmp_path / "out"))
    assert store.apply_file(source).exports.created == 3
    dumped = tmp_path / "dump.yaml"
    dumped.write_text(dump(store))
    assert not store.apply_file(dumped, prune=True).changed
    store.set_credentials("acme_s3", {"secret_access_key": "not-in-clear"})
    assert [e.name for e in store.load().exports] == ["acme_raw", "acme_local", "globex_local"]


# The revision before this release's migrations, and its two tables as it wrote them.
PREVIOUS = "0003"


def _old_table(name: str, *columns: str, document: str) -> sa.TableClause:
    stamps = (sa.column("created_at", sa.DateTime), sa.column("updated_at", sa.DateTime))
    return sa.table(name, *map(sa.column, columns), sa.column(document, sa.JSON), *stamps)


OLD_OUTPUTS = _old_table("outputs", "name", "tenant", "type", document="settings")
OLD_EXPORTS = _old_table("exports", "name", "tenant", "output_name", document="definition")


def write_previous_revision(engine: sa.Engine, document: dict[str, Any]) -> None:
    """`document` stored as the previous release stored it."""
    upgrade(engine, PREVIOUS)
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    with engine.begin() as connection:
        for name, body in document["outputs"].items():
            settings = {k: v for k, v in body.items() if k not in ("type", "tenant")}
            row = {"name": name, "tenant": body.get("tenant"), "type": body["type"]}
            connection.execute(OLD_OUTPUTS.insert().values(**row, settings=settings, **stamps))
        for body in document["exports"]:
            row = {"name": body["name"], "tenant": body["tenant"]}
            output = body["output"]["name"]
            connection.execute(
                OLD_EXPORTS.insert().values(**row, output_name=output, definition=body, **stamps)
            )


def check_upgrade_with_data(url: str, tmp_path: Path) -> None:
    engine = create_engine(url)
    write_previous_revision(engine, two_tenants(tmp_path / "out"))
    upgrade(engine)
    engine.dispose()
    store = DefinitionsStore.open(url)
    assert store.was_seeded()
    assert [e.name for e in store.load().exports] == ["acme_raw", "acme_local", "globex_local"]
    # The lookup columns of the rows already there are filled: each export alone loads.
    with store.engine.connect() as connection:
        places = dict(connection.execute(sa.select(OutputRow.name, OutputRow.place)).all())
    assert places == {"local": f"local{tmp_path / 'out'}", "acme_s3": "s3/acme-exports"}
    for name in ("acme_raw", "acme_local", "globex_local"):
        assert [e.name for e in store.load_job(f"export_{name}").exports] == [name]


def check_upgrade_of_an_empty_store(url: str) -> None:
    engine = create_engine(url)
    upgrade(engine, PREVIOUS)
    upgrade(engine)
    engine.dispose()
    assert not DefinitionsStore.open(url).was_seeded()  # its next load seeds it


def test_sqlite_from_the_previous_revision(tmp_path: Path) -> None:
    check_upgrade_with_data(f"sqlite:///{tmp_path / 'data.sqlite3'}", tmp_path)
    check_upgrade_of_an_empty_store(f"sqlite:///{tmp_path / 'empty.sqlite3'}")


def test_postgresql_from_the_previous_revision(postgres: Postgres, tmp_path: Path) -> None:
    check_upgrade_with_data(postgres.create_database(f"store_{uuid.uuid4().hex[:12]}"), tmp_path)
    check_upgrade_of_an_empty_store(postgres.create_database(f"store_{uuid.uuid4().hex[:12]}"))


def test_sqlite_from_empty(tmp_path: Path) -> None:
    check_upgrade_from_empty(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    round_trip(f"sqlite:///{tmp_path / 'store.sqlite3'}", tmp_path)


def test_postgresql_from_empty(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.create_database(f"store_{uuid.uuid4().hex[:12]}")
    check_upgrade_from_empty(url)
    round_trip(url, tmp_path)
