"""The definitions store (DESIGN.md, Definitions store): outputs and exports in a database.

`DefinitionsStore.open(url)` migrates the database if needed and gives the one object
every caller uses: the code location (`load`), runs and sensors (`output`,
`open_output`: one output, read when it is needed), the command line (`apply_file`,
`dump`) and the HTTP API (`put_output`, `put_export`, `delete_output`, `delete_export`,
`set_credentials`, an export's webhook secret). This module reads; the writes are
`writes.StoreWrites`, mixed in. Pure: no Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, func, select

from exporter_pipeline.delivery.endpoints import refuse_unreachable
from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import DefinitionsFile, parse_definitions
from exporter_pipeline.names import export_job_name
from exporter_pipeline.settings import Settings
from exporter_pipeline.store import crypto, neighbours
from exporter_pipeline.store.apply import OUTPUT, STORE, as_document, holds_definitions, was_seeded
from exporter_pipeline.store.engine import engine_for, snapshot
from exporter_pipeline.store.models import ExportRow, OutputRow, output_body
from exporter_pipeline.store.writes import NameTaken, NotOwned, StoreWrites, jsonable

# Imported from here by the API and the tests.
__all__ = ["STORE", "DefinitionsStore", "NameTaken", "NotOwned", "StoreOutput", "jsonable"]


class StoreOutput(NamedTuple):
    """An output as stored, its credentials by name only."""

    name: str
    tenant: str | None
    type: str
    settings: dict[str, Any]
    secret_names: list[str] | None


_OUTPUT_COLUMNS = (
    OutputRow.name,
    OutputRow.tenant,
    OutputRow.type,
    OutputRow.settings,
    OutputRow.secret_names,
)

# Every export's job is named `export_<its Dagster name>` (names.export_job_name).
EXPORT_JOB_PREFIX = export_job_name("")
# A predicate on tenant names, or the tenants themselves.
Tenants = Callable[[str], bool] | Collection[str]


def tenant_filter(tenants: Tenants | None) -> Callable[[str], bool]:
    if tenants is None:
        return lambda _tenant: True
    if callable(tenants):
        return tenants
    chosen = frozenset(tenants)
    return chosen.__contains__


class DefinitionsStore(StoreWrites):
    def __init__(self, engine: Engine, secret_key: str = "") -> None:
        self.engine = engine
        self._secret_key = secret_key

    def __repr__(self) -> str:  # never the URL's password nor the key
        return f"DefinitionsStore({self.engine.url.render_as_string(hide_password=True)})"

    @classmethod
    def open(cls, url: str, secret_key: str = "") -> DefinitionsStore:
        return cls(engine_for(url), secret_key)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> DefinitionsStore:
        settings = settings or Settings.from_env()
        return cls.open(settings.database_url, settings.secret_key)

    # --- reading

    def is_empty(self) -> bool:
        with self.engine.connect() as connection:
            return not holds_definitions(connection)

    def was_seeded(self) -> bool:
        """Whether definitions ever reached the store (then it is never seeded again)."""
        with self.engine.connect() as connection:
            return was_seeded(connection)

    def load(self, tenants: Tenants | None = None, now: datetime | None = None) -> DefinitionsFile:
        """Every output and export (of `tenants` only, when given; the operator's outputs
        always) validated as a file is, leniently: a bad entry is left out and listed in
        `rejected`. Two queries, then one pass of the pydantic models."""
        return parse_definitions(self.document(tenants), STORE, now, lenient=True)

    def load_named(self, name: str, now: datetime | None = None) -> DefinitionsFile:
        """Export `name` alone, judged as `load` judges it: against the entries its rules
        involve, found by query (`neighbours.py`), never the whole store. Loaded, it is
        in `exports` with its output; refused, in `rejected` with the messages `load`
        gives it; neither when there is no such export."""
        with snapshot(self.engine) as connection:
            return neighbours.load_exports(connection, ExportRow.name == name, now)

    def load_job(self, job: str, now: datetime | None = None) -> DefinitionsFile:
        """The exports whose Dagster job is `job` (`export_<name>`, `-` as `_`), as
        `load_named` judges them: at most one of them loads."""
        if not job.startswith(EXPORT_JOB_PREFIX):
            return DefinitionsFile(path=STORE, outputs={}, exports=[])
        where = ExportRow.dagster_name == job.removeprefix(EXPORT_JOB_PREFIX)
        with snapshot(self.engine) as connection:
            return neighbours.load_exports(connection, where, now)

    def load_around(self, output: str, path: str, now: datetime | None = None) -> DefinitionsFile:
        """The exports writing at, inside or around `path` of output `output` (on it or
        on any output naming the same place), as `load` judges them, with the outputs
        they use and `output` itself: what a task's checks need (`neighbours.py`)."""
        with snapshot(self.engine) as connection:
            return neighbours.load_around(connection, output, path, now)

    def document(self, tenants: Tenants | None = None) -> dict[str, Any]:
        """The store as the parsed YAML of a definitions file."""
        keep = tenant_filter(tenants)
        with snapshot(self.engine) as connection:
            output_rows = connection.execute(
                select(
                    OutputRow.name, OutputRow.tenant, OutputRow.type, OutputRow.settings
                ).order_by(OutputRow.id)
            ).all()
            export_rows = connection.execute(
                select(ExportRow.tenant, ExportRow.definition).order_by(ExportRow.id)
            ).all()
        outputs = {
            name: output_body(kind, tenant, settings)
            for name, tenant, kind, settings in output_rows
            if tenant is None or keep(tenant)
        }
        return as_document(outputs, [body for tenant, body in export_rows if keep(tenant)])

    def output(self, name: str) -> Output | None:
        """Output `name` (without its stored credentials), or None: one row read."""
        with self.engine.connect() as connection:
            row = connection.execute(select(OutputRow).where(OutputRow.name == name)).first()
        if row is None:
            return None
        body = {"type": row.type, "tenant": row.tenant, **row.settings}
        return OUTPUT.validate_python(body)

    def outputs(self) -> dict[str, Output]:
        return dict(self.load().outputs)

    def credential_names(self, name: str) -> list[str]:
        """Which credentials of output `name` are stored (their names, never values)."""
        with self.engine.connect() as connection:
            names = connection.execute(
                select(OutputRow.secret_names).where(OutputRow.name == name)
            ).scalar()
        return list(names or [])

    def output_row(self, name: str) -> StoreOutput | None:
        """Output `name` as stored (credential names, never values), or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(*_OUTPUT_COLUMNS).where(OutputRow.name == name)).first()
        return None if row is None else StoreOutput(*row)

    def output_page(self, tenant: str, offset: int, limit: int) -> tuple[int, list[StoreOutput]]:
        """(how many outputs `tenant` owns, one page of them by name)."""
        mine = OutputRow.tenant == tenant
        with self.engine.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(OutputRow).where(mine)
            ).scalar_one()
            query = select(*_OUTPUT_COLUMNS).where(mine).order_by(OutputRow.name)
            rows = connection.execute(query.offset(offset).limit(limit)).all()
        return total, [StoreOutput(*row) for row in rows]

    def export_definition(self, name: str, tenant: str) -> dict[str, Any] | None:
        """Export `name` as its YAML keys if `tenant` owns it, else None."""
        query = select(ExportRow.definition).where(
            ExportRow.name == name, ExportRow.tenant == tenant
        )
        with self.engine.connect() as connection:
            found: dict[str, Any] | None = connection.execute(query).scalar()
        return found

    def export_page(self, tenant: str, offset: int, limit: int) -> tuple[int, list[Any]]:
        """(how many exports `tenant` has, one page of their definitions by name)."""
        mine = ExportRow.tenant == tenant
        with self.engine.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(ExportRow).where(mine)
            ).scalar_one()
            query = select(ExportRow.definition).where(mine).order_by(ExportRow.name)
            rows = connection.execute(query.offset(offset).limit(limit)).scalars().all()
        return total, list(rows)

    @property
    def stores_credentials(self) -> bool:
        """Whether credentials can be stored: EXPORTER_SECRET_KEY is set."""
        return bool(self._secret_key)

    def open_output(self, name: str, environ: Mapping[str, str] | None = None) -> Destination:
        """The destination of output `name`, its stored credentials decrypted only now and
        handed to the client (a tenant's once its endpoints pass `refuse_unreachable`)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(OutputRow).where(OutputRow.name == name)).first()
        if row is None:
            raise DefinitionError(f"unknown output {name!r} (not in the definitions store)")
        output = OUTPUT.validate_python({"type": row.type, "tenant": row.tenant, **row.settings})
        secrets = crypto.decrypt(self._secret_key, name, row.secrets) if row.secrets else None
        refuse_unreachable(name, row.tenant, row.settings, secrets or {}, environ)
        return output.open(name, environ, secrets)

    def webhook_secret(self, export: str) -> str | None:
        """The webhook signing secret the store holds for `export`, decrypted now (only
        that export's), or None; a PermanentDestinationError naming the export when
        EXPORTER_SECRET_KEY is missing or is not the key it was stored with."""
        query = select(ExportRow.webhook_secret).where(ExportRow.name == export)
        with self.engine.connect() as connection:
            token = connection.execute(query).scalar()
        return crypto.decrypt_webhook_secret(self._secret_key, export, token) if token else None

    def has_webhook_secret(self, export: str) -> bool:
        """Whether the store holds a webhook secret for `export` (nothing is decrypted)."""
        query = select(ExportRow.webhook_secret.is_not(None)).where(ExportRow.name == export)
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar())
