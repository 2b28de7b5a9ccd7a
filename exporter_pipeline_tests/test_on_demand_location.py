"""The location Dagster loads builds an export's job alone for a run worker, the whole
location for anything else, and both give the same job."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions, build_location
from exporter_pipeline.defs.on_demand_location import on_demand_location
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.exports.conftest import Lake, build_lake
from exporter_pipeline_tests.servers import REPO


def settings(tmp_path: Path, lake: Lake | None = None) -> Settings:
    exports = [
        {
            "name": f"{tenant}_hourly",
            "tenant": tenant,
            "dataset": "raw",
            "format": "csv",
            "cadence": "hourly",
            "start": "2026-10-01T00:00:00Z",
            "output": {"name": "local", "path": tenant},
        }
        for tenant in ("acme", "globex")
    ]
    document = {"outputs": {"local": {"type": "local", "path": str(tmp_path / "out")}}}
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump({**document, "exports": exports}))
    return Settings.from_env(
        {
            "EXPORTER_LAKE_URL": str(lake.root if lake else tmp_path / "lake"),
            "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
            "EXPORTER_PARTITIONS_START": "2026-10-01",
        }
    )


def test_an_exports_job_is_built_alone_and_equals_the_whole_locations(tmp_path: Path) -> None:
    built: list[str] = []
    whole = build_definitions(settings(tmp_path))

    def build_whole() -> dg.Definitions:
        built.append("whole")
        return whole

    alone = build_location(settings(tmp_path))

    def build_one(name: str) -> dg.JobDefinition:
        built.append(name)
        return alone.get_job(name)

    location = on_demand_location(build_whole, build_one)
    job = location.get_job("export_acme_hourly")
    assert built == ["export_acme_hourly"]  # the whole location was not built
    expected = whole.get_repository_def().get_job("export_acme_hourly")
    assert job.get_job_snapshot_id() == expected.get_job_snapshot_id()
    # Anything else builds the whole location, once, and answers from it.
    assert "deliver_export" in location.job_names
    assert location.get_job("export_globex_hourly").name == "export_globex_hourly"
    assert {s.name for s in location.sensor_defs} == {
        s.name for s in whole.get_repository_def().sensor_defs
    }
    assert built == ["export_acme_hourly", "whole"]


def test_a_name_that_is_no_exports_job_comes_from_the_whole_location(tmp_path: Path) -> None:
    location = build_location(settings(tmp_path))
    assert location.name == "__repository__"  # the name runs record
    assert location.get_job("deliver_export").name == "deliver_export"
    assert location.has_job("export_acme_hourly") and not location.has_job("export_nobody")


@pytest.mark.servers  # a console script running a whole job
def test_a_run_through_the_loaded_location_exports_its_window(tmp_path: Path) -> None:
    """`dagster job execute` loads the module's location as a run worker does (one job
    asked for by name) and runs one hourly window to its files."""
    configured = settings(tmp_path, build_lake(tmp_path / "data", events_per_hour=40, hours=1))
    env = {
        "EXPORTER_LAKE_URL": configured.lake_url,
        "EXPORTER_EXPORTS_FILE": configured.exports_file,
        "EXPORTER_PARTITIONS_START": "2026-10-01",
        "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "DAGSTER_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    (tmp_path / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "dagster"),
            "job",
            "execute",
            "-m",
            "exporter_pipeline.definitions",
            "-j",
            "export_acme_hourly",
            "--tags",
            '{"dagster/partition": "2026-10-01-00:00"}',
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifests = sorted(p.name for p in (tmp_path / "out" / "acme" / "_manifests").iterdir())
    assert manifests == ["2026-10-01-00-00_2026-10-01-01-00.json"]
