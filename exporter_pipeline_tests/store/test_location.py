"""The code location reads the store: the first load of a never-seeded store applies
EXPORTER_EXPORTS_FILE (once: not again when emptied by --prune, nor by a second process
loading at the same moment; a database error while seeding is raised); later loads read
the store, not the file; the outputs resource holds no output in its config and reads the
one a run asks for. No server."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.location import load_definitions
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.store.conftest import export, two_tenants, write


def settings_for(path: Path) -> Settings:
    return Settings.from_env({"EXPORTER_EXPORTS_FILE": str(path)})


def test_the_first_load_of_an_empty_store_applies_the_exports_file(
    definitions_store: str, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    path = write(tmp_path / "exports.yaml", document)
    store = DefinitionsStore.open(definitions_store)
    assert store.is_empty()
    first = load_definitions(settings_for(path))
    assert [e.name for e in first.exports] == ["acme_raw", "acme_local", "globex_local"]
    assert not store.is_empty()
    # Later edits of the file do nothing by themselves: `definitions apply` applies them.
    document["exports"].append(export("globex_new", "globex", "local", "new"))
    write(path, document)
    assert [e.name for e in load_definitions(settings_for(path)).exports] == [
        "acme_raw",
        "acme_local",
        "globex_local",
    ]
    assert load_definitions(settings_for(path), tenants={"globex"}).exports[0].name == (
        "globex_local"
    )


def test_a_store_emptied_by_prune_is_not_seeded_again(
    definitions_store: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "exports.yaml", two_tenants(tmp_path / "out"))
    assert len(load_definitions(settings_for(path)).exports) == 3
    store = DefinitionsStore.open(definitions_store)
    store.apply_file(write(tmp_path / "nothing.yaml", {}), prune=True)
    assert store.is_empty()
    assert load_definitions(settings_for(path)).exports == []
    assert store.is_empty() and store.was_seeded()


def test_an_applied_store_is_never_seeded(definitions_store: str, tmp_path: Path) -> None:
    """`definitions apply --prune` of an empty file before the location's first load: the
    operator chose an empty store."""
    store = DefinitionsStore.open(definitions_store)
    store.apply_file(write(tmp_path / "nothing.yaml", {}), prune=True)
    path = write(tmp_path / "exports.yaml", two_tenants(tmp_path / "out"))
    assert load_definitions(settings_for(path)).exports == [] and store.is_empty()


def test_a_database_error_while_seeding_is_raised(definitions_store: str, tmp_path: Path) -> None:
    """Only a store seeded meanwhile is taken as another process's seeding; a real error
    of the database (here a trigger refusing every output) is raised, nothing stored."""
    store = DefinitionsStore.open(definitions_store)
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER no_room BEFORE INSERT ON outputs "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        )
    path = write(tmp_path / "exports.yaml", two_tenants(tmp_path / "out"))
    with pytest.raises(IntegrityError, match="database or disk is full"):
        load_definitions(settings_for(path))
    assert store.is_empty()


def test_two_first_loads_at_once_seed_the_store_once(
    definitions_store: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "exports.yaml", two_tenants(tmp_path / "out"))
    loaded: list[list[str]] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            loaded.append([e.name for e in load_definitions(settings_for(path)).exports])
        except BaseException as error:  # judged below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert loaded == [["acme_raw", "acme_local", "globex_local"]] * 2
    assert len(DefinitionsStore.open(definitions_store).document()["exports"]) == 3


def test_a_missing_exports_file_loads_an_empty_store(tmp_path: Path) -> None:
    loaded = load_definitions(settings_for(tmp_path / "none.yaml"))
    assert loaded.exports == [] and loaded.outputs == {}


def test_outputs_resource_config_holds_no_output(definitions_store: str, tmp_path: Path) -> None:
    document = two_tenants(tmp_path / "out")
    defs = build_definitions(settings_for(write(tmp_path / "exports.yaml", document)))
    resource = (defs.resources or {})["outputs"]
    assert isinstance(resource, OutputsResource)
    # Only the store's address (a SQLite file, no password): the same for 3 or 5,000 outputs.
    assert resource.model_dump() == {"database_url": definitions_store}
    job = defs.resolve_job_def("export_acme_local")
    snapshot = str(job.get_job_snapshot())
    assert "acme-exports" not in snapshot and "ACME_AWS_SECRET" not in snapshot
    # A run reads its one output when it asks for it, as the store has it now.
    assert resource.owned_output("local", "acme").tenant is None
    store = DefinitionsStore.open(definitions_store)
    store.put_output("late", {"type": "local", "tenant": "globex", "path": str(tmp_path)})
    assert resource.output("late").tenant == "globex"
    with pytest.raises(DefinitionError) as raised:
        resource.owned_output("late", "acme")
    assert str(raised.value) == (
        "output 'late' belongs to tenant 'globex'; tenant 'acme' may not use it"
    )
    with pytest.raises(DefinitionError) as raised:
        resource.output("gone")
    assert str(raised.value) == "unknown output 'gone' (not in the definitions store)"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://exporter:hunter2@db.example/exporter",
        "postgresql+psycopg2://exporter@db.example/exporter?password=hunter2",
    ],
)
def test_a_password_in_the_store_url_stays_out_of_the_config(url: str) -> None:
    resource = OutputsResource.of(Settings.from_env({"EXPORTER_DATABASE_URL": url}))
    assert resource.model_dump() == {"database_url": ""}  # read from the environment at run time
    assert "hunter2" not in repr(Settings.from_env({"EXPORTER_DATABASE_URL": url}))


def test_a_loaded_export_runs_against_its_stored_output(tmp_path: Path) -> None:
    defs = build_definitions(settings_for(write(tmp_path / "exports.yaml", two_tenants(tmp_path))))
    dg.Definitions.validate_loadable(defs)
    assert {"export_acme_raw", "export_globex_local"} <= {
        j.name for j in defs.resolve_all_job_defs()
    }
