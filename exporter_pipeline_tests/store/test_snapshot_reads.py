"""A read of several queries sees one state of the store, on SQLite and on PostgreSQL
(the `postgres` fixture): an `apply` that moves an export to a new output and removes
the old one, committed between a read's first query and its next, is not seen by the
read at all. PostgreSQL's READ COMMITTED would show each statement the commits before it:
the export, and then no longer its output ("unknown output")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from exporter_pipeline.exports.definitions_file import DefinitionsFile
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import Postgres
from exporter_pipeline_tests.store.conftest import export, write

READS: dict[str, Callable[[DefinitionsStore, Path], DefinitionsFile]] = {
    "load": lambda store, _root: store.load(),
    "load_named": lambda store, _root: store.load_named("acme_x"),
    "load_job": lambda store, _root: store.load_job("export_acme_x"),
    "load_around": lambda store, _root: store.load_around("old", "x"),
}


def read_during_a_move(store: DefinitionsStore, tmp_path: Path, read: str) -> DefinitionsFile:
    """`read`, with an apply that moves `acme_x` from output `old` to `new` (and prunes
    `old`) committed right after the read's first query of the store's tables."""
    first = {"outputs": {"old": {"type": "local", "path": str(tmp_path / "old")}}}
    store.apply_file(
        write(tmp_path / "first.yaml", {**first, "exports": [export("acme_x", "acme", "old", "x")]})
    )
    moved = write(
        tmp_path / "moved.yaml",
        {
            "outputs": {"new": {"type": "local", "path": str(tmp_path / "new")}},
            "exports": [export("acme_x", "acme", "new", "x")],
        },
    )
    fired: list[str] = []

    def move_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not fired and ("FROM exports" in statement or "FROM outputs" in statement):
            fired.append(statement)
            store.apply_file(moved, prune=True)  # another connection, committed now

    event.listen(store.engine, "after_cursor_execute", move_once)
    try:
        loaded = READS[read](store, tmp_path)
    finally:
        event.remove(store.engine, "after_cursor_execute", move_once)
    assert fired, "the read never queried the store"
    return loaded


def check(store: DefinitionsStore, tmp_path: Path, read: str) -> None:
    loaded = read_during_a_move(store, tmp_path, read)
    # The state before the move, whole: the export on its old output, nothing refused.
    assert [(e.name, e.output.name) for e in loaded.exports] == [("acme_x", "old")]
    assert list(loaded.outputs) == ["old"] and loaded.rejected == []
    # The move did land: the next read sees it whole.
    after = store.load()
    assert [(e.name, e.output.name) for e in after.exports] == [("acme_x", "new")]
    assert list(after.outputs) == ["new"]


@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_on_sqlite_sees_a_move_whole_or_not_at_all(
    store: DefinitionsStore, tmp_path: Path, read: str
) -> None:
    check(store, tmp_path, read)


@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_on_postgresql_sees_a_move_whole_or_not_at_all(
    postgres: Postgres, tmp_path: Path, read: str
) -> None:
    store = DefinitionsStore.open(postgres.create_database(f"store_{uuid.uuid4().hex[:12]}"))
    check(store, tmp_path, read)
