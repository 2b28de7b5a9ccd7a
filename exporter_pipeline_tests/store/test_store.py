"""The definitions store on SQLite (a file of the test's own): apply, dump, prune,
ownership across files, the lenient load and its tenant filter. No server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import load_definitions_file
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.store.conftest import export, two_tenants, write

REPO = Path(__file__).resolve().parents[2]


def counts(changes: object) -> str:
    return changes.summary()  # type: ignore[attr-defined, no-any-return]


def test_round_trip_of_the_repository_file(store: DefinitionsStore, tmp_path: Path) -> None:
    source = REPO / "exports.yaml"
    first = store.apply_file(source)
    assert counts(first) == (
        "outputs: 1 created, 0 updated, 0 unchanged, 0 removed; "
        "exports: 9 created, 0 updated, 0 unchanged, 0 removed"
    )
    again = store.apply_file(source)
    assert not again.changed and counts(again).endswith(": no change")
    dumped = write_text(tmp_path / "dump.yaml", dump(store))
    # What dump writes is a valid file, and the same definitions as the source.
    assert load_definitions_file(dumped, missing_ok=False).model_dump(exclude={"path"}) == (
        load_definitions_file(source, missing_ok=False).model_dump(exclude={"path"})
    )
    assert not store.apply_file(dumped, prune=True).changed
    assert dump(store) == dumped.read_text()


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_apply_updates_only_what_changed_and_prune_removes_the_rest(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    store.apply_file(write(tmp_path / "a.yaml", document))
    document["exports"][1]["format"] = "parquet"
    del document["exports"][2]
    del document["outputs"]["acme_s3"]["region"]
    changed = store.apply_file(write(tmp_path / "b.yaml", document))
    assert counts(changed) == (
        "outputs: 0 created, 1 updated, 1 unchanged, 0 removed; "
        "exports: 0 created, 1 updated, 1 unchanged, 0 removed"
    )
    # Without --prune, globex_local stays; with it, it goes.
    assert [e.name for e in store.load().exports] == ["acme_raw", "acme_local", "globex_local"]
    pruned = store.apply_file(write(tmp_path / "b.yaml", document), prune=True)
    assert counts(pruned) == (
        "outputs: 0 created, 0 updated, 2 unchanged, 0 removed; "
        "exports: 0 created, 0 updated, 2 unchanged, 1 removed"
    )
    document["exports"] = document["exports"][1:]
    del document["outputs"]["acme_s3"]
    pruned = store.apply_file(write(tmp_path / "c.yaml", document), prune=True)
    assert (pruned.outputs.removed, pruned.exports.removed) == (1, 1)
    assert set(store.load().outputs) == {"local"}


def test_an_output_in_use_is_not_removed(store: DefinitionsStore, tmp_path: Path) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    with pytest.raises(DefinitionError) as raised:
        store.delete_output("local")
    assert str(raised.value) == (
        "output 'local' is still used by export 'acme_local', 'globex_local'; "
        "remove those exports or give them another output first"
    )
    assert store.delete_export("acme_local") and store.delete_export("globex_local")
    assert store.delete_output("local")
    assert not store.delete_output("local")


def test_an_export_may_not_use_another_tenants_output(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    document = two_tenants(tmp_path / "out")
    document["exports"].append(export("globex_s3", "globex", "acme_s3", "globex"))
    path = write(tmp_path / "exports.yaml", document)
    with pytest.raises(DefinitionError) as raised:
        store.apply_file(path)
    assert str(raised.value) == (
        f"{path}: export 'globex_s3' (/exports/3/output/name): output 'acme_s3' belongs to "
        "tenant 'acme'; an export of tenant 'globex' may not use it"
    )
    assert store.is_empty()  # nothing of a refused file is stored


def test_a_file_may_not_break_what_another_file_stored(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    """globex's file stored an export on the operator's output `shared`; the operator's
    next file gives `shared` to acme: refused, naming globex's export and the field."""
    shared = {"type": "local", "path": str(tmp_path / "shared")}
    globex = {
        "outputs": {"shared": shared},
        "exports": [export("globex_x", "globex", "shared", "x")],
    }
    store.apply_file(write(tmp_path / "globex.yaml", globex))
    operator = write(tmp_path / "op.yaml", {"outputs": {"shared": {**shared, "tenant": "acme"}}})
    with pytest.raises(DefinitionError) as raised:
        store.apply_file(operator)
    assert str(raised.value) == (
        f"{operator} with the store: export 'globex_x' (/exports/0/output/name): output "
        "'shared' belongs to tenant 'acme'; an export of tenant 'globex' may not use it"
    )
    assert store.output("shared").tenant is None  # type: ignore[union-attr]


