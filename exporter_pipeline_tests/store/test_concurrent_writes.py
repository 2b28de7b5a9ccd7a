"""Two writers of the store at once, on SQLite (a file of the test's own) and on a
throwaway PostgreSQL cluster (the `postgres` fixture): two tenants' exports put at one
place of the operator's output, each allowed alone, from two threads whose checks are
held until both have read the store (or a few seconds have passed). Exactly one is
stored; the other is refused with the rule's own message."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.store.apply import Applier
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import Postgres
from exporter_pipeline_tests.store.conftest import export

# Long enough for the other writer to read the store too, when nothing keeps it waiting.
HOLD_SECONDS = 2.0
OVERLAP = re.compile(
    r"^definitions store: export '(\w+)' \(/exports/1/output\): shared:x of export '\1' "
    r"\(tenant '(\w+)'\) overlaps shared:x of export '(\w+)' \(tenant '(\w+)', /exports/0\); "
    r"exports of different tenants may not share an output location$"
)


def hold_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check waits after the store was read until the other writer has read it too:
    what two writers at the same moment would do, every time."""
    both_read = threading.Barrier(2)
    check = Applier.check

    def held(self: Applier, *args: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=HOLD_SECONDS)
        check(self, *args)

    monkeypatch.setattr(Applier, "check", held)


def race(store: DefinitionsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put_output("shared", {"type": "local", "path": str(tmp_path / "shared")})
    hold_checks(monkeypatch)
    bodies = [export("acme_x", "acme", "shared", "x"), export("globex_x", "globex", "shared", "x")]
    outcomes: dict[str, BaseException | None] = {}

    def put(body: dict[str, Any]) -> None:
        try:
            store.put_export(body)
            outcomes[body["name"]] = None
        except BaseException as error:  # the outcome is the test's to judge
            outcomes[body["name"]] = error

    writers = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    stored = [e["name"] for e in store.document()["exports"]]
    assert len(stored) == 1, f"both stored: {outcomes}"
    [winner] = stored
    [(loser, error)] = [(name, e) for name, e in outcomes.items() if e is not None]
    assert isinstance(error, DefinitionError), repr(error)
    found = OVERLAP.match(str(error))
    assert found is not None, str(error)
    # The store as it would be lists the new export first: the stored one is named as
    # overlapping it, as when the two are put one after the other.
    assert (found[1], found[3]) == (winner, loser)
    assert {found[2], found[4]} == {"acme", "globex"}


def test_two_writers_at_once_on_sqlite(
    store: DefinitionsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    race(store, tmp_path, monkeypatch)


def test_two_writers_at_once_on_postgresql(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database(f"store_{uuid.uuid4().hex[:12]}")
    race(DefinitionsStore.open(url), tmp_path, monkeypatch)
