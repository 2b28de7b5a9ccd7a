"""Changing the definitions store: the writes of `DefinitionsStore` (mixed into it), each
one change in one transaction that holds the store's write lock (`locking.py`: two
writers at once are checked one after the other), checked against the store as it would
be afterwards (`apply.Applier`).

Callers: the command line (`apply_file`), the code location's first load (`seed`) and the
HTTP API (`put_output`, `create_output`, `put_export`, `create_export`,
`replace_export`, `delete_output`, `delete_export`, `set_credentials`). Pure: no Dagster
import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import (
    DefinitionsFile,
    parse_definitions,
    read_definitions_document,
)
from exporter_pipeline.store import crypto
from exporter_pipeline.store.apply import (
    OUTPUT,
    STORE,
    Applier,
    Changes,
    holds_definitions,
    mark_seeded,
    was_seeded,
)
from exporter_pipeline.store.locking import write_session
from exporter_pipeline.store.models import ExportRow, OutputRow


class NameTaken(DefinitionError):
    """A name to create is already used, by anyone (names are global)."""


class NotOwned(DefinitionError):
    """No such definition of that tenant: missing and another tenant's alike."""


def jsonable(value: Any) -> Any:
    """YAML's values as JSON's (dates as ISO 8601 text, which the models read back)."""
    return to_jsonable_python(value)


class StoreWrites:
    """The writes of `DefinitionsStore`: its engine and key are the store's own."""

    engine: Engine
    _secret_key: str

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

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
        with write_session(self.engine) as session:
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

    def seed(self, document: Any, loaded: DefinitionsFile) -> Changes | None:
        """Store what a lenient load of a file kept if the store was never seeded (the
        code location's first load), and record it seeded. None when it was: by another
        process a moment ago (this one waited for its write lock, then saw it), or by
        definitions written before seeding was recorded (recorded now)."""
        document = document or {}
        left_out = {r.index for r in loaded.rejected}
        exports = [e for i, e in enumerate(document.get("exports") or []) if i not in left_out]
        outputs = {n: b for n, b in (document.get("outputs") or {}).items() if n in loaded.outputs}
        with write_session(self.engine) as session:
            if was_seeded(session):
                return None
            if holds_definitions(session):
                mark_seeded(session)
                return None
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
        with write_session(self.engine) as session:
            row = session.scalars(select(ExportRow).where(ExportRow.name == name)).first()
            if row is None or (owner is not None and row.tenant != owner):
                return False
            session.delete(row)
            return True

    def delete_output(self, name: str, owner: str | None = None) -> bool:
        """Remove output `name` (only if `owner` owns it, when given); a DefinitionError
        while an export uses it."""
        with write_session(self.engine) as session:
            applier = Applier(session)
            row = applier.outputs.get(name)
            if row is None or (owner is not None and row.tenant != owner):
                return False
            applier.remove_outputs({name})
            return True

    def set_credentials(self, name: str, secrets: Mapping[str, str]) -> None:
        """Store the credentials of output `name` encrypted with EXPORTER_SECRET_KEY.
        Names are the output's `*_env` fields without the suffix (`secret_access_key`)."""
        with write_session(self.engine) as session:
            row = session.scalars(select(OutputRow).where(OutputRow.name == name)).first()
            if row is None:
                raise DefinitionError(f"unknown output {name!r} (not in the definitions store)")
            self._store_secrets(row, secrets)

    def _store_secrets(self, row: OutputRow, secrets: Mapping[str, str]) -> None:
        allowed = type(OUTPUT.validate_python(row.body())).credentials()
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
