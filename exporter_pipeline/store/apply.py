"""Upserting a set of outputs and exports into the store, in one transaction.

What is applied was validated on its own first (a file exactly as `validate` checks it).
Then the store as it would be afterwards is validated as a whole, as the code location
will load it: what the change would break there (an export of another file whose output
now belongs to another tenant, two tenants' exports in one place, two names that become
one Dagster name) refuses the whole change. Problems the store already had before, in
entries the change does not touch, do not block it. Any change records the store as
seeded (`store_state`): the exports file is never applied over it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, exists, select, update
from sqlalchemy.orm import Session

from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import DefinitionsFile, parse_definitions
from exporter_pipeline.names import dagster_name
from exporter_pipeline.store.models import (
    STATE_ROW,
    ExportRow,
    OutputRow,
    StoreStateRow,
    utcnow,
)
from exporter_pipeline.store.places import export_path_key, output_place

# Where the store's problems say they are (in place of a file name).
STORE = Path("definitions store")
# An output's YAML keys read as the output models read them.
OUTPUT: TypeAdapter[Output] = TypeAdapter(Output)


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed"
        )


@dataclass
class Changes:
    outputs: Counts = field(default_factory=Counts)
    exports: Counts = field(default_factory=Counts)

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated or c.removed for c in (self.outputs, self.exports))

    def summary(self) -> str:
        text = f"outputs: {self.outputs}; exports: {self.exports}"
        return text if self.changed else f"{text}: no change"


def split_output(body: Mapping[str, Any]) -> tuple[str | None, str, dict[str, Any]]:
    """(tenant, type, the other keys) of an output's YAML keys."""
    settings = {k: v for k, v in body.items() if k not in ("tenant", "type")}
    return body.get("tenant"), str(body["type"]), settings


def uses_stored_secret(body: Mapping[str, Any]) -> bool:
    """Whether an export's webhook signs with a secret the store holds."""
    hook = (body.get("delivery") or {}).get("webhook") or {}
    return hook.get("secret_stored") is True


def as_document(outputs: Mapping[str, Any], exports: Sequence[Any]) -> dict[str, Any]:
    return {"outputs": dict(outputs), "exports": list(exports)}


def holds_definitions(connection: Connection | Session) -> bool:
    """Whether the store holds any output or export."""
    query = select(exists(select(OutputRow.id)) | exists(select(ExportRow.id)))
    return bool(connection.execute(query).scalar())


def was_seeded(connection: Connection | Session) -> bool:
    """Whether definitions ever reached the store (seeded, applied or written)."""
    query = select(StoreStateRow.seeded_at).where(StoreStateRow.id == STATE_ROW)
    return connection.execute(query).scalar() is not None


def mark_seeded(session: Session) -> None:
    """Record that definitions reached the store (its first time only)."""
    session.execute(
        update(StoreStateRow)
        .where(StoreStateRow.id == STATE_ROW, StoreStateRow.seeded_at.is_(None))
        .values(seeded_at=utcnow())
    )


def _validated(document: dict[str, Any], where: Path, now: datetime | None) -> DefinitionsFile:
    return parse_definitions(document, where, now, lenient=True)


def check_merged(
    before: dict[str, Any],
    after: dict[str, Any],
    touched: int,
    where: Path,
    now: datetime | None,
) -> None:
    """Refuse when the store after the change (its first `touched` exports being the
    changed ones) holds a problem it did not hold before."""
    found = _validated(after, where, now)
    if not found.rejected and not found.rejected_outputs:
        return
    old = _validated(before, where, now)
    old_names = {r.name for r in old.rejected if r.name is not None}
    problems = [p for p in found.rejected_outputs if p not in old.rejected_outputs]
    for rejected in found.rejected:
        if rejected.index < touched or rejected.name not in old_names:
            problems += rejected.problems
    if problems:
        raise DefinitionError("\n".join(problems))


