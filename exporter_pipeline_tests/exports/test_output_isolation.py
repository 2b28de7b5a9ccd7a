"""One output's secrets are needed only by the runs that write to it: two tenants' S3
outputs on the moto server, their keys in different environment variables of which only
acme's are set. acme's export job runs and writes its files; globex's fails, naming the
variable it lacks (never a value) — built and run in process from the one `Definitions`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.cloud import ACCESS_KEY_ID, SECRET_ACCESS_KEY, CloudServer
from exporter_pipeline_tests.exports.conftest import DAY, Lake


def s3_output(bucket: str, tenant: str) -> dict[str, str]:
    prefix = tenant.upper()
    return {
        "type": "s3",
        "tenant": tenant,
        "bucket": bucket,
        "region": "us-east-1",
        "endpoint_url_env": f"{prefix}_S3_URL",
        "access_key_id_env": f"{prefix}_AWS_KEY",
        "secret_access_key_env": f"{prefix}_AWS_SECRET",
    }


def export(tenant: str) -> dict[str, object]:
    return {
        "name": f"{tenant}_hourly",
        "tenant": tenant,
        "dataset": "raw",
        "format": "csv",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": f"{tenant}_s3", "path": "raw"},
    }


def step_failures(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        event.step_failure_data.error.to_string()
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    )


def test_a_run_needs_only_its_own_outputs_secrets(
    lake: Lake,
    cloud_servers: dict[str, CloudServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = cloud_servers["s3"]
    acme_bucket, globex_bucket = s3.new_bucket(), s3.new_bucket()
    monkeypatch.setenv("ACME_S3_URL", s3.url)
    monkeypatch.setenv("ACME_AWS_KEY", ACCESS_KEY_ID)
    monkeypatch.setenv("ACME_AWS_SECRET", SECRET_ACCESS_KEY)
    monkeypatch.setenv("GLOBEX_S3_URL", s3.url)
    monkeypatch.delenv("GLOBEX_AWS_KEY", raising=False)
    monkeypatch.delenv("GLOBEX_AWS_SECRET", raising=False)
    document = {
        "outputs": {
            "acme_s3": s3_output(acme_bucket, "acme"),
            "globex_s3": s3_output(globex_bucket, "globex"),
        },
        "exports": [export("acme"), export("globex")],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    defs = build_definitions(
        Settings.from_env(
            {
                "EXPORTER_LAKE_URL": str(lake.root),
                "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
                "EXPORTER_PARTITIONS_START": "2026-09-01",
            }
        )
    )
    instance = dg.DagsterInstance.ephemeral()
    hour = f"{DAY:%Y-%m-%d-%H:%M}"

    acme = defs.resolve_job_def("export_acme_hourly").execute_in_process(
        instance=instance, partition_key=hour
    )
    assert acme.success
    assert [o.key for o in s3.destination(acme_bucket).list()] == [
        "raw/2026-10-01-00-00.csv",
        "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
    ]

    globex = defs.resolve_job_def("export_globex_hourly").execute_in_process(
        instance=instance, partition_key=hour, raise_on_error=False
    )
    assert not globex.success
    assert "output 'globex_s3': environment variable GLOBEX_AWS_KEY is not set" in (
        step_failures(globex)
    )
    assert s3.destination(globex_bucket).list() == []


@pytest.mark.servers  # runs whole Dagster jobs
def test_launchpad_jobs_refuse_another_tenants_output(tmp_path: Path) -> None:
    globex_out = {"type": "local", "path": str(tmp_path / "g"), "tenant": "globex"}
    document = {"outputs": {"globex_out": globex_out}}
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    defs = build_definitions(
        Settings.from_env(
            {
                "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
                "EXPORTER_LANDING_URL": str(tmp_path / "landing"),
                "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
            }
        )
    )
    refused = "output 'globex_out' belongs to tenant 'globex'; tenant 'acme' may not use it"
    launches = {
        "export_on_demand": {
            "export_task": {
                "config": {
                    "tenant": "acme",
                    "start_time": "2026-10-01T00:00:00Z",
                    "end_time": "2026-10-01T01:00:00Z",
                    "output": "globex_out",
                }
            }
        },
        "user_data_export": {
            "export_user_data": {
                "config": {"tenant": "acme", "user_id": "u1", "output": "globex_out"}
            }
        },
    }
    for job, ops in launches.items():
        result = defs.resolve_job_def(job).execute_in_process(
            run_config={"ops": ops}, raise_on_error=False
        )
        assert not result.success
        assert refused in step_failures(result), job
    assert not (tmp_path / "g").exists()  # nothing written
