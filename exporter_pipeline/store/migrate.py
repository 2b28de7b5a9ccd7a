"""The store's schema brought to the newest migration, in code, when the store opens.

Alembic runs the migrations of `migrations/versions/` with a configuration built here (no
`alembic.ini` is read). Several processes open the store at once (webserver, daemon, code
servers, run workers): the upgrade holds a lock, a PostgreSQL advisory lock or a lock
file beside the SQLite file, and an up-to-date schema is seen without taking it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: the key of the advisory lock the upgrade holds on PostgreSQL.
PG_LOCK_KEY = 7_140_001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def sqlite_file_lock(database: str | None) -> Iterator[None]:
    """The lock file beside a SQLite file, held exclusively (none for `:memory:`)."""
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the store's database to `revision` (the newest by default)."""
    target = head() if revision == "head" else revision
    with engine.connect() as connection:
        if current(connection) == target:
            return
    sqlite = engine.dialect.name == "sqlite"
    lock = sqlite_file_lock(engine.url.database) if sqlite else contextlib.nullcontext()
    with lock, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held to the transaction's end; a second upgrader then finds the schema done.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
