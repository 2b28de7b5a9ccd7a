"""One SQLAlchemy engine per store URL and process, migrated once when first opened.

On SQLite, SQLAlchemy emits each BEGIN itself (the sqlite3 module's own would come only
at a transaction's first write): a write transaction then begins IMMEDIATE, holding the
write lock before it reads (`locking.py`)."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.store.locking import sqlite_begin
from exporter_pipeline.store.migrate import sqlite_file_lock, upgrade


def shown_url(url: str) -> str:
    """The URL for a message: never its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":…"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        # Foreign keys are off by default in SQLite (WAL is the file's: `_sqlite_wal`).
        connection.execute("PRAGMA foreign_keys=ON")
        # No BEGIN of the sqlite3 module's: `sqlite_begin` emits every one.
        connection.isolation_level = None


def _sqlite_wal(database: str) -> None:
    """Put a SQLite file in WAL mode (readers then run beside a writer), once, under the
    migrations' lock file. WAL is the file's own and every later connection keeps it;
    asked for by each connection, the switch failed at once ("database is locked") when
    another process or thread was writing the new file."""
    with (
        sqlite_file_lock(database),
        contextlib.closing(sqlite3.connect(database, timeout=30)) as connection,
    ):
        if connection.execute("PRAGMA journal_mode").fetchone() != ("wal",):
            connection.execute("PRAGMA journal_mode=WAL")


def snapshot(engine: Engine) -> Connection:
    """A connection whose queries all read one snapshot of the store, for reads of several
    queries: each statement of PostgreSQL's READ COMMITTED would see what was committed
    between them (an export, then no longer its output), so there a read-only REPEATABLE
    READ transaction. Every SQLite transaction is one snapshot (WAL). Never for a write:
    its snapshot would be taken before it waits for the write lock (`locking.py`)."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return connection


@functools.lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """The migrated engine of `url`; a DefinitionError naming the URL (no password)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DefinitionError(
            f"EXPORTER_DATABASE_URL {shown_url(url)} is not a database URL"
        ) from None
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            _sqlite_wal(parsed.database)
        # Several processes write the file: wait for a lock rather than fail at once.
        options = {"connect_args": {"timeout": 30}}
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", sqlite_begin)
    upgrade(engine)
    return engine
