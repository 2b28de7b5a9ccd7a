"""`POST /v1/export-tasks` at a path where a definition export writes is a 422 naming
`/path` and the export, against the API served by uvicorn over a SQLite store (refused
before Dagster would be asked, so none listens). The request reads only the exports at,
inside or around its path, never the whole store: `DefinitionsStore.load` fails here."""

from __future__ import annotations

from typing import Any

import pytest

from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.api.test_exports import export, with_output
from exporter_pipeline_tests.api.test_outputs import errors_of
from exporter_pipeline_tests.store.conftest import export as stored_export

TASK = {
    "start_time": "2026-10-01T00:00:00Z",
    "end_time": "2026-10-01T05:00:00Z",
    "output": "acme_files",
}


@pytest.fixture(autouse=True)
def no_whole_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def whole_load(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a task's request loaded every export of the store")

    monkeypatch.setattr(DefinitionsStore, "load", whole_load)


def test_a_task_at_an_exports_path_is_a_422_naming_the_path(defs_api: Api) -> None:
    with with_output(defs_api, "acme", "acme_files") as acme:
        assert acme.post("/v1/exports", json=export()).status_code == 201
        for path in ("daily", "daily/sub", ""):
            answer = acme.post("/v1/export-tasks", json={**TASK, "path": path})
            ((error,),) = [errors_of(answer)]
            assert error["source"] == {"pointer": "/path"}
            assert (error["status"], error["code"]) == ("422", "invalid_field")
            assert error["detail"] == (
                f"path {path!r} of output 'acme_files' meets the files of export "
                "'acme_daily' (output 'acme_files', path 'daily'): a task may not write at, "
                "inside or around an export's path; choose another path"
            )


def test_another_tenants_export_in_the_same_folder_is_found_without_naming_it(
    defs_api: Api, defs_settings: Settings
) -> None:
    """The operator's output `ops` names the folder above acme's own output, and globex
    exports through it into acme's folder: a task of acme there is refused, the export
    not named; a task beside it passes these checks (and meets no Dagster: 503)."""
    store = defs_api.services.store
    store.put_output("ops", {"type": "local", "path": f"{defs_settings.api_local_root}/acme"})
    store.put_export(stored_export("globex_in", "globex", "ops", "exports/daily/shared"))
    with with_output(defs_api, "acme", "acme_files") as acme:
        for path in ("shared/sub", "shared", ""):
            [error] = errors_of(acme.post("/v1/export-tasks", json={**TASK, "path": path}))
            assert (error["source"], error["code"]) == ({"pointer": "/path"}, "invalid_field")
            assert error["detail"] == (
                f"path {path!r} of output 'acme_files' meets the files of an export of another "
                "tenant: a task may not write at, inside or around an export's path; choose "
                "another path"
            )
        beside = acme.post("/v1/export-tasks", json={**TASK, "path": "sharedx"})
        assert beside.status_code == 503, beside.text
