"""One export, or the exports around one place, validated as the whole store's load
validates them, reading only the entries their rules involve: what a run worker and an
API request need of 5,000 exports.

The rules across entries (`exports.definitions_file`) judge an entry against the entries
before it (the store's order: by id). An export is refused when an earlier export has
its Dagster job name (`a-b` and `a_b`), when an earlier export of another tenant writes
at, inside or around its location, or when its output is refused (an earlier output of
the same Dagster name). So an export is judged together with, found by query:

- the earlier exports of its Dagster name (`exports.dagster_name`, indexed);
- the earlier exports of other tenants whose location holds it or is held by it: on the
  outputs whose place (`places.py`) is its location, above it or below it, at the paths
  above or below the rest of its location (`exports.output_path`);
- the outputs all of those use, with the outputs of the same Dagster names.

Each lookup is an index's: equal keys, or keys that start with a location (a range on
SQLite, `LIKE 'a/b/%'` over a `text_pattern_ops` index on PostgreSQL). `parse_definitions`
validates what was found; when it refuses a target, again with their positions in the
whole store (counted by the database), so a refused export gets the very messages the
whole load gives it. Pure: no Dagster import.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Connection, Row, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.exports.definitions_file import DefinitionsFile, parse_definitions
from exporter_pipeline.exports.ownership import output_root, segments
from exporter_pipeline.names import dagster_name
from exporter_pipeline.store.apply import OUTPUT, STORE, as_document
from exporter_pipeline.store.models import ExportRow, OutputRow, output_body
from exporter_pipeline.store.places import PathLookup, export_path_key, lookup, paths_around

_EXPORT_COLUMNS = (
    ExportRow.id,
    ExportRow.name,
    ExportRow.tenant,
    ExportRow.output_name,
    ExportRow.definition,
)
_OUTPUT_COLUMNS = (
    OutputRow.id,
    OutputRow.name,
    OutputRow.tenant,
    OutputRow.type,
    OutputRow.settings,
)
# Conditions (or names) per query: well within every database's limit of parameters.
CHUNK = 200
# More targets than this (a task at the root of a busy bucket): the whole store is read
# once instead of each target's neighbours (two queries a target, at a stranger's will).
WHOLE_STORE_ABOVE = 100


def _body(output: Row[Any]) -> dict[str, Any]:
    return output_body(output.type, output.tenant, output.settings)


def _parsed(output: Row[Any] | None) -> Output | None:
    if output is None:
        return None
    try:
        return OUTPUT.validate_python(_body(output))
    except ValidationError:
        return None  # refused by the load too: nothing is placed on it


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]


def _outputs_named(connection: Connection, names: Collection[str]) -> dict[str, Row[Any]]:
    """Outputs `names`, with every output of the same Dagster names (which decide
    whether the load keeps them)."""
    found: dict[str, Row[Any]] = {}
    for part in _chunks(sorted(names)):
        same = {dagster_name(name) for name in part}
        query = select(*_OUTPUT_COLUMNS).where(
            or_(OutputRow.name.in_(part), OutputRow.dagster_name.in_(same))
        )
        found.update((row.name, row) for row in connection.execute(query))
    return found


def _below(column: InstrumentedAttribute[Any], key: str, dialect: str) -> ColumnElement[bool]:
    """Keys that start with `key` and `/`, as an index finds them."""
    prefix = key + "/"
    if dialect == "sqlite":  # text compares bytewise: every such key is in [a/, a0)
        return and_(column >= prefix, column < key + chr(ord("/") + 1))
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%")


def _paths_on(output: str, paths: PathLookup, dialect: str) -> ColumnElement[bool]:
    on = ExportRow.output_name == output
    if paths.every:
        return on
    below = _below(ExportRow.output_path, paths.below, dialect)
    return and_(on, or_(ExportRow.output_path.in_(paths.keys), below))


def exports_around(
    connection: Connection,
    location: Sequence[str],
    before: int | None = None,
    other_than: str | None = None,
) -> list[Row[Any]]:
    """The stored exports whose location holds `location` or is held by it (before id
    `before`, of tenants other than `other_than`, when given), by store order."""
    places, dialect = lookup(location, os.getcwd()), connection.dialect.name
    near = or_(
        OutputRow.place.in_(places.keys),
        *(_below(OutputRow.place, place, dialect) for place in places.below),
        OutputRow.place.is_(None),
    )
    conditions = []
    for output in connection.execute(select(*_OUTPUT_COLUMNS).where(near)):
        parsed = _parsed(output)
        paths = None if parsed is None else paths_around(output_root(parsed), location)
        if paths is not None:
            conditions.append(_paths_on(output.name, paths, dialect))
    rows: list[Row[Any]] = []
    for part in _chunks(conditions):
        query = select(*_EXPORT_COLUMNS).where(or_(*part))
        if before is not None:
            query = query.where(ExportRow.id < before)
        if other_than is not None:
            query = query.where(ExportRow.tenant != other_than)
        rows += connection.execute(query)
    return sorted(rows, key=lambda row: row.id)


def _same_job_before(connection: Connection, targets: Sequence[Row[Any]]) -> list[Row[Any]]:
    """Exports stored before a target whose Dagster name is the target's."""
    last: dict[str, int] = {}
    for target in targets:
        same = dagster_name(target.name)
        last[same] = max(target.id, last.get(same, 0))
    rows: list[Row[Any]] = []
    for part in _chunks(sorted(last)):
        query = select(*_EXPORT_COLUMNS, ExportRow.dagster_name).where(
            ExportRow.dagster_name.in_(part)
        )
        rows += [r for r in connection.execute(query) if r.id < last[r.dagster_name]]
    return rows


