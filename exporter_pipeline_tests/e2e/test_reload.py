"""`definitions apply` on a running deployment: the store changes, the webserver reloads
the code location, and the new export's job, schedule and asset appear without a restart;
the export it removed (with --prune) disappears; a second apply changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from exporter_pipeline_tests.e2e.conftest import Deployment, start_dagster_dev
from exporter_pipeline_tests.e2e.test_dagster_dev import TERMINAL, launch, runs, wait_for
from exporter_pipeline_tests.exports.conftest import build_lake
from exporter_pipeline_tests.servers import REPO

JOBS = """query { repositoryOrError(repositorySelector: {repositoryLocationName:
    "exporter_pipeline", repositoryName: "__repository__"}) { ... on Repository {
    jobs { name } schedules { name } } } }"""


def export(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "acme",
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-10-01",
        "output": {"name": "local", "path": name},
        **extra,
    }


def write(path: Path, out: Path, *exports: dict[str, Any]) -> Path:
    document = {"outputs": {"local": {"type": "local", "path": str(out)}}, "exports": list(exports)}
    path.write_text(yaml.safe_dump(document))
    return path


def apply(file: Path, url: str, env: dict[str, str], *flags: str) -> list[str]:
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "exporter-pipeline"),
            "definitions",
            "apply",
            str(file),
            *flags,
            "--dagster-url",
            url,
            "--workspace",
            str(REPO / "workspace.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def shown(deployment: Deployment) -> tuple[set[str], set[str]]:
    repository = deployment.graphql(JOBS)["repositoryOrError"]
    return (
        {j["name"] for j in repository["jobs"]},
        {s["name"] for s in repository["schedules"]},
    )


def run_to_the_end(deployment: Deployment, job: str, partition: str) -> dict[str, Any]:
    run_id = launch(deployment, job, {"dagster/partition": partition})

    def ended() -> list[dict[str, Any]]:
        return [r for r in runs(deployment, runIds=[run_id]) if r["status"] in TERMINAL]

    return wait_for(ended, 180, f"run {run_id} of {job}")[0]  # type: ignore[no-any-return]


def test_apply_reloads_a_running_deployment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lake = build_lake(tmp_path / "data", events_per_hour=60, hours=48)
    env = {
        "EXPORTER_EXPORTS_FILE": str(write(tmp_path / "exports.yaml", out, export("acme_old"))),
        "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(tmp_path / "data" / "landing"),
        "EXPORTER_PARTITIONS_START": "2026-10-01",
    }
    for deployment in start_dagster_dev(tmp_path, env, None):
        cli_env = {**env, "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(deployment.home)}
        jobs, _ = shown(deployment)
        assert "export_acme_old" in jobs and "export_acme_new" not in jobs
        new = write(
            tmp_path / "new.yaml",
            out,
            export("acme_new", schedule={"hour": 4, "minute": 10}),
        )
        lines = apply(new, deployment.url, cli_env, "--prune")
        assert lines[-1] == "exporter_pipeline: reloaded", lines
        assert "exports: 1 created, 0 updated, 0 unchanged, 1 removed" in "\n".join(lines)
        jobs, schedules = shown(deployment)
        assert "export_acme_new" in jobs and "export_acme_old" not in jobs
        assert "export_acme_new_schedule" in schedules
        # The new job runs like any other, in the deployment that was never restarted.
        finished = run_to_the_end(deployment, "export_acme_new", "2026-10-01")
        assert (finished["status"], finished["jobName"]) == ("SUCCESS", "export_acme_new")
        assert len(list((out / "acme_new" / "_manifests").iterdir())) == 1
        # Idempotent: the same file again changes nothing and reloads nothing.
        again = apply(new, deployment.url, cli_env, "--prune")
        assert again[-1].endswith(": no change"), again