def test_single_entries_through_the_store_api(store: DefinitionsStore, tmp_path: Path) -> None:
    """What the HTTP API will do: one output, one export, replaced, then removed."""
    store.put_output("acme_out", {"type": "local", "tenant": "acme", "path": str(tmp_path)})
    created = store.put_export(export("acme_a", "acme", "acme_out", "a"))
    assert created.exports.created == 1
    assert store.put_export(export("acme_a", "acme", "acme_out", "b")).exports.updated == 1
    with pytest.raises(DefinitionError, match=r"export 'globex_a' .*belongs to tenant 'acme'"):
        store.put_export(export("globex_a", "globex", "acme_out", "g"))
    with pytest.raises(DefinitionError, match=r"unknown output 'nowhere'"):
        store.put_export(export("acme_b", "acme", "nowhere", "b"))
    assert [e.output.path for e in store.load().exports] == ["b"]
    assert store.delete_export("acme_a") and not store.delete_export("acme_a")


def test_load_filters_tenants_and_keeps_the_operators_outputs(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    only_globex = store.load(tenants={"globex"})
    assert [e.name for e in only_globex.exports] == ["globex_local"]
    assert set(only_globex.outputs) == {"local"}
    by_predicate = store.load(tenants=lambda tenant: tenant.startswith("a"))
    assert [e.name for e in by_predicate.exports] == ["acme_raw", "acme_local"]
    assert set(by_predicate.outputs) == {"local", "acme_s3"}


def test_a_bad_stored_export_is_left_out_and_reported(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    with store.session() as session, session.begin():
        from exporter_pipeline.store.models import ExportRow

        row = session.query(ExportRow).filter_by(name="acme_local").one()
        row.definition = {**row.definition, "cadence": "monthly"}
    loaded = store.load()
    assert [e.name for e in loaded.exports] == ["acme_raw", "globex_local"]
    [rejected] = loaded.rejected
    assert rejected.name == "acme_local"
    assert rejected.problems[0].startswith(
        "definitions store: export 'acme_local' (/exports/1/cadence): "
    )


def test_dump_of_one_tenant_holds_the_outputs_its_exports_use(
    store: DefinitionsStore, tmp_path: Path
) -> None:
    store.apply_file(write(tmp_path / "a.yaml", two_tenants(tmp_path / "out")))
    document = yaml.safe_load(dump(store, "globex"))
    assert [e["name"] for e in document["exports"]] == ["globex_local"]
    assert set(document["outputs"]) == {"local"}
    assert yaml.safe_load(dump(store, "nobody")) == {"outputs": {}, "exports": []}


def test_five_thousand_exports_load_in_one_pass(store: DefinitionsStore, tmp_path: Path) -> None:
    """1,250 tenants x 4 exports, each tenant with its own output: one query a table, then
    the models; the load stays well within the code location's budget."""
    outputs = {
        f"t{t}": {"type": "local", "tenant": f"t{t}", "path": str(tmp_path / f"t{t}")}
        for t in range(1250)
    }
    exports = [
        export(f"t{t}_e{e}", f"t{t}", f"t{t}", f"e{e}") for t in range(1250) for e in range(4)
    ]
    began = time.perf_counter()
    store.apply_file(write(tmp_path / "big.yaml", {"outputs": outputs, "exports": exports}))
    applied = time.perf_counter() - began
    began = time.perf_counter()
    loaded = store.load()
    took = time.perf_counter() - began
    assert len(loaded.exports) == 5000 and not loaded.rejected
    shard = store.load(tenants={f"t{t}" for t in range(0, 1250, 8)})
    assert len(shard.exports) == 4 * 157
    assert took < 5.0, f"loading 5,000 exports took {took:.1f} s (apply {applied:.1f} s)"