def _positions(connection: Connection, ids: Sequence[int]) -> list[int]:
    """Where each export of `ids` is in the store's order (what the whole load numbers)."""
    earlier = aliased(ExportRow)
    count = select(func.count()).select_from(earlier).where(earlier.id < ExportRow.id)
    found: dict[int, int] = {}
    for part in _chunks(ids):
        query = select(ExportRow.id, count.scalar_subquery()).where(ExportRow.id.in_(part))
        found.update((row[0], row[1]) for row in connection.execute(query))
    return [found[i] for i in ids]


def _location(export: Row[Any], output: Output | None) -> tuple[str, ...] | None:
    if output is None:
        return None
    return (*output_root(output), *segments(export_path_key(export.definition)))


def _gathered(
    connection: Connection, targets: Sequence[Row[Any]], also: Collection[str]
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """(the targets and the exports their rules involve, the outputs all of those and
    `also` use with the outputs of the same Dagster names), each in store order; above
    `WHOLE_STORE_ABOVE` targets, every export and output."""
    if len(targets) > WHOLE_STORE_ABOVE:
        every_export = select(*_EXPORT_COLUMNS).order_by(ExportRow.id)
        every_output = select(*_OUTPUT_COLUMNS).order_by(OutputRow.id)
        return [*connection.execute(every_export)], [*connection.execute(every_output)]
    rows = {row.id: row for row in targets}
    outputs = _outputs_named(connection, {t.output_name for t in targets} | set(also))
    for row in _same_job_before(connection, targets):
        rows.setdefault(row.id, row)
    for target in targets:
        location = _location(target, _parsed(outputs.get(target.output_name)))
        if location is not None:
            for row in exports_around(connection, location, target.id, target.tenant):
                rows.setdefault(row.id, row)
    missing = {row.output_name for row in rows.values()} - set(outputs)
    outputs.update(_outputs_named(connection, missing))
    by_id = sorted(rows.values(), key=lambda row: row.id)
    return by_id, sorted(outputs.values(), key=lambda row: row.id)


def judged(
    connection: Connection,
    targets: Sequence[Row[Any]],
    also: Collection[str] = (),
    now: datetime | None = None,
) -> DefinitionsFile:
    """`targets` (rows of `_EXPORT_COLUMNS`) as the whole load judges them: those it loads
    in `exports` with their outputs and outputs `also`, if it keeps them; the others in
    `rejected`, with its messages."""
    exports, outputs = _gathered(connection, targets, also)
    document = as_document(
        {row.name: _body(row) for row in outputs}, [row.definition for row in exports]
    )
    names = {target.name for target in targets}
    positions = list(range(len(exports)))
    loaded = parse_definitions(document, STORE, now, lenient=True, positions=positions)
    mine = {at for at, row in zip(positions, exports, strict=True) if row.name in names}
    whole = len(targets) > WHOLE_STORE_ABOVE  # its positions are the store's already
    if not whole and any(rejected.index in mine for rejected in loaded.rejected):
        # Its messages point into the whole store: validated again at its positions there.
        positions = _positions(connection, [row.id for row in exports])
        loaded = parse_definitions(document, STORE, now, lenient=True, positions=positions)
        mine = {at for at, row in zip(positions, exports, strict=True) if row.name in names}
    kept = [export for export in loaded.exports if export.name in names]
    used = {export.output.name for export in kept} | set(also)
    return loaded.model_copy(
        update={
            "exports": kept,
            "outputs": {name: o for name, o in loaded.outputs.items() if name in used},
            "rejected": [r for r in loaded.rejected if r.index in mine],
        }
    )


def load_exports(
    connection: Connection, where: ColumnElement[bool], now: datetime | None = None
) -> DefinitionsFile:
    """The exports `where` selects, judged as the whole load judges them (`judged`)."""
    query = select(*_EXPORT_COLUMNS).where(where).order_by(ExportRow.id)
    return judged(connection, connection.execute(query).all(), now=now)


def load_around(
    connection: Connection, output: str, path: str, now: datetime | None = None
) -> DefinitionsFile:
    """The exports that write at, inside or around `path` of output `output` (on it, or
    on any output naming the same place), judged as the whole load judges them, with
    the outputs they use and `output` itself (when the load keeps it)."""
    named = _parsed(_outputs_named(connection, {output}).get(output))
    if named is None:
        return judged(connection, [], {output}, now)
    location = (*output_root(named), *segments(path))
    return judged(connection, exports_around(connection, location), {output}, now)
