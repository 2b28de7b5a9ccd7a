"""Alembic's environment for the definitions store.

Run in code by `store.migrate.upgrade` (which hands over its own connection, already
locked against a concurrent upgrade), or by the `alembic` command line for operators
(`alembic -c exporter_pipeline/store/alembic.ini ...`; the database is
`EXPORTER_DATABASE_URL`, or `-x url=...`).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from exporter_pipeline.settings import Settings
from exporter_pipeline.store.models import Base


def _migrate(connection: Connection) -> None:
    # Batch mode: SQLite alters a table by copying it, which later migrations may need.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    if config.config_file_name is not None:  # the command line: its logging section
        fileConfig(config.config_file_name)
    url = context.get_x_argument(as_dictionary=True).get("url") or Settings.from_env().database_url
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _migrate(connection)
        connection.commit()


# Alembic runs this file to migrate; imported any other way (tools, the layer tests) it
# has no migration context and does nothing.
if hasattr(context, "config"):
    run_migrations()
