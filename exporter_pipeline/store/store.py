"""The definitions store (DESIGN.md, Definitions store): outputs and exports in a database.

`DefinitionsStore.open(url)` migrates the database if needed and gives the one object
every caller uses: the code location (`load`), runs and sensors (`output`,
`open_output`: one output, read when it is needed), the command line (`apply_file`,
`dump`) and the HTTP API (`put_output`, `put_export`, `delete_output`, `delete_export`,
`set_credentials`, an export's webhook secret). Pure: no Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from exporter_pipeline.delivery.endpoints import refuse_unreachable
from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import (
    DefinitionsFile,
    parse_definitions,
    read_definitions_document,
)
from exporter_pipeline.settings import Settings
from exporter_pipeline.store import crypto
from exporter_pipeline.store.apply import Applier, Changes, as_document
from exporter_pipeline.store.engine import engine_for
from exporter_pipeline.store.models import ExportRow, OutputRow


class NameTaken(DefinitionError):
    """A name to create is already used, by anyone (names are global)."""


class NotOwned(DefinitionError):
    """No such definition of that tenant: missing and another tenant's alike."""


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


# Where the store's problems say they are (in place of a file name).
STORE = Path("definitions store")
_OUTPUT: TypeAdapter[Output] = TypeAdapter(Output)
# A predicate on tenant names, or the tenants themselves.
Tenants = Callable[[str], bool] | Collection[str]


def tenant_filter(tenants: Tenants | None) -> Callable[[str], bool]:
    if tenants is None:
        return lambda _tenant: True
    if callable(tenants):
        return tenants
    chosen = frozenset(tenants)
    return chosen.__contains__


def jsonable(value: Any) -> Any:
    """YAML's values as JSON's (dates as ISO 8601 text, which the models read back)."""
    return to_jsonable_python(value)


