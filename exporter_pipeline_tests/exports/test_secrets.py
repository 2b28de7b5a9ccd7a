"""Secrets named by the definitions file (S3 keys on a moto server, Azure's account key on
Azurite) are read from the environment only when a run opens that output, and appear
nowhere else: not in run config, tags, the event log, metadata, the resources and asset
specs the UI shows, error files or raised errors — for a successful and a failing run."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.dump import dump
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.cloud import CloudServer
from exporter_pipeline_tests.exports.conftest import DAY, Lake
from exporter_pipeline_tests.servers import AZURITE_KEY


def everything_recorded(instance: dg.DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    logs = instance.all_logs(run_id)
    return "\n".join(
        [
            json.dumps(run.run_config, default=repr),  # plain data: config is JSON-like
            dg.serialize_value(run.tags),
            *(dg.serialize_value(entry) for entry in logs),
        ]
    )


def s3_output(bucket: str) -> dict[str, str]:
    return {
        "type": "s3",
        "bucket": bucket,
        "region": "us-east-1",
        "endpoint_url_env": "T_S3_ENDPOINT",
        "access_key_id_env": "T_S3_KEY",
        "secret_access_key_env": "T_S3_SECRET",
    }


def definitions_document(bucket: str, container: str) -> dict[str, Any]:
    """Exports to S3 and Azure, and one to a bucket that does not exist."""
    azure = {
        "type": "azure",
        "container": container,
        "account_url_env": "T_AZ_URL",
        "account_key_env": "T_AZ_KEY",
    }
    return {
        "outputs": {
            "acme_s3": s3_output(bucket),
            "gone_s3": s3_output("no-such-bucket-x"),
            "acme_az": azure,
        },
        "exports": [
            {
                "name": n,
                "tenant": "acme",
                "dataset": "raw",
                "format": "csv",
                "cadence": "hourly",
                "start": "2026-10-01T00:00:00Z",
                "output": {"name": o, "path": "x"},
            }
            for n, o in (("to_s3", "acme_s3"), ("to_az", "acme_az"), ("broken", "gone_s3"))
        ],
    }


def shown_in_the_ui(defs: dg.Definitions) -> str:
    """What the UI shows of the code location: resource config, asset specs, and each
    job's snapshot (its config schema and defaults, the launchpad's, tags and ops)."""
    resources = {
        k: r.model_dump() for k, r in (defs.resources or {}).items() if hasattr(r, "model_dump")
    }
    specs = [
        (spec.description, spec.metadata, spec.tags) for spec in defs.resolve_all_asset_specs()
    ]
    repository = defs.get_repository_def()
    jobs = [dg.serialize_value(job.get_job_snapshot()) for job in repository.get_all_jobs()]
    sensors = [(s.name, s.description) for s in repository.sensor_defs]
    schedules = [(s.name, s.description, s.tags) for s in repository.schedule_defs]
    return repr((resources, specs, jobs, sensors, schedules))


def test_secrets_stay_in_the_environment(
    lake: Lake,
    cloud_servers: dict[str, CloudServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    s3, azure = cloud_servers["s3"], cloud_servers["azure"]
    key_id, secret = f"AKIA{secrets.token_hex(8)}", secrets.token_urlsafe(30)
    monkeypatch.setenv("T_S3_ENDPOINT", s3.url)
    monkeypatch.setenv("T_S3_KEY", key_id)
    monkeypatch.setenv("T_S3_SECRET", secret)
    monkeypatch.setenv("T_AZ_URL", azure.url)
    monkeypatch.setenv("T_AZ_KEY", AZURITE_KEY)
    bucket, container = s3.new_bucket(), azure.new_bucket()
    document = definitions_document(bucket, container)
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(document))
    settings = Settings.from_env(
        {
            "EXPORTER_LAKE_URL": str(lake.root),
            "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
            "EXPORTER_PARTITIONS_START": "2026-09-01",
        }
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    hour = f"{DAY:%Y-%m-%d-%H:%M}"

    recorded = []
    for name in ("to_s3", "to_az"):
        result = defs.resolve_job_def(f"export_{name}").execute_in_process(
            instance=instance, partition_key=hour
        )
        assert result.success
        recorded.append(everything_recorded(instance, result.run_id))
    assert [o.key for o in s3.destination(bucket).list()] == [
        "x/2026-10-01-00-00.csv",
        "x/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
    ]

    failed = defs.resolve_job_def("export_broken").execute_in_process(
        instance=instance, partition_key=hour, raise_on_error=False
    )
    assert not failed.success
    failure_text = everything_recorded(instance, failed.run_id)
    assert "NoSuchBucket" in failure_text  # the reason is there, the secret is not
    recorded.append(failure_text)

    recorded.append(shown_in_the_ui(defs))
    captured = capfd.readouterr()
    recorded += [captured.out, captured.err]

    for text in recorded:
        for value in (secret, key_id, AZURITE_KEY):
            assert value not in text
    # The outputs are in the definitions store, not in the resource's config (the UI shows
    # none); the store names where a secret comes from.
    assert "T_S3_SECRET" not in recorded[-3]
    assert "T_S3_SECRET" in dump(DefinitionsStore.from_settings(settings))
