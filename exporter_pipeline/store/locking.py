"""One writer at a time: a change of the store reads what its rules need, checks and
writes in one transaction that holds the store's write lock from its first statement.

Without it two changes that each pass the rules alone could together break one: two
tenants' exports put at one place at the same moment would each be checked against a
store without the other, and both stored. With it the second waits, then is checked
against the first and refused with the rule's own message.

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`), the
  transaction's first statement; under READ COMMITTED every later statement then sees
  what the previous holder committed. Released at commit or rollback.
- SQLite: the transaction begins with BEGIN IMMEDIATE, which takes the database's write
  lock before anything is read; other writers wait for it (the busy timeout, 30 s).
  `engine.py` has SQLAlchemy emit BEGIN instead of the sqlite3 module (which would begin
  only at the first write, after the reads), so the kind of BEGIN is ours to choose.

Readers are never blocked: PostgreSQL's and SQLite's (WAL) reads do not wait for writers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

# The execution option that marks a write transaction (read by `sqlite_begin`).
WRITE_OPTION = "exporter_store_write"
# Any constant other than the migrations' (`migrate.PG_LOCK_KEY`).
PG_WRITE_LOCK_KEY = 7_140_002


def sqlite_begin(connection: Connection) -> None:
    """The `begin` event of a SQLite engine: BEGIN IMMEDIATE for a write, else BEGIN."""
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in a transaction holding the store's write lock, committed on leaving
    (rolled back on an exception)."""
    writer = engine.execution_options(**{WRITE_OPTION: True})
    with Session(writer, expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK_KEY})
        else:
            session.connection()  # BEGIN IMMEDIATE now, before the first read
        yield session