class DefinitionsStore:
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

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- reading

    def is_empty(self) -> bool:
        with self.engine.connect() as connection:
            return not connection.execute(
                select(exists(select(OutputRow.id)) | exists(select(ExportRow.id)))
            ).scalar()

    def load(self, tenants: Tenants | None = None, now: datetime | None = None) -> DefinitionsFile:
        """Every output and export (of `tenants` only, when given; the operator's outputs
        always) validated as a file is, leniently: a bad entry is left out and listed in
        `rejected`. Two queries, then one pass of the pydantic models."""
        return parse_definitions(self.document(tenants), STORE, now, lenient=True)

    def load_named(self, wanted: Callable[[str], bool]) -> DefinitionsFile:
        """Only the exports whose name `wanted` accepts, with the outputs they use,
        validated as `load` validates them: what a run worker needs of 5,000 exports."""
        document = self.document()
        exports = [e for e in document["exports"] if wanted(str(e.get("name")))]
        used = {str((e.get("output") or {}).get("name")) for e in exports}
        outputs = {name: o for name, o in document["outputs"].items() if name in used}
        return parse_definitions(as_document(outputs, exports), STORE, lenient=True)

    def document(self, tenants: Tenants | None = None) -> dict[str, Any]:
        """The store as the parsed YAML of a definitions file."""
        keep = tenant_filter(tenants)
        with self.engine.connect() as connection:
            output_rows = connection.execute(
                select(OutputRow.name, OutputRow.tenant, OutputRow.type, OutputRow.settings)
            ).all()
            export_rows = connection.execute(
                select(ExportRow.tenant, ExportRow.definition).order_by(ExportRow.id)
            ).all()
        outputs = {
            name: {"type": kind, **({} if tenant is None else {"tenant": tenant}), **settings}
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
        return _OUTPUT.validate_python(body)

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
        output = _OUTPUT.validate_python({"type": row.type, "tenant": row.tenant, **row.settings})
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

    # --- changing

    def _apply(
        self,
        outputs: Mapping[str, Any],
        exports: list[dict[str, Any]],
        *,
        prune: bool,
        where: Path,
        now: datetime | None = None,
        guard: Callable[[Applier], None] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        webhook_secrets: Mapping[str, str] | None = None,
    ) -> Changes:
        """One change in one transaction: `guard` may refuse it after reading the store,
        `secrets` (by output name) and `webhook_secrets` (by export name) are stored
        with it, encrypted."""
        outputs, exports = jsonable(dict(outputs)), jsonable(exports)
        with self.session() as session, session.begin():
            applier = Applier(session)
            if guard is not None:
                guard(applier)
            applier.check(outputs, exports, prune, where, now)
            changes = applier.apply(outputs, exports, prune)
            for name, values in (secrets or {}).items():
                self._store_secrets(applier.outputs[name], values)
            for name, secret in (webhook_secrets or {}).items():
                token = crypto.encrypt_webhook_secret(self._secret_key, name, secret)
                applier.exports[name].webhook_secret = token
            return changes

    def apply_file(
        self, path: Path, *, prune: bool = False, now: datetime | None = None
    ) -> Changes:
        """Upsert every output and export of a definitions file, validated exactly as
        `validate` does (a DefinitionError listing every problem), in one transaction;
        `prune` also removes what the file does not hold."""
        _exists, document = read_definitions_document(path, missing_ok=False)
        parse_definitions(document, path, now)
        document = document or {}
        return self._apply(
            document.get("outputs") or {},
            list(document.get("exports") or []),
            prune=prune,
            where=Path(f"{path} with the store"),
            now=now,
        )

    def seed(self, document: Any, loaded: DefinitionsFile) -> Changes:
        """Store what a lenient load of a file kept (the first load of an empty store)."""
        document = document or {}
        left_out = {r.index for r in loaded.rejected}
        exports = [e for i, e in enumerate(document.get("exports") or []) if i not in left_out]
        outputs = {n: b for n, b in (document.get("outputs") or {}).items() if n in loaded.outputs}
        with self.session() as session, session.begin():
            return Applier(session).apply(jsonable(outputs), jsonable(exports), prune=False)

    def put_output(
        self, name: str, body: Mapping[str, Any], secrets: Mapping[str, str] | None = None
    ) -> Changes:
        """Create or replace one output (its YAML keys, `tenant` included); `secrets`, when
        given, replaces its stored credentials (`{}` removes them)."""
        return self._apply(
            {name: dict(body)},
            [],
            prune=False,
            where=STORE,
            secrets=None if secrets is None else {name: secrets},
        )

    def create_output(
        self, name: str, body: Mapping[str, Any], secrets: Mapping[str, str] | None = None
    ) -> Changes:
        """Create output `name` with its credentials, in one transaction; NameTaken when the
        name is used by anyone."""
        return self._apply(
            {name: dict(body)},
            [],
            prune=False,
            where=STORE,
            guard=lambda applier: _new_name(name in applier.outputs, "an output", name),
            secrets={name: secrets} if secrets else None,
        )

    def put_export(
        self,
        body: Mapping[str, Any],
        webhook_secret: str | None = None,
        guard: Callable[[Applier], None] | None = None,
    ) -> Changes:
        """Create or replace one export (its YAML keys; its output must be stored) and,
        when given, the secret of its webhook; `guard` may refuse it (see `_apply`)."""
        secrets = {str(body["name"]): webhook_secret} if webhook_secret else None
        return self._apply(
            {}, [dict(body)], prune=False, where=STORE, guard=guard, webhook_secrets=secrets
        )

    def create_export(self, body: Mapping[str, Any], webhook_secret: str | None = None) -> Changes:
        """Create one export; NameTaken when its name is used by anyone, checked in the
        transaction that writes it (a create never takes over another's export)."""
        name = str(body["name"])
        return self.put_export(
            body,
            webhook_secret,
            lambda applier: _new_name(name in applier.exports, "an export", name),
        )

    def replace_export(self, body: Mapping[str, Any], webhook_secret: str | None = None) -> Changes:
        """Replace one export of the body's tenant; NotOwned when that tenant has none of
        that name. Its stored webhook secret stays unless `webhook_secret` replaces it
        (or the new definition's webhook no longer has `secret_stored`)."""
        name, tenant = str(body["name"]), str(body["tenant"])

        def owned(applier: Applier) -> None:
            row = applier.exports.get(name)
            if row is None or row.tenant != tenant:
                raise NotOwned(f"no export {name!r}")

        return self.put_export(body, webhook_secret, owned)

    def delete_export(self, name: str, owner: str | None = None) -> bool:
        """Remove export `name` (only if `owner` owns it, when given)."""
        with self.session() as session, session.begin():
            row = session.scalars(select(ExportRow).where(ExportRow.name == name)).first()
            if row is None or (owner is not None and row.tenant != owner):
                return False
            session.delete(row)
            return True

    def delete_output(self, name: str, owner: str | None = None) -> bool:
        """Remove output `name` (only if `owner` owns it, when given); a DefinitionError
        while an export uses it."""
        with self.session() as session, session.begin():
            applier = Applier(session)
            row = applier.outputs.get(name)
            if row is None or (owner is not None and row.tenant != owner):
                return False
            applier.remove_outputs({name})
            return True

    def set_credentials(self, name: str, secrets: Mapping[str, str]) -> None:
        """Store the credentials of output `name` encrypted with EXPORTER_SECRET_KEY.
        Names are the output's `*_env` fields without the suffix (`secret_access_key`)."""
        with self.session() as session, session.begin():
            row = session.scalars(select(OutputRow).where(OutputRow.name == name)).first()
            if row is None:
                raise DefinitionError(f"unknown output {name!r} (not in the definitions store)")
            self._store_secrets(row, secrets)

    def _store_secrets(self, row: OutputRow, secrets: Mapping[str, str]) -> None:
        allowed = type(_OUTPUT.validate_python(row.body())).credentials()
        unknown = sorted(set(secrets) - set(allowed))
        if unknown:
            raise DefinitionError(
                f"output {row.name!r} ({row.type}) has no credential {', '.join(unknown)} "
                f"(choose {', '.join(allowed) or 'none'})"
            )
        values = {k: v for k, v in secrets.items() if v}
        row.secrets = crypto.encrypt(self._secret_key, row.name, values) if values else None
        row.secret_names = sorted(values) or None


def _new_name(taken: bool, what: str, name: str) -> None:
    # One message whoever holds the name: it tells nothing of its owner.
    if taken:
        raise NameTaken(f"{what} named {name!r} already exists; choose another name")
