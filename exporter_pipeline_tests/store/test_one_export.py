"""One export judged alone (`load_named`, `load_job`: a run worker's and the API's path)
exactly as the whole store's load judges it.

Entries are stored as they are, without the rules' check (as two writers at once could
store them before the write lock, or an older release): an export the whole load
refuses, for a rule across entries (another tenant's export at, inside or around its
place, through the same output, a differently named output of the same folder or
bucket, or a relative folder; an earlier export of its Dagster job name; its output
refused for an earlier output of its Dagster name), is refused alone with the very same
messages, and a run of it fails saying them. Only its neighbours are read. On SQLite and
on a throwaway PostgreSQL cluster (the `postgres` fixture)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from exporter_pipeline.definitions import build_export_job_alone, build_location
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.ownership import output_root, segments
from exporter_pipeline.settings import Settings
from exporter_pipeline.store import neighbours
from exporter_pipeline.store.places import holds
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import Postgres
from exporter_pipeline_tests.store.conftest import export, store_unchecked


def judged_alike(store: DefinitionsStore, name: str) -> bool:
    """Whether export `name` alone is judged as the whole load judges it; True when it
    loads, False when refused (the same positions, names and messages)."""
    whole = store.load()
    alone = store.load_named(name)
    assert [e.name for e in alone.exports] == [e.name for e in whole.exports if e.name == name]
    assert [e.model_dump() for e in alone.exports] == [
        e.model_dump() for e in whole.exports if e.name == name
    ]
    refused = [r.model_dump() for r in whole.rejected if r.name == name]
    assert [r.model_dump() for r in alone.rejected] == refused
    return not refused


def s3(bucket: str, prefix: str = "") -> dict[str, Any]:
    return {"type": "s3", "bucket": bucket, "prefix": prefix}


def store_places(store: DefinitionsStore, tmp_path: Path) -> None:
    """acme's exports, then other tenants' around them through every kind of place (the
    working directory being `tmp_path`)."""
    folder = str(tmp_path / "shared")
    outputs = {
        "shared": {"type": "local", "path": folder},
        "twin": {"type": "local", "path": folder + "//"},
        "relative": {"type": "local", "path": "./shared"},  # the same folder
        "above": {"type": "local", "path": str(tmp_path)},
        "bucket": s3("exports"),
        "bucket_pre": s3("exports", "acme"),
        "other_bucket": s3("other", "acme"),
    }
    exports = [
        export("acme_x", "acme", "shared", "x"),
        export("acme_s3", "acme", "bucket", "acme/raw"),
        export("acme_odd", "acme", "bucket", "a_b%c"),  # LIKE's wildcards, as text
        export("acme_too", "acme", "shared", "x/y"),  # one tenant may share its places
        export("globex_in", "globex", "twin", "x/y"),  # inside acme_x
        export("globex_around", "globex", "relative", ""),  # around acme_x
        export("globex_above", "globex", "above", "shared"),  # around, from above the root
        export("globex_beside", "globex", "shared", "xy"),  # `x` does not hold `xy`
        export("globex_s3", "globex", "bucket_pre", ""),  # around acme_s3's path
        export("globex_elsewhere", "globex", "other_bucket", "raw"),
        export("globex_odd", "globex", "bucket", "aXb%c/d"),
        export("initech_below", "initech", "bucket", "acme/raw/2026"),  # inside acme_s3
        export("initech_odd", "initech", "bucket", "a_b%c/d"),  # inside acme_odd
    ]
    store_unchecked(store, outputs, exports)


@pytest.fixture
def places(store: DefinitionsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store_places(store, tmp_path)


def check_places(store: DefinitionsStore) -> None:
    loads = {name: judged_alike(store, name) for name in [e.name for e in store.load().exports]}
    refused = [r.name for r in store.load().rejected]
    assert refused == [
        "globex_in",
        "globex_around",
        "globex_above",
        "globex_s3",
        "initech_below",
        "initech_odd",
    ]
    assert all(loads.values())
    assert not any(judged_alike(store, name) for name in refused if name)
    [in_twin] = store.load_named("globex_in").rejected
    assert in_twin.problems == [
        "definitions store: export 'globex_in' (/exports/4/output): twin:x/y of export "
        "'globex_in' (tenant 'globex') overlaps shared:x of export 'acme_x' (tenant 'acme', "
        "/exports/0); exports of different tenants may not share an output location"
    ]


@pytest.mark.usefixtures("places")
def test_an_export_at_another_tenants_place_is_refused_alone_as_by_the_load(
    store: DefinitionsStore,
) -> None:
    check_places(store)


def test_an_export_at_another_tenants_place_on_postgresql(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on PostgreSQL, whose prefix lookups are LIKE patterns (`_` and `%` in a
    path are text there)."""
    monkeypatch.chdir(tmp_path)
    store = DefinitionsStore.open(postgres.create_database(f"store_{uuid.uuid4().hex[:12]}"))
    store_places(store, tmp_path)
    check_places(store)