class Applier:
    """One change to the store, inside the caller's session (its transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.outputs = {
            r.name: r for r in session.scalars(select(OutputRow).order_by(OutputRow.id))
        }
        rows = session.scalars(select(ExportRow).order_by(ExportRow.id))
        self.exports = {r.name: r for r in rows}
        self.changes = Changes()

    def document(self) -> dict[str, Any]:
        outputs = {name: row.body() for name, row in self.outputs.items()}
        return as_document(outputs, [row.definition for row in self.exports.values()])

    def check(
        self,
        outputs: Mapping[str, Any],
        exports: Sequence[dict[str, Any]],
        prune: bool,
        where: Path,
        now: datetime | None,
    ) -> None:
        names = {e.get("name") for e in exports}
        kept = {} if prune else {n: r.body() for n, r in self.outputs.items()}
        rest = [] if prune else [r.definition for n, r in self.exports.items() if n not in names]
        after = as_document({**kept, **outputs}, [*exports, *rest])
        check_merged(self.document(), after, len(exports), where, now)

    def upsert_outputs(self, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        counts = self.changes.outputs
        for name, body in outputs.items():
            tenant, kind, settings = split_output(body)
            row = self.outputs.get(name)
            if row is None:
                row = OutputRow(name=name, tenant=tenant, type=kind, settings=settings)
                row.dagster_name = dagster_name(name)
                self.session.add(row)
                self.outputs[name] = row
                counts.created += 1
            elif (row.tenant, row.type, row.settings) != (tenant, kind, settings):
                # Credentials stored for one owner and kind of output never pass to another:
                # an output given to another tenant, or made another type, loses them.
                if (row.tenant, row.type) != (tenant, kind):
                    row.secrets, row.secret_names = None, []
                row.tenant, row.type, row.settings = tenant, kind, settings
                counts.updated += 1
            else:
                counts.unchanged += 1
            row.place = output_place(kind, settings)
        self.session.flush()

    def upsert_exports(self, exports: Sequence[dict[str, Any]]) -> None:
        counts = self.changes.exports
        for body in exports:
            name, tenant, output = body["name"], body["tenant"], body["output"]["name"]
            row = self.exports.get(name)
            if row is None:
                row = ExportRow(name=name, tenant=tenant, output_name=output, definition=body)
                row.dagster_name = dagster_name(name)
                self.session.add(row)
                self.exports[name] = row
                counts.created += 1
            elif (row.tenant, row.output_name, row.definition) != (tenant, output, body):
                # A stored webhook secret stays while the webhook signs with it (so applying
                # a dump, which never holds it, keeps it); it never passes to another tenant.
                if row.tenant != tenant or not uses_stored_secret(body):
                    row.webhook_secret = None
                row.tenant, row.output_name, row.definition = tenant, output, body
                counts.updated += 1
            else:
                counts.unchanged += 1
            row.output_path = export_path_key(body)
        self.session.flush()

    def remove_exports(self, names: set[str]) -> None:
        for name in sorted(names):
            self.session.delete(self.exports.pop(name))
            self.changes.exports.removed += 1
        self.session.flush()

    def remove_outputs(self, names: set[str]) -> None:
        """Remove outputs no export uses; a DefinitionError naming the users otherwise."""
        for name in sorted(names):
            users = sorted(e.name for e in self.exports.values() if e.output_name == name)
            if users:
                listed = ", ".join(repr(u) for u in users)
                raise DefinitionError(
                    f"output {name!r} is still used by export {listed}; "
                    "remove those exports or give them another output first"
                )
            self.session.delete(self.outputs.pop(name))
            self.changes.outputs.removed += 1
        self.session.flush()

    def apply(
        self,
        outputs: Mapping[str, Mapping[str, Any]],
        exports: Sequence[dict[str, Any]],
        prune: bool,
    ) -> Changes:
        self.upsert_outputs(outputs)
        self.upsert_exports(exports)
        if prune:
            names = {e["name"] for e in exports}
            self.remove_exports(set(self.exports) - names)
            self.remove_outputs(set(self.outputs) - set(outputs))
        mark_seeded(self.session)
        return self.changes
