"""`POST /v1/export-tasks` at a path where a definition export writes is a 422 naming
`/path` and the export, against the API served by uvicorn over a SQLite store (refused
before Dagster would be asked, so none listens)."""

from __future__ import annotations

from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.api.test_exports import export, with_output
from exporter_pipeline_tests.api.test_outputs import errors_of

TASK = {
    "start_time": "2026-10-01T00:00:00Z",
    "end_time": "2026-10-01T05:00:00Z",
    "output": "acme_files",
}


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