@pytest.mark.usefixtures("places")
def test_the_exports_around_a_place_are_those_the_whole_load_keeps_there(
    store: DefinitionsStore,
) -> None:
    """What a task's checks read (`load_around`): the exports the whole load keeps whose
    location holds the task's or is held by it, through any output of the same place."""
    whole = store.load()

    def where(output: str, path: str) -> tuple[str, ...]:
        return (*output_root(whole.outputs[output]), *segments(path))

    asked = [
        *[("twin", "x"), ("relative", "x/y/z"), ("above", ""), ("bucket", "acme")],
        *[("bucket_pre", "raw"), ("bucket", "a_b%c"), ("other_bucket", ""), ("bucket", "b")],
    ]
    for output, path in asked:
        around = store.load_around(output, path)
        mine = where(output, path)
        expected = [
            e.name
            for e in whole.exports
            if holds(mine, where(e.output.name, e.output.path))
            or holds(where(e.output.name, e.output.path), mine)
        ]
        assert [e.name for e in around.exports] == expected, (output, path)
        assert output in around.outputs  # the task's own, for its checks
    assert [e.name for e in store.load_around("twin", "x").exports] == ["acme_x", "acme_too"]


def test_an_export_whose_job_an_earlier_export_has_is_refused_alone(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    outputs = {"out": {"type": "local", "path": str(tmp_path)}}
    store_unchecked(
        store, outputs, [export("acme-x", "acme", "out", "a"), export("acme_x", "acme", "out", "b")]
    )
    assert judged_alike(store, "acme-x") and not judged_alike(store, "acme_x")
    by_job = store.load_job("export_acme_x")
    assert [e.name for e in by_job.exports] == ["acme-x"]
    assert [r.problems for r in by_job.rejected] == [
        [
            "definitions store: export 'acme_x' (/exports/1/name): name 'acme_x' and export "
            "'acme-x' (/exports/0) both become the Dagster job 'export_acme_x'; rename one"
        ]
    ]
    assert store.load_job("deliver_export").exports == []


def test_an_export_on_an_output_the_load_refuses_is_refused_alone(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    outputs = {
        "out-a": {"type": "local", "path": str(tmp_path / "a")},
        "out_a": {"type": "local", "path": str(tmp_path / "b")},
    }
    store_unchecked(store, outputs, [export("acme_x", "acme", "out_a", "x")])
    assert not judged_alike(store, "acme_x")
    assert store.load_named("acme_x").rejected[0].problems == [
        "definitions store: export 'acme_x' (/exports/0/output/name): output 'out_a' is not valid"
    ]


@pytest.mark.usefixtures("places")
def test_a_run_of_an_export_the_load_refuses_fails_saying_why(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    """What a run worker asks first: its job, built alone. A run queued before a reload
    that refused its export fails with the load's messages, naming export and field."""
    settings = Settings.from_env({"EXPORTER_EXPORTS_FILE": str(tmp_path / "none.yaml")})
    [refused] = [r for r in store.load().rejected if r.name == "globex_around"]
    with pytest.raises(DefinitionError) as raised:
        build_location(settings).get_job("export_globex_around")
    assert str(raised.value) == "\n".join(refused.problems)
    assert "(/exports/5/output)" in str(raised.value)
    job = build_export_job_alone("export_acme_x", settings)
    assert job is not None and job.name == "export_acme_x"


def test_only_the_exports_neighbours_are_read_and_validated(
    store: DefinitionsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 exports of 500 tenants, each with its own output, beside two tenants' exports
    on the operator's output: an export is validated with its neighbours alone."""
    outputs: dict[str, Any] = {"shared": {"type": "local", "path": str(tmp_path / "shared")}}
    exports = [export("acme_x", "acme", "shared", "x")]
    for t in range(500):
        outputs[f"o{t}"] = {"type": "local", "tenant": f"t{t}", "path": str(tmp_path / f"t{t}")}
        exports += [export(f"t{t}_e{e}", f"t{t}", f"o{t}", f"e{e}") for e in range(4)]
    exports.append(export("globex_x", "globex", "shared", "x/y"))
    store_unchecked(store, outputs, exports)
    validated: list[int] = []
    parse = neighbours.parse_definitions

    def counted(document: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        validated.append(len(document["exports"]))
        return parse(document, *args, **kwargs)

    monkeypatch.setattr(neighbours, "parse_definitions", counted)
    assert not judged_alike(store, "globex_x")  # its one neighbour: acme_x
    assert judged_alike(store, "t250_e1")
    # globex_x with acme_x (refused: again at their positions in the store, for the
    # load's words), then t250_e1 alone.
    assert validated == [2, 2, 1]


def test_a_task_at_a_shared_buckets_root_reads_no_more_than_the_whole_load(
    store: DefinitionsStore,
) -> None:
    """A tenant's own output naming the bucket of the operator's shared output, asked for
    its root: every export of every tenant there is around it. They are judged against
    the whole store, read once, not each against its own neighbours (two queries per
    export: seconds per request at a few thousand exports, at a stranger's will)."""
    outputs = {
        "shared": s3("shared"),
        "mine": {**s3("shared"), "tenant": "evil"},
    }
    exports = [export(f"t{t}_x", f"t{t}", "shared", f"t{t}") for t in range(300)]
    store_unchecked(store, outputs, exports)
    statements: list[str] = []

    def counted(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", counted)
    try:
        around = store.load_around("mine", "")
    finally:
        event.remove(store.engine, "before_cursor_execute", counted)
    whole = store.load()
    assert [e.name for e in around.exports] == [e.name for e in whole.exports]
    assert len(statements) < 20
